"""The editing facade of a project document: one helper per change, each in one transaction.

Pipelines and architectures are edited through the parts :class:`ProjectDoc` inherits
(``_pipeline_edits``, ``_architecture_edits``); reading goes through ``_project_reader``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pycrdt import Doc, Map, Text

from ._architecture_edits import ArchitectureEdits
from ._ids import new_id, now_iso
from ._pipeline_edits import PipelineEdits
from ._project_reader import read_project, read_schema_version
from ._read import Reader, SchemaError
from ._restore import PROJECT_LAYOUT, set_text, sync_map
from ._roots import checked_input_shape, checked_name, checked_shape, json_dict
from ._types import PROJECT_ROOTS, SCHEMA_VERSION, JobStatus, Project

_NAMED = ("operations", "pipelines", "layers", "architectures", "sweeps")
#: The parts of a sweep besides its name (see ``Sweep``); ``forge_ops.sweeps`` checks them.
SWEEP_PARTS = ("parameters", "objective", "budget", "sampler", "pruner")


class ProjectDoc(PipelineEdits, ArchitectureEdits):
    """A project document: root maps plus helpers that each change it in one transaction.

    Reading goes through :meth:`to_plain`, which validates every entry: content this reader
    does not understand is skipped and reported in :attr:`warnings` (and logged).
    """

    # ----- construction -------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, doc: Doc | None = None) -> ProjectDoc:
        """Start a new project document named ``name`` (writes ``meta``)."""
        project = cls(doc)
        with project.doc.transaction():
            project.meta["name"] = checked_name(name, "project")
            project.meta["schema_version"] = SCHEMA_VERSION
            project.meta["created"] = now_iso()
        return project

    # ----- reading ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        value = self.meta.get("name")
        return value if isinstance(value, str) else ""

    @property
    def schema_version(self) -> int | None:
        """The schema version written in ``meta`` (None when absent or unreadable)."""
        return read_schema_version(self.meta)

    def to_plain(self) -> Project:
        """Return the whole document as validated plain data; see :attr:`warnings`."""
        reader = Reader()
        plain = read_project(self.doc, reader, self)
        self.warnings = reader.warnings
        reader.log(f"project {plain['meta']['name']!r}")
        return plain

    def find(self, collection: str, name: str) -> str | None:
        """Return the id of the entry called ``name`` in a named collection, if any."""
        root = self._named_root(collection)
        for key, entry in root.items():
            if isinstance(entry, Map) and entry.get("name") == name:
                return str(key)
        return None

    def code_text(self, entry_id: str) -> Text:
        """The shared Text of an operation's or custom layer's code (for live editing)."""
        entry = self._find_entry(entry_id, ("operations", "layers"))
        code = entry.get("code")
        if not isinstance(code, Text):
            with self.doc.transaction():
                entry["code"] = code = Text(code if isinstance(code, str) else "")
        return code

    # ----- top-level entries --------------------------------------------------------------

    def add_operation(
        self, name: str, code: str = "", builtin: bool = False, *, op_id: str | None = None
    ) -> str:
        op_id = op_id or new_id()
        self.operations[op_id] = Map(
            {"name": checked_name(name, "operation"), "code": Text(code), "builtin": bool(builtin)}
        )
        return op_id

    def add_layer(self, name: str, code: str = "", *, layer_id: str | None = None) -> str:
        layer_id = layer_id or new_id()
        self.layers[layer_id] = Map({"name": checked_name(name, "layer"), "code": Text(code)})
        return layer_id

    def add_pipeline(self, name: str, *, pipeline_id: str | None = None) -> str:
        pipeline_id = pipeline_id or new_id()
        self.pipelines[pipeline_id] = Map(
            {"name": checked_name(name, "pipeline"), "nodes": Map(), "edges": Map()}
        )
        return pipeline_id

    def add_architecture(
        self,
        name: str,
        input_shape: list[int] | None = None,
        *,
        arch_id: str | None = None,
    ) -> str:
        arch_id = arch_id or new_id()
        self.architectures[arch_id] = Map(
            {
                "name": checked_name(name, "architecture"),
                "input_shape": checked_input_shape(input_shape),
                "layers": Map(),
                "edges": Map(),
            }
        )
        return arch_id

    def set_sweep(self, name: str, pipeline_id: str, parts: Mapping[str, Any], *,
                  sweep_id: str | None = None) -> str:
        """Add a sweep, or replace the definition of sweep ``sweep_id`` (fields that did not
        change are left alone, so concurrent edits elsewhere merge). ``parts``: parameters,
        objective, budget, sampler and pruner, each a JSON map (missing ones are empty)."""
        unknown = sorted(set(parts) - set(SWEEP_PARTS))
        if unknown:
            raise SchemaError(
                f"a sweep has no part {unknown[0]!r}; parts: {', '.join(SWEEP_PARTS)}")
        fields: dict[str, Any] = {"name": checked_name(name, "sweep"),
                                  "pipeline": checked_name(pipeline_id, "pipeline")}
        for part in SWEEP_PARTS:
            fields[part] = json_dict(parts.get(part), f"sweep {name}: {part}")
        sweep_id = sweep_id or new_id()
        with self.doc.transaction():
            entry = self.sweeps.get(sweep_id)
            if isinstance(entry, Map):
                sync_map(entry, fields, {})
            else:
                self.sweeps[sweep_id] = Map(fields)
        return sweep_id

    def set_code(self, entry_id: str, code: str) -> None:
        """Replace an operation's or layer's code, touching only the span that changed."""
        text = self.code_text(entry_id)
        with self.doc.transaction():
            set_text(text, code)

    def restore(self, plain: Mapping[str, Any]) -> None:
        """Make the content equal to snapshot ``plain`` (one transaction, minimal changes).

        Content the snapshot lacks is deleted, including entries this reader cannot parse.
        Into an empty document this builds the snapshot, ids kept.
        """
        with self.doc.transaction():
            for root in PROJECT_ROOTS:
                sync_map(getattr(self, root), plain.get(root, {}), PROJECT_LAYOUT[root])

    def rename(self, entry_id: str, name: str) -> None:
        """Rename an operation, pipeline, custom layer, architecture or sweep."""
        entry = self._find_entry(entry_id, _NAMED)
        entry["name"] = checked_name(name, "entry")

    def remove(self, entry_id: str) -> None:
        """Delete an operation, pipeline, layer, architecture, sweep or execution summary."""
        for collection in (*_NAMED, "executions"):
            root: Map = getattr(self, collection)
            if entry_id in root:
                del root[entry_id]
                return
        raise SchemaError(
            f"no operation, pipeline, layer, architecture, sweep or execution {entry_id!r}")

    # ----- executions and artifacts -------------------------------------------------------

    def record_execution(
        self,
        pipeline_id: str,
        commit: str | None,
        by: str | None,
        *,
        execution_id: str | None = None,
        status: str = JobStatus.QUEUED,
    ) -> str:
        """Add an execution summary (details live in the execution document)."""
        execution_id = execution_id or new_id()
        self.executions[execution_id] = Map(
            {
                "pipeline": pipeline_id,
                "commit": commit,
                "status": str(JobStatus(status)),
                "created": now_iso(),
                "by": by,
            }
        )
        return execution_id

    def set_execution_status(self, execution_id: str, status: str) -> None:
        entry = self.executions.get(execution_id)
        if not isinstance(entry, Map):
            raise SchemaError(f"no execution {execution_id!r}")
        entry["status"] = str(JobStatus(status))

    def record_artifact(
        self,
        name: str,
        hash: str,
        kind: str,
        *,
        shape: list[int] | None = None,
        dtype: str | None = None,
        nbytes: int = 0,
        produced_by: str | None = None,
    ) -> None:
        """Point the user-visible artifact ``name`` at stored content ``hash``."""
        self.artifacts[checked_name(name, "artifact")] = Map(
            {
                "hash": hash,
                "kind": kind,
                "shape": checked_shape(shape),
                "dtype": dtype,
                "bytes": int(nbytes),
                "produced_by": produced_by,
                "created": now_iso(),
            }
        )

    def _named_root(self, collection: str) -> Map:
        if collection not in PROJECT_ROOTS or collection == "meta":
            raise SchemaError(f"unknown collection {collection!r}; use one of {_NAMED}")
        return cast(Map, getattr(self, collection))


def to_plain(doc: Doc) -> Project:
    """Plain, validated snapshot of a project document (warnings are logged)."""
    return ProjectDoc(doc).to_plain()
