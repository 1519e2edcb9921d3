"""Summaries and exports of stored artifacts, computed in a child process.

Loading a model artifact unpickles its skeleton, whose classes may be the user's own layers, so
the server never loads artifacts itself: it runs ``python -m forge_server.coordinator._inspect``
and reads the JSON it prints. Usage::

    python -m forge_server.coordinator._inspect summary STORE HASH
    python -m forge_server.coordinator._inspect export STORE HASH DESTINATION
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import CoordinatorError, NotFound

if TYPE_CHECKING:
    from forge_ops.execution import SandboxPolicy

_SUFFIXES = {"tensor": ".npy", "array": ".npy", "dataset": ".npz", "model": ".pt", "json": ".json"}


def export_suffix(kind: str) -> str:
    """The file suffix ``forge artifact export`` writes for an artifact kind."""
    if kind not in _SUFFIXES:
        raise CoordinatorError(
            f"a {kind} artifact cannot be exported as a file; load it with "
            "ArtifactStore.get() in Python (see forge_ops.artifacts)"
        )
    return _SUFFIXES[kind]


async def inspect_artifact(
    store: str, artifact_hash: str, *, limit_s: float, destination: Path | None = None,
    sandbox: SandboxPolicy | None = None,
) -> dict[str, Any]:
    """Run the child: the artifact's summary, or ``{"path": …}`` of the exported file.

    Loading an artifact may unpickle whatever a job stored (an ``object`` artifact, a model's
    skeleton), so the child runs in the jobs' ``sandbox`` (without network, unless the store is
    an object store)."""
    args = ["summary", store, artifact_hash]
    if destination is not None:
        args = ["export", store, artifact_hash, str(destination)]
    command, env = [sys.executable, "-m", __name__, *args], None
    if sandbox is not None:
        from forge_ops.execution import SandboxUnavailable, confined_module

        writable = [str(destination.parent)] if destination is not None else []
        try:
            command, env = confined_module(sandbox, store, __name__, args, writable)
        except SandboxUnavailable as exc:
            raise CoordinatorError(str(exc)) from exc
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise CoordinatorError(
            f"reading artifact {artifact_hash[:12]}… took longer than {limit_s:g}s; "
            "it may be very large: load it with ArtifactStore.get() in Python"
        ) from None
    if process.returncode != 0:
        message = err.decode(errors="replace").strip().splitlines()
        reason = message[-1] if message else f"exit code {process.returncode}"
        if "ArtifactError" in reason and "no artifact" in reason:
            raise NotFound(reason.split(": ", 1)[-1])
        raise CoordinatorError(f"cannot read artifact {artifact_hash[:12]}…: {reason}")
    result: dict[str, Any] = json.loads(out)
    return result


def _main(argv: list[str]) -> int:
    location = argv[1] if len(argv) > 1 else ""
    try:
        return _inspect(argv)
    except Exception as exc:
        from forge_ops.execution import store_failure

        reason = store_failure(exc, location)
        if reason is None:
            raise
        print(reason, file=sys.stderr)  # one line: the store did not answer, not the artifact
        return 1


def _inspect(argv: list[str]) -> int:
    from forge_ops.artifacts import ArtifactStore

    command, location, artifact_hash, *rest = argv
    store = ArtifactStore(location)
    if command == "summary":
        print(json.dumps(store.summary(artifact_hash), default=str))
    elif command == "export" and rest:
        print(json.dumps({"path": str(store.export(artifact_hash, rest[0]))}))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
