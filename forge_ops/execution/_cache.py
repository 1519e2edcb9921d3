"""Cache keys of jobs and the cache index kept in the artifact store.

A key hashes the operation code with comments and formatting stripped (``ast`` round trip),
the attributes, what the references point at, the Python and torch releases (major.minor: the
granularity at which numerics change), the device class the job asks for (a GPU job computes
other numbers, and must not be answered by a CPU run) and the content hashes of the inputs.
The index maps a key to the outputs of the run that computed it; only successes are recorded.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import sys
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata
from typing import TYPE_CHECKING

from forge_ops.artifacts import canonical_json

if TYPE_CHECKING:
    from forge_ops.artifacts import ArtifactStore

    from ._plan import JobSpec


@lru_cache(maxsize=256)
def normalize_code(code: str) -> str:
    """Code with comments and formatting removed, so cosmetic edits keep the cache warm."""
    try:
        return ast.unparse(ast.parse(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # Code that does not parse, or nests deeper than parse/unparse can recurse, still needs
        # a key: drop comments and blanks (tokenizing does not recurse).
        tokens = []
        try:
            for token in tokenize.generate_tokens(io.StringIO(code).readline):
                if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT,
                                      tokenize.DEDENT):
                    tokens.append(token.string)
        except (tokenize.TokenError, SyntaxError, MemoryError):
            return code
        return " ".join(tokens)


@cache
def runtime_versions() -> dict[str, str]:
    """Python and torch as ``major.minor``, read without importing torch."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "none"
    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "torch": ".".join(torch_version.split("+")[0].split(".")[:2]),
    }


def cache_key(job: JobSpec, input_hashes: dict[str, str],
              runtime: dict[str, str] | None = None) -> str:
    """The job's cache key given its inputs' content hashes (``{port: hash}``); ``runtime``
    defaults to this process's ``runtime_versions()`` (a worker keys with the engine's)."""
    material = {
        "code": normalize_code(job.code),
        "attributes": job.attributes,
        "references": job.reference_content,
        "runtime": runtime or runtime_versions(),
        "inputs": input_hashes,
    }
    device = device_class(job)
    if device != "cpu":  # CPU jobs keep the keys they had before devices were keyed
        material["device"] = device
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


def device_class(job: JobSpec) -> str:
    """What the job computes on: ``cpu``, or ``gpu`` with how many it asks for (a GPU job's
    numerics differ from a CPU run's; the GPU's model is not known before a worker runs it)."""
    gpus = job.settings.num_gpus
    return "cpu" if gpus <= 0 else f"gpu:{gpus:g}"


@dataclass(frozen=True)
class CacheEntry:
    """A successful run of a key: its outputs and where they came from."""

    key: str
    outputs: dict[str, str]
    execution: str
    job: str
    created: str


class CacheIndex:
    """The cache index: rows of a local store's record index, or one JSON file per key under
    an object store's ``cache/`` (also read in local stores written before the index)."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    def _path(self, key: str) -> str:
        return self.store.path("cache", key[:2], f"{key}.json")

    def lookup(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if every output it names is still stored."""
        records = self.store.records
        fields = records.cache_entry(key) if records is not None else None
        if fields is None:
            try:
                fields = json.loads(self.store.read_bytes(self._path(key)))
            except FileNotFoundError:
                return None
            except ValueError:
                return None  # a damaged entry is a miss; the next success rewrites it
        try:
            entry = CacheEntry(**fields)
        except TypeError:
            return None
        if all(self.store.exists(h) for h in entry.outputs.values()):
            return entry
        return None

    def record(self, entry: CacheEntry) -> None:
        """Record a success (replaces: the newest run of a key is the one cited)."""
        self.record_many([entry])

    def record_many(self, entries: Sequence[CacheEntry]) -> None:
        """Record successes together (one transaction, or one batch of object writes)."""
        # vars(), not asdict(): the fields are plain values, no deep copy needed.
        records = self.store.records
        if records is not None:
            records.put_cache_entries((entry.key, dict(vars(entry))) for entry in entries)
        else:
            self.store.write_json_files({self._path(entry.key): dict(vars(entry))
                                         for entry in entries})
