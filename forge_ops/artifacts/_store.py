"""The content-addressed artifact store: zarr nodes under their hash, any fsspec location.

Layout under the store's root (a local folder or any fsspec URL)::

    objects/{h[:2]}/{h}       zarr array (tensors) or group (models, datasets, JSON, objects)
    refs/{h[:2]}/{h}.json     written last: the artifact is complete (its info)
    index.sqlite              local stores: provenance records and the job cache index
                              (see _records; object stores keep the two layouts below)
    provenance/{h}/{p}.json   one file per (commit, execution, job) that produced it
    cache/...                 the job cache index (see forge_ops.execution)
    shapes/{s}.json           a large array of this kind, dtype and shape was stored (see put)
    tmp/                      objects being built; moved into objects/ when whole

Objects are immutable and written once; two writers of the same content write identical bytes,
so no lock is needed. A crash mid-write leaves no ref, and the next store rewrites the object.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forge_ops.schema import now_iso

from ._arrays import direct_io, read_array, write_array
from ._codec import (
    ArtifactError,
    ArtifactKind,
    Encoded,
    encode,
    restore_member,
    restore_model,
    single_array,
)
from ._files import create_json, open_new, replace_file
from ._hashing import canonical_json
from ._info import ArtifactInfo, Provenance, check_hash
from ._object_io import download_node, memory_store, upload_node
from ._presenting import export_value, summarize
from ._records import RecordIndex, record_index

DEFAULT_LOCATION = "~/.forge/artifacts"


@dataclass(frozen=True)
class StoreResult:
    """The outcome of ``put``: the artifact's hash and kind, and how many bytes this call wrote
    (0 if the content was already stored)."""

    hash: str
    kind: str
    bytes_written: int
    store: ArtifactStore = field(repr=False, compare=False)

    @property
    def info(self) -> ArtifactInfo:
        """The stored record (read on demand: storing known content only checks it exists)."""
        return self.store.info(self.hash)


class ArtifactStore:
    """Content-addressed store of tensors, models, datasets and results.

    ``ArtifactStore("runs/artifacts")`` or ``ArtifactStore("s3://bucket/forge")``; the store is
    picklable (by location) so jobs in other processes open the same one.
    """

    def __init__(self, location: str | os.PathLike[str] = DEFAULT_LOCATION) -> None:
        import fsspec

        text = os.fspath(location)
        if "://" not in text:
            text = str(Path(text).expanduser().resolve())
        self.location = text
        self._fs, self._root = fsspec.core.url_to_fs(text)
        self._zarr_store: Any = None

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (type(self), (self.location,))

    def __repr__(self) -> str:
        return f"ArtifactStore({self.location!r})"

    # -- paths -------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """A path under the store's root, for the filesystem in ``fs``."""
        return "/".join([self._root.rstrip("/"), *parts])

    @property
    def fs(self) -> Any:
        """The fsspec filesystem the store lives on (for the cache index and exports)."""
        return self._fs

    def _zstore(self) -> Any:
        if self._zarr_store is None:
            from zarr.storage import FsspecStore, LocalStore

            if "://" not in self.location:
                self._zarr_store = LocalStore(self.location)
            else:
                self._zarr_store = FsspecStore.from_url(self.location)
        return self._zarr_store

    @staticmethod
    def _object_path(artifact_hash: str) -> str:
        return f"objects/{artifact_hash[:2]}/{artifact_hash}"

    def _ref_path(self, artifact_hash: str) -> str:
        return self.path("refs", artifact_hash[:2], f"{artifact_hash}.json")

    # -- writing -----------------------------------------------------------------------------
    def put(self, value: Any, provenance: Provenance | None = None) -> StoreResult:
        """Store ``value`` (once per content) and record who produced it."""
        encoded, aside = self._encode(value)
        written = 0
        try:
            if not self.exists(encoded.hash):
                written = self._write(encoded, aside)
                self.write_json(self._ref_path(encoded.hash), asdict(self._info_of(encoded)))
        finally:
            if aside is not None:
                aside.unlink(missing_ok=True)  # moved into the object, or not needed after all
        if provenance is not None:
            self.add_provenance(encoded.hash, provenance)
        return StoreResult(encoded.hash, encoded.kind.value, written, self)

    def _encode(self, value: Any) -> tuple[Encoded, Path | None]:
        """``encode(value)``. A large array that no stored artifact can equal (none of its kind,
        dtype and shape was stored before) is meanwhile written aside, so that hashing and
        writing overlap; returns that file too. Content of a shape seen before is hashed first,
        so storing it again writes nothing."""
        single = single_array(value) if self._local else None
        if (single is None or not direct_io(True, single[0])
                or not self._first_of_shape(*single)):
            return encode(value), None
        array = single[0]
        aside = Path(self.location, "tmp", f"{uuid.uuid4().hex}.chunk")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="forge-hash") as pool:
            hashing = pool.submit(encode, value)  # blake3 releases the GIL while it hashes
            try:
                with open_new(str(aside), "wb") as file:
                    file.write(array.reshape(-1).view(np.uint8).data)
                encoded = hashing.result()
            except BaseException:
                aside.unlink(missing_ok=True)
                raise
        member = encoded.members.get("")
        if member is None or member.array.ctypes.data != array.ctypes.data:
            aside.unlink()  # encode stored other bytes than these: write the usual way
            return encoded, None
        return encoded, aside

    def _first_of_shape(self, array: np.ndarray, kind: str, dtype_name: str) -> bool:
        """Whether no large array of this kind, dtype and shape was stored here before (and
        note that one is now). Only decides how ``put`` writes, never what."""
        signature = {"kind": kind, "dtype": dtype_name, "shape": list(array.shape)}
        name = hashlib.sha256(canonical_json(signature).encode()).hexdigest()[:32]
        return create_json(self.path("shapes", f"{name}.json"), signature)

    def add_provenance(self, artifact_hash: str, provenance: Provenance) -> None:
        """Record one producer of an artifact (idempotent for the same commit/execution/job)."""
        self.add_producers([(artifact_hash, provenance)])

    def add_producers(self, producers: Iterable[tuple[str, Provenance]]) -> None:
        """Record producers of artifacts, ``(hash, provenance)`` each, together: one
        transaction in a local store's index, one batch of writes in an object store."""
        rows = []
        for artifact_hash, provenance in producers:
            key = canonical_json([provenance.commit, provenance.execution, provenance.job])
            name = hashlib.sha256(key.encode()).hexdigest()[:24]
            record = dict(vars(provenance))  # plain fields: no deep copy needed
            record["created"] = record["created"] or now_iso("milliseconds")
            rows.append((check_hash(artifact_hash), name, record))
        index = self.records
        if index is not None:
            index.add_provenance(rows)
            return
        files = {self.path("provenance", h, f"{name}.json"): record for h, name, record in rows}
        self.write_json_files({path: record for path, record in files.items()
                               if not self._fs.exists(path)})

    @property
    def records(self) -> RecordIndex | None:
        """A local store's index of provenance records and cache entries (None for object
        stores, which keep a file per record)."""
        return record_index(self._root) if self._local else None

    @property
    def _local(self) -> bool:
        return "://" not in self.location

    @property
    def _local_root(self) -> str | None:
        """The folder of a local store (None for object stores)."""
        return self.location if self._local else None

    def write_json(self, path: str, value: Any) -> None:
        """Write a small JSON file so that readers never see it half written."""
        data = json.dumps(value, sort_keys=True).encode()
        if self._local:
            replace_file(path, data)
        else:
            self.write_json_files({path: value})

    def write_json_files(self, files: dict[str, Any]) -> None:
        """Write small JSON files (``{path: value}``), each whole; in an object store as one
        batch (concurrent requests where its filesystem supports them)."""
        if self._local:
            for path, value in files.items():
                self.write_json(path, value)
            return
        if not files:
            return
        if not _flat(self.location):  # an object store has no folders to make (s3fs's
            # makedirs would check the bucket, with retries, for every folder)
            for folder in {path.rsplit("/", 1)[0] for path in files}:
                self._fs.makedirs(folder, exist_ok=True)
        # Object stores replace whole objects atomically.
        self._fs.pipe({path: json.dumps(value, sort_keys=True).encode()
                       for path, value in files.items()})

    def _write(self, encoded: Encoded, aside: Path | None = None) -> int:
        """Write the object (``aside``: its single array's bytes already in a file, see _encode)."""
        final = self._object_path(encoded.hash)
        if not self._local or encoded.kind is ArtifactKind.JSON:
            # Object stores replace whole files atomically, and so does write_json (the only
            # file of a JSON artifact): no need to build these aside.
            return self._write_node(encoded, final)
        # Locally the object is built aside and renamed into place, so a reader (or a
        # concurrent writer of the same content) never sees a partial object.
        building = f"tmp/{uuid.uuid4().hex}"
        written = self._write_node(encoded, building, aside)
        target = Path(self.location, final)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(Path(self.location, building), target)
        except OSError:
            shutil.rmtree(Path(self.location, building), ignore_errors=True)
            if not (target / "zarr.json").exists():
                raise
            written = 0  # another writer stored the same content first
        return written

    def _write_node(self, encoded: Encoded, path: str, aside: Path | None = None) -> int:
        if not self._local and encoded.kind is not ArtifactKind.JSON:
            # Built in memory, uploaded in one batch (see _object_io).
            building = memory_store()
            written = self._build_node(building, encoded, path, aside)
            upload_node(self._fs, self._root, building, path)
            return written
        return self._build_node(self._zstore(), encoded, path, aside)

    def _node_store(self, path: str) -> Any:
        """A zarr store to read the node at ``path`` from: the store itself (local), or the
        node downloaded whole (object stores, see _object_io)."""
        return self._zstore() if self._local else download_node(self._fs, self._root, path)

    def _build_node(self, store: Any, encoded: Encoded, path: str, aside: Path | None
                    ) -> int:
        import zarr

        attrs = {"forge": encoded.header}
        if encoded.kind in (ArtifactKind.TENSOR, ArtifactKind.ARRAY):
            member = encoded.members[""]
            write_array(store, self._local_root, path, member.array,
                        attrs={**attrs, "dtype": member.dtype_name}, aside=aside)
            return member.array.nbytes
        if encoded.kind is ArtifactKind.JSON:
            # A group with attributes only: its zarr.json written directly (zarr's own writer
            # costs milliseconds, and a pipeline of tiny jobs stores many of these).
            self.write_json(self.path(path, "zarr.json"), {
                "zarr_format": 3, "node_type": "group", "attributes": attrs,
                "consolidated_metadata": None})
            return encoded.nbytes
        group = zarr.create_group(store, path=path, overwrite=True, attributes=attrs)
        for name, member in encoded.members.items():
            write_array(store, self._local_root, f"{path}/tensors/{name}", member.array,
                        attrs={"dtype": member.dtype_name})
        if encoded.blob is not None:
            blob = np.frombuffer(encoded.blob, dtype=np.uint8)
            write_array(store, self._local_root, f"{path}/blob", blob, attrs={})
        del group
        return encoded.nbytes

    @staticmethod
    def _info_of(encoded: Encoded) -> ArtifactInfo:
        shape = dtype = None
        if encoded.kind in (ArtifactKind.TENSOR, ArtifactKind.ARRAY):
            shape = list(encoded.members[""].array.shape)
            dtype = encoded.members[""].dtype_name
        return ArtifactInfo(encoded.hash, encoded.kind.value, shape, dtype, encoded.nbytes,
                            now_iso("milliseconds"))

    # -- reading -----------------------------------------------------------------------------
    def read_bytes(self, path: str) -> bytes:
        """A whole file's bytes under the store (FileNotFoundError if it is missing)."""
        if self._local:
            with open(path, "rb") as file:
                return file.read()
        return bytes(self._fs.cat_file(path))

    def exists(self, artifact_hash: str) -> bool:
        """Whether a complete artifact with this hash is stored."""
        path = self._ref_path(check_hash(artifact_hash))
        return os.path.exists(path) if self._local else bool(self._fs.exists(path))

    def _stored_info(self, artifact_hash: str) -> ArtifactInfo | None:
        """The artifact's info if it is completely stored, else None (one read)."""
        try:
            raw = self.read_bytes(self._ref_path(check_hash(artifact_hash)))
        except FileNotFoundError:
            return None
        return ArtifactInfo(**json.loads(raw))

    def info(self, artifact_hash: str) -> ArtifactInfo:
        """Kind, shape, dtype, size and time of first storage."""
        info = self._stored_info(artifact_hash)
        if info is None:
            raise ArtifactError(
                f"no artifact {artifact_hash[:12]}… in {self.location}: was it produced by a "
                "run that used another artifact store?"
            )
        return info

    def provenance(self, artifact_hash: str) -> list[Provenance]:
        """Every recorded producer of an artifact, oldest first."""
        check_hash(artifact_hash)
        index = self.records
        records = [Provenance(**record)
                   for record in (index.provenance(artifact_hash) if index is not None else [])]
        # Object stores, and local stores written before the index: a file per record.
        folder = self.path("provenance", artifact_hash)
        if self._fs.exists(folder):
            for path in self._fs.ls(folder, detail=False):
                if path.rsplit("/", 1)[-1].startswith("."):
                    continue  # a record being written aside
                try:
                    records.append(Provenance(**json.loads(self._fs.cat_file(path))))
                except (ValueError, TypeError):
                    continue  # caught half written
        return sorted(records, key=lambda p: p.created)

    def get(self, artifact_hash: str) -> Any:
        """Load an artifact back as the Python value it was stored from."""
        import zarr

        path = self._object_path(check_hash(artifact_hash))
        if self._local:
            # Small JSON results (most tiny jobs' inputs) in one read: a local object is only
            # ever seen complete (written atomically, or built aside and renamed into place).
            try:
                metadata = json.loads(self.read_bytes(self.path(path, "zarr.json")))
            except (FileNotFoundError, NotADirectoryError):
                metadata = {}
            stored = metadata.get("attributes", {}).get("forge", {})
            if stored.get("kind") == ArtifactKind.JSON.value and "value" in stored:
                return stored["value"]
        info = self.info(artifact_hash)
        kind = ArtifactKind(info.kind)
        if kind is not ArtifactKind.JSON:
            store = self._node_store(path)
        if kind in (ArtifactKind.TENSOR, ArtifactKind.ARRAY):
            array = zarr.open_array(store, path=path, mode="r")
            return restore_member(read_array(self._local_root, array), str(array.attrs["dtype"]))
        if kind is ArtifactKind.JSON:
            metadata = json.loads(self.read_bytes(self.path(path, "zarr.json")))
            return metadata["attributes"]["forge"]["value"]
        group = zarr.open_group(store, path=path, mode="r")
        header: dict[str, Any] = dict(group.attrs["forge"])  # type: ignore[arg-type]
        blob = bytes(np.asarray(_array(group, "blob"))) if "blob" in group else b""
        if kind is ArtifactKind.OBJECT:
            import pickle

            return pickle.loads(blob)  # noqa: S301 - written by this store's put()
        tensors = {
            name: restore_member(read_array(self._local_root, group[f"tensors/{name}"]),
                                 str(group[f"tensors/{name}"].attrs["dtype"]))
            for name in header["members"]
        }
        if kind is ArtifactKind.MODEL:
            return restore_model(blob, tensors, list(header.get("transient_buffers", [])))
        return {**tensors, **header.get("extras", {})}

    def header(self, artifact_hash: str) -> dict[str, Any]:
        """The hashed header of an artifact: kind, members' hashes, metadata."""
        import zarr

        self.info(artifact_hash)
        path = self._object_path(artifact_hash)
        node = zarr.open(self._node_store(path), path=path, mode="r")
        return dict(node.attrs["forge"])  # type: ignore[arg-type]

    def disk_usage(self) -> int:
        """Bytes under ``objects/`` (what deduplication saves)."""
        folder = self.path("objects")
        if not self._fs.exists(folder):
            return 0
        return int(sum(self._fs.du(folder, total=False).values()))

    # -- presenting --------------------------------------------------------------------------
    def summary(self, artifact_hash: str) -> dict[str, Any]:
        """Provenance, shape, dtype and statistics for ``forge artifact show``."""
        info = self.info(artifact_hash)
        provenance = self.provenance(artifact_hash)
        return summarize(info, provenance, self.get(artifact_hash),
                         lambda: self.header(artifact_hash))

    def export(self, artifact_hash: str, destination: str | os.PathLike[str]) -> Path:
        """Write an artifact as a plain file: .npy, .npz, .pt (state dict) or .json."""
        info = self.info(artifact_hash)
        return export_value(info, self.get(artifact_hash), Path(destination))


#: Object stores: keys without folders.
_FLAT_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")


def _flat(location: str) -> bool:
    """Whether ``location`` is in an object store (no folders)."""
    return "://" in location and location.split("://", 1)[0].lower() in _FLAT_PROTOCOLS


def _array(group: Any, path: str) -> Any:
    """The whole content of the array at ``path`` in ``group``."""
    return group[path][...]
