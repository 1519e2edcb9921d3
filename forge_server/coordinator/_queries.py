"""Reading what executions produced: a branch's named artifacts (summaries and exports computed
in a child process, see ``_inspect``), any job output or image of an execution by its hash, and
the pixels of the images jobs showed.

The store is shared by every project, and documents are editable by their writers, so a hash
is read only if the server's records say the project produced, cached, showed or imported it
(``_project_records``); otherwise the answer is the 404 of a hash that does not exist. The
provenance shown is the project's own records: never another project's commits or executions.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forge_ops.schema import ProjectDoc

from ._config import CoordinatorConfig
from ._errors import CoordinatorError, NotFound
from ._inspect import export_suffix, inspect_artifact
from ._lookup import Lookup
from ._planning import find_job, safe_file_name

if TYPE_CHECKING:
    from forge_ops.artifacts import ArtifactStore


class ArtifactQueries:
    """Artifact reads of one relay's projects; ``store`` gives the shared artifact store."""

    def __init__(self, lookup: Lookup, store: Callable[[], ArtifactStore],
                 config: CoordinatorConfig) -> None:
        self.lookup = lookup
        self.store = store
        self.config = config

    async def artifacts(self, project: str, branch: str = "main") -> dict[str, dict[str, Any]]:
        """The named artifacts of a branch (what Output operations published)."""
        async with self.lookup.rooms.hold(self.lookup.branch_room(project, branch)) as room:
            artifacts = ProjectDoc(room.doc).to_plain()["artifacts"]
        return {name: dict(a) for name, a in sorted(artifacts.items())}

    async def artifact(self, project: str, name: str, branch: str = "main") -> dict[str, Any]:
        """A named artifact's record, if the project may read what it points at."""
        artifacts = await self.artifacts(project, branch)
        if name not in artifacts:
            names = ", ".join(artifacts) or "none yet: run a pipeline with an Output operation"
            raise NotFound(f"no artifact {name!r} in {project}/{branch}; artifacts: {names}")
        if not self.readable(project, str(artifacts[name].get("hash"))):
            raise NotFound(
                f"artifact {name!r} in {project}/{branch} points at content that no execution "
                f"of {project} produced: run the pipeline that publishes it again")
        return {"name": name, **artifacts[name]}

    def readable(self, project: str, artifact_hash: str) -> bool:
        """Whether the server's records give ``project`` this artifact."""
        return self.lookup.records.readable(project, artifact_hash)

    async def _summary(self, project: str, artifact_hash: str) -> dict[str, Any]:
        """The artifact's summary, its provenance being the project's own records."""
        summary = await inspect_artifact(
            self.store().location, artifact_hash, limit_s=self.config.inspect_timeout_s,
            sandbox=self.config.sandbox,
        )
        summary["provenance"] = await self.lookup.records.run(
            self.lookup.records.sources, project, artifact_hash)
        return summary

    async def artifact_summary(
        self, project: str, name: str, branch: str = "main"
    ) -> dict[str, Any]:
        """The artifact's record plus provenance, shape, dtype and statistics."""
        record = await self.artifact(project, name, branch)
        return {**record, "summary": await self._summary(project, str(record["hash"]))}

    @contextlib.asynccontextmanager
    async def exported(
        self, project: str, name: str, branch: str = "main"
    ) -> AsyncIterator[Path]:
        """A temporary file holding the artifact as .npy/.npz/.pt/.json (deleted afterwards)."""
        record = await self.artifact(project, name, branch)
        suffix = export_suffix(str(record["kind"]))
        folder = Path(tempfile.mkdtemp(prefix="forge-export-"))
        try:
            result = await inspect_artifact(
                self.store().location, record["hash"], limit_s=self.config.inspect_timeout_s,
                sandbox=self.config.sandbox, destination=folder / f"{safe_file_name(name)}{suffix}",
            )
            yield Path(result["path"])
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def execution_artifact(
        self, project: str, execution: str, artifact_hash: str
    ) -> dict[str, Any]:
        """Summary of any output or image of an execution's jobs, named by its hash.

        Only hashes the project may read and the execution's document names are answered: the
        store is shared by all projects, and a reader of this project must not read another
        project's artifacts by hash."""
        plain = await self.lookup.document(project, execution)
        producers = [
            {"job": job_id, "port": port}
            for job_id, job in plain["jobs"].items()
            for port, digest in job["outputs"].items()
            if digest == artifact_hash
        ] + [
            {"job": job_id, "image": name}
            for job_id, names in plain["images"].items()
            for name, digest in names.items()
            if digest == artifact_hash
        ]
        if not producers or not self.readable(project, artifact_hash):
            raise NotFound(
                f"execution {execution} produced no artifact {artifact_hash[:12]}…; its job "
                f"outputs are listed by GET /api/executions/{execution}"
            )
        return {"hash": artifact_hash, "execution": execution, "produced_by": producers,
                "summary": await self._summary(project, artifact_hash)}

    async def image(
        self, project: str, execution: str, job: str, name: str, max_side: int | None = None
    ) -> Any:
        """The pixels (uint8 H×W×C) of image ``name`` that job ``job`` showed.

        Images are plain arrays in the store, so they are read here: nothing is unpickled."""
        from ._images import image_pixels

        plain = await self.lookup.document(project, execution)
        job = find_job(plain["meta"]["pipeline"], plain["jobs"], job)
        images = plain["images"].get(job)
        if not images or name not in images or not self.readable(project, images[name]):
            shown = ", ".join(sorted(images or {})) or "none"
            raise NotFound(f"job {job} of execution {execution} showed no image {name!r}; "
                           f"its images: {shown}")
        store = self.store()
        digest = images[name]

        def read() -> Any:
            from forge_ops.artifacts import ArtifactError

            try:
                info = store.info(digest)
            except ArtifactError as exc:
                raise NotFound(str(exc)) from None
            if info.kind != "array":
                raise CoordinatorError(
                    f"image {name!r} is stored as a {info.kind} artifact, not a plain array; "
                    "images are H×W(×C) arrays written by forge_ops.runtime.image"
                )
            return image_pixels(store.get(digest), max_side)

        return await asyncio.to_thread(read)
