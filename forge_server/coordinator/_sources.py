"""What one execution's engine events give its project: the artifacts its jobs stored or got
from the cache become readable by the project (see ``_project_records``), before the execution
document shows them; a cache hit computed by another project names none of that project's ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from forge_ops.execution import Event, JobFeedback, JobStatusChanged
from forge_ops.schema import JobStatus, now_iso

from ._project_records import CACHED, IMAGE, PRODUCED, ArtifactSource, ProjectRecords


@dataclass(frozen=True)
class ExecutionSources:
    """Records the artifacts of ``execution`` (of ``project``, running ``commit``)."""

    records: ProjectRecords
    project: str
    execution: str
    commit: str | None

    async def note(self, events: Sequence[Event]) -> list[Event]:
        """Record what ``events`` stored for the project; the events to write, with a cache
        hit's origin made this project's (see :meth:`_origin`)."""
        return await self.records.run(self._note, events)

    def _note(self, events: Sequence[Event]) -> list[Event]:
        sources: list[ArtifactSource] = []
        noted: list[Event] = []
        created = now_iso("milliseconds")
        for event in events:
            if isinstance(event, JobStatusChanged) and event.status in (
                    JobStatus.SUCCEEDED, JobStatus.CACHED):
                how = CACHED if event.status is JobStatus.CACHED else PRODUCED
                sources.extend(self._source(artifact, event.job, how, created)
                               for artifact in event.outputs.values())
                if event.cached_from is not None:
                    noted.append(replace(event, cached_from=self._origin(
                        event.cached_from, list(event.outputs.values()))))
                    continue
            elif isinstance(event, JobFeedback) and event.images:
                sources.extend(self._source(artifact, event.job, IMAGE, created)
                               for artifact in event.images.values())
            noted.append(event)
        self.records.add_sources(sources)
        return noted

    def _source(self, artifact: str, job: str, how: str, created: str) -> ArtifactSource:
        return ArtifactSource(self.project, artifact, how, self.execution, job, self.commit,
                              created)

    def _origin(self, cached_from: str, outputs: list[str]) -> str | None:
        """The execution a cache hit is shown to come from: the one that computed it when it is
        this project's, else the first execution of this project that had the same outputs,
        else none (the cache is shared, but another project's ids are not shown)."""
        if self.records.project_of(cached_from) == self.project:
            return cached_from
        return self.records.producing_execution(self.project, outputs)
