"""Pipeline exporters: the ``forge.exporters`` extension point.

An exporter is a class registered under the entry-point group ``forge.exporters`` (the entry
point's name is the format users pass to ``forge export --format``). It has a ``description``
and ``export(project, pipeline_id, destination) -> list[Path]``, where ``project`` is the
project's plain snapshot. Third-party packages add formats by declaring such an entry point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

GROUP = "forge.exporters"


class ExportError(ValueError):
    """A pipeline cannot be exported; the message says what to fix."""


@runtime_checkable
class Exporter(Protocol):
    """What a pipeline exporter provides."""

    description: str

    def export(
        self, project: Mapping[str, Any], pipeline_id: str, destination: Path
    ) -> list[Path]: ...


@dataclass(frozen=True)
class ExporterInfo:
    """An installed exporter: its format name, where it comes from and what it does."""

    name: str
    target: str  # "module:Class"
    distribution: str
    description: str


def available_exporters() -> dict[str, ExporterInfo]:
    """Every installed exporter by format name (entry points are loaded to read descriptions)."""
    found: dict[str, ExporterInfo] = {}
    for point in entry_points(group=GROUP):
        try:
            description = str(getattr(point.load(), "description", ""))
        except Exception as exc:  # a broken third-party plugin must not hide the others
            description = f"(cannot be loaded: {type(exc).__name__}: {exc})"
        dist = point.dist.name if point.dist is not None else "?"
        found[point.name] = ExporterInfo(point.name, point.value, dist, description)
    return dict(sorted(found.items()))


def load_exporter(name: str) -> Exporter:
    """Instantiate the exporter registered as ``name``."""
    points = [p for p in entry_points(group=GROUP) if p.name == name]
    if not points:
        known = ", ".join(sorted(p.name for p in entry_points(group=GROUP))) or "none"
        raise ExportError(f"no exporter named {name!r} (installed: {known})")
    exporter = points[0].load()()
    if not isinstance(exporter, Exporter):
        raise ExportError(f"exporter {name!r} ({points[0].value}) has no export() method")
    return exporter


__all__ = [
    "GROUP",
    "ExportError",
    "Exporter",
    "ExporterInfo",
    "available_exporters",
    "load_exporter",
]
