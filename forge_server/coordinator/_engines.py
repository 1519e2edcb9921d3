"""The coordinator's engines, one per executor kind, each started on the first run that needs
it and shut down with the server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._config import CoordinatorConfig, ExecutorKind
from ._errors import CoordinatorError

if TYPE_CHECKING:
    from forge_ops.artifacts import ArtifactStore
    from forge_ops.execution import Engine, RayExecutor, StoreAccess


class Engines:
    """Engines by executor kind; ``store`` gives the artifact store they share."""

    def __init__(self, config: CoordinatorConfig, store: Callable[[], ArtifactStore],
                 log: logging.Logger, access: StoreAccess) -> None:
        self.config = config
        self.access = access
        self.store = store
        self.log = log
        self._engines: dict[ExecutorKind, Engine] = {}
        self._lock = asyncio.Lock()

    async def get(self, kind: str | None = None, ray_address: str | None = None) -> Engine:
        """The engine of an executor kind, starting the executor on first use."""
        try:
            executor_kind = ExecutorKind(kind or self.config.executor)
        except ValueError:
            raise CoordinatorError(
                f"unknown executor {kind!r}; use one of {', '.join(ExecutorKind)}"
            ) from None
        if ray_address and ray_address != self.config.ray_address:
            configured = self.config.ray_address or "a local Ray runtime it starts itself"
            raise CoordinatorError(
                f"this server runs Ray jobs on {configured}, not {ray_address}; restart "
                f"`forge serve --ray-address {ray_address}` to use that cluster"
            )
        async with self._lock:
            engine = self._engines.get(executor_kind)
            if engine is None:
                engine = await self._start(executor_kind)
                self._engines[executor_kind] = engine
        return engine

    def started(self) -> set[str]:
        """The executor kinds running now (each started on the first run that needed it)."""
        return {str(kind) for kind in self._engines}

    def resume_kind(self, requested: str | None, ran_on: str | None) -> str:
        """The executor a restart or rerun uses: the one asked for; else the one the execution
        ran on, when it is running here already or is this server's default; else this
        server's default. So a server started with ``--executor local`` restarts an execution
        that ran on Ray (under an earlier setting) locally, and starts no Ray runtime nobody
        asked for; asking for ``ray`` still starts it."""
        if requested:
            return requested
        default = self.config.executor
        if ran_on in set(ExecutorKind):
            kind = ExecutorKind(ran_on)
            if kind is default or kind in self._engines:
                return str(kind)
        return str(default)

    async def _start(self, kind: ExecutorKind) -> Engine:
        from forge_ops.execution import Engine, Executor, LocalExecutor, RayExecutor

        executor: Executor
        if kind is ExecutorKind.LOCAL:
            executor = LocalExecutor(self.config.local_workers, sandbox=self.config.sandbox)
        else:
            # Each worker gets the store's settings and the forwarded variables.
            executor = RayExecutor(self.config.ray_address, sandbox=self.config.sandbox,
                                   init_options={"runtime_env": self.access.runtime_env()})
        self.log.info("starting the %s executor", kind)
        try:
            await asyncio.to_thread(executor.start)
        except Exception as exc:
            where = f" at {self.config.ray_address}" if kind is ExecutorKind.RAY else ""
            raise CoordinatorError(
                f"cannot start the {kind} executor{where}: {exc}; check the server's "
                "--executor / --ray-address settings"
            ) from exc
        # A cluster's nodes may lack what jobs need; a runtime this server starts is this box.
        if isinstance(executor, RayExecutor) and executor.address and self.config.probe_cluster:
            await self._probe(executor)
        store = await asyncio.to_thread(self.store)
        return Engine(store, executor, cancel_grace=self.config.cancel_grace_s)

    async def _probe(self, executor: RayExecutor) -> None:
        """Refuse a cluster on which a node type cannot run jobs, saying which and why."""
        from forge_ops.execution import probe_nodes

        self.log.info("checking the Ray cluster's node types (job runtime, artifact store)")
        try:
            problems = await asyncio.to_thread(probe_nodes, self.config.artifacts)
        except Exception as exc:
            problems = [f"the probe failed: {type(exc).__name__}: {exc}"]
        if problems:
            await asyncio.to_thread(executor.shutdown)
            raise CoordinatorError(
                f"the Ray cluster cannot run Forge's jobs: {'; '.join(problems)}; fix the "
                "nodes, or the server's --artifacts / --artifacts-option / --forward-env")

    async def stop(self) -> None:
        """Shut every started executor down."""
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            try:
                await asyncio.to_thread(engine.executor.shutdown)
            except Exception:
                self.log.exception("shutting down the %s executor failed", engine.executor.name)
