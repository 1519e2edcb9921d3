"""The content-addressed artifact store: hashing, dedupe, kinds, provenance, summaries."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from forge_ops.artifacts import ArtifactError, ArtifactStore, Provenance, encode


class TestHashing:
    def test_hash_covers_dtype_shape_and_bytes(self) -> None:
        base = encode(np.arange(6, dtype=np.int32)).hash
        assert encode(np.arange(6, dtype=np.int32)).hash == base
        assert encode(np.arange(6, dtype=np.int64)).hash != base
        assert encode(np.arange(6, dtype=np.int32).reshape(2, 3)).hash != base
        changed = np.arange(6, dtype=np.int32)
        changed[5] = 7
        assert encode(changed).hash != base

    def test_non_contiguous_arrays_hash_like_their_contiguous_copy(self) -> None:
        array = np.arange(12.0).reshape(3, 4)
        assert encode(array.T).hash == encode(np.ascontiguousarray(array.T)).hash

    def test_large_arrays_hash_the_same_whatever_the_thread_count(self) -> None:
        from blake3 import blake3

        from forge_ops.artifacts import _hashing

        array = np.random.default_rng(0).standard_normal(_hashing.PARALLEL_BYTES // 4 + 123,
                                                         dtype=np.float32)
        header = {"kind": "array", "dtype": array.dtype.str, "shape": list(array.shape)}
        single = blake3(_hashing.HASH_PREFIX, max_threads=1)
        single.update(_hashing.canonical_json(header).encode() + b"\0" + array.tobytes())
        assert encode(array).hash == single.hexdigest()  # hashed by several threads
        changed = array.copy()
        changed[-1] += 1  # the last bytes count too
        assert encode(changed).hash != encode(array).hash

    def test_torch_tensor_and_numpy_array_are_distinct_kinds(self) -> None:
        assert encode(torch.arange(3)).kind == "tensor"
        assert encode(np.arange(3)).kind == "array"
        assert encode(torch.arange(3)).hash != encode(np.arange(3)).hash

    def test_model_hash_depends_on_weights_not_on_object_identity(self) -> None:
        torch.manual_seed(0)
        first = torch.nn.Linear(3, 2)
        torch.manual_seed(0)
        second = torch.nn.Linear(3, 2)
        assert encode(first).hash == encode(second).hash
        with torch.no_grad():
            second.bias += 1
        assert encode(first).hash != encode(second).hash


class TestStore:
    def test_identical_content_is_stored_once(self, store: ArtifactStore) -> None:
        value = torch.randn(64, 64)
        first = store.put(value)
        usage = store.disk_usage()
        second = store.put(value.clone())
        assert first.hash == second.hash
        assert first.bytes_written == 64 * 64 * 4
        assert second.bytes_written == 0
        assert store.disk_usage() == usage

    @pytest.mark.parametrize("where", ["folder", "object store"])
    def test_provenance_is_recorded_per_producer(self, tmp_path: Path, where: str) -> None:
        store = any_store(tmp_path, where)
        value = np.ones(3)
        artifact = store.put(value, Provenance("c1", "exec1", "job1")).hash
        store.put(value, Provenance("c2", "exec2", "job9"))
        store.put(value, Provenance("c2", "exec2", "job9"))  # the same producer again
        producers = [(p.commit, p.execution, p.job) for p in store.provenance(artifact)]
        assert sorted(producers) == [("c1", "exec1", "job1"), ("c2", "exec2", "job9")]

    def test_records_of_a_folder_store_are_rows_of_its_index(self, store: ArtifactStore
                                                             ) -> None:
        from forge_ops.execution import CacheIndex
        from forge_ops.execution._cache import CacheEntry

        artifact = store.put([1], Provenance("c1", "exec1", "job1")).hash
        CacheIndex(store).record(CacheEntry("k" * 64, {"out": artifact}, "exec1", "job1", "t"))
        root = Path(store.location)
        assert not (root / "provenance").exists() and not (root / "cache").exists()
        with contextlib.closing(sqlite3.connect(root / "index.sqlite")) as db:
            assert db.execute("SELECT count(*) FROM provenance").fetchone() == (1,)
            assert db.execute("SELECT key FROM cache").fetchall() == [("k" * 64,)]

    def test_records_written_before_the_index_are_still_read(self, store: ArtifactStore
                                                              ) -> None:
        from forge_ops.execution import CacheIndex

        artifact = store.put(np.ones(2), Provenance("c1", "exec1", "job1")).hash
        folder = Path(store.path("provenance", artifact))  # a file per record, as before
        folder.mkdir(parents=True)
        (folder / "old.json").write_text(json.dumps(
            {"commit": "c0", "execution": "exec0", "job": "job0", "created": "2026-01-01"}))
        (folder / "half.json").write_text('{"commit": "c2", "exec')  # a writer mid-way
        (folder / ".aside.json.tmp").write_text("{}")
        assert [p.job for p in store.provenance(artifact)] == ["job0", "job1"]
        old = Path(store.path("cache", "kk", "k" * 64 + ".json"))
        old.parent.mkdir(parents=True)
        old.write_text(json.dumps({"key": "k" * 64, "outputs": {"out": artifact},
                                   "execution": "exec0", "job": "job0", "created": "t0"}))
        entry = CacheIndex(store).lookup("k" * 64)
        assert entry is not None and entry.execution == "exec0"

    def test_records_from_many_processes_at_once_are_all_kept(self, store: ArtifactStore
                                                               ) -> None:
        import multiprocessing

        from forge_ops.execution import CacheIndex

        artifact = store.put([7]).hash  # no index yet: the processes race to create it
        context = multiprocessing.get_context("spawn")
        start = context.Barrier(4)
        processes = [context.Process(target=_record_many, args=(store, artifact, worker, 25,
                                                                start))
                     for worker in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [p.exitcode for p in processes] == [0] * 4
        assert len(store.provenance(artifact)) == 100
        index = CacheIndex(store)
        assert all(index.lookup(f"{worker}{i:063d}") is not None
                   for worker in range(4) for i in range(25))

    def test_a_damaged_index_says_so_and_the_artifacts_still_read(self, store: ArtifactStore
                                                                  ) -> None:
        from forge_ops.execution import CacheIndex

        artifact = store.put({"accuracy": 0.5}).hash
        Path(store.location, "index.sqlite").write_bytes(b"not a database" * 100)
        with pytest.raises(ArtifactError, match=r"index\.sqlite.*move it aside"):
            CacheIndex(store).lookup("k" * 64)
        assert store.get(artifact) == {"accuracy": 0.5}

    def test_a_process_keeps_few_indexes_open_and_reopens_the_others(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from forge_ops.artifacts import _records

        monkeypatch.setattr(_records, "_MAX_OPEN", 2)
        stores = [ArtifactStore(tmp_path / f"store{i}") for i in range(5)]
        artifacts = [s.put([i], Provenance("c", "e", f"job{i}")).hash
                     for i, s in enumerate(stores)]

        def open_indexes() -> int:
            links = set()
            for fd in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError):  # the listing's own descriptor is gone
                    links.add(os.readlink(f"/proc/self/fd/{fd}"))
            return len({link for link in links if str(tmp_path) in link
                        and link.endswith("index.sqlite")})

        assert open_indexes() == 2  # the two stores used last
        assert [[p.job for p in s.provenance(a)] for s, a in zip(stores, artifacts,
                                                                  strict=True)] == \
            [[f"job{i}"] for i in range(5)]  # the closed ones reopen

    def test_reading_a_store_creates_no_index(self, store: ArtifactStore) -> None:
        from forge_ops.execution import CacheIndex

        assert store.provenance("a" * 64) == []
        assert CacheIndex(store).lookup("k" * 64) is None
        assert not Path(store.location, "index.sqlite").exists()

    def test_put_of_known_content_reports_the_first_record(self, store: ArtifactStore) -> None:
        first = store.put({"accuracy": 0.5})
        again = store.put({"accuracy": 0.5})
        assert (again.hash, again.kind, again.bytes_written) == (first.hash, "json", 0)
        assert again.info == first.info  # read from the store: the first storage's time

    @pytest.mark.parametrize("where", ["folder", "object store"])
    def test_cache_entries_are_replaced_by_newer_runs(self, tmp_path: Path, where: str
                                                      ) -> None:
        from forge_ops.execution import CacheIndex
        from forge_ops.execution._cache import CacheEntry

        store = any_store(tmp_path, where)
        index = CacheIndex(store)
        output = store.put([1, 2]).hash
        assert index.lookup("k" * 64) is None
        index.record(CacheEntry("k" * 64, {"out": output}, "exec1", "job1", "t1"))
        index.record(CacheEntry("k" * 64, {"out": output}, "exec2", "job1", "t2"))
        assert index.lookup("k" * 64) == CacheEntry("k" * 64, {"out": output}, "exec2",
                                                    "job1", "t2")  # the newest run is cited
        gone = CacheEntry("g" * 64, {"out": "f" * 64}, "exec3", "job2", "t3")
        index.record(gone)
        assert index.lookup("g" * 64) is None  # its output is no longer stored

    def test_a_half_written_cache_file_is_a_miss(self, store: ArtifactStore) -> None:
        from forge_ops.execution import CacheIndex
        from forge_ops.execution._cache import CacheEntry

        index = CacheIndex(store)
        half = Path(store.path("cache", "hh", "h" * 64 + ".json"))
        half.parent.mkdir(parents=True)
        half.write_text('{"key": "hhh", "out')
        assert index.lookup("h" * 64) is None  # a writer mid-way: a miss, not an error
        output = store.put([1, 2]).hash
        index.record(CacheEntry("h" * 64, {"out": output}, "exec3", "job2", "t3"))
        assert index.lookup("h" * 64) == CacheEntry("h" * 64, {"out": output}, "exec3",
                                                    "job2", "t3")

    @pytest.mark.parametrize("value", [
        torch.arange(12, dtype=torch.float32).reshape(3, 4),
        torch.tensor(2.5),
        torch.zeros(0, 3),
        torch.ones(4, dtype=torch.bfloat16),
        torch.tensor([True, False]),
        np.linspace(0, 1, 7),
    ])
    def test_arrays_round_trip(self, store: ArtifactStore, value: object) -> None:
        loaded = store.get(store.put(value).hash)
        assert type(loaded) is type(value)
        if isinstance(value, torch.Tensor):
            assert loaded.dtype == value.dtype
            assert torch.equal(loaded, value)
        else:
            np.testing.assert_array_equal(loaded, value)

    def test_model_round_trips_with_weights_and_metadata(self, store: ArtifactStore) -> None:
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        model[0].register_buffer("scale", torch.full((4,), 3.0), persistent=False)
        model.forge_architecture = {"name": "tiny"}
        model(torch.randn(8, 3))  # move BatchNorm's running statistics
        artifact = store.put(model).hash
        loaded = store.get(artifact)
        assert isinstance(loaded, torch.nn.Sequential)
        for key, tensor in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], tensor)
        assert torch.equal(loaded[0].scale, torch.full((4,), 3.0))
        assert loaded[0].weight.requires_grad
        model.eval()
        loaded.eval()
        probe = torch.randn(2, 3)
        assert torch.equal(loaded(probe), model(probe))
        summary = store.summary(artifact)
        assert summary["kind"] == "model"
        assert summary["metadata"]["architecture"] == {"name": "tiny"}
        assert summary["metadata"]["framework_version"] == torch.__version__.split("+")[0]
        assert summary["parameters"] == 3 * 4 + 4 + 4 + 4  # Linear, then BatchNorm's affine
        assert "0.scale" in summary["members"]

    def test_dataset_is_a_group_of_tensors_with_json_extras(self, store: ArtifactStore) -> None:
        dataset = {"x": torch.randn(5, 2), "y": torch.arange(5), "classes": ["a", "b"]}
        artifact = store.put(dataset)
        assert artifact.info.kind == "dataset"
        assert artifact.info.bytes == 5 * 2 * 4 + 5 * 8 + len(b'{"classes":["a","b"]}')
        loaded = store.get(artifact.hash)
        assert torch.equal(loaded["x"], dataset["x"])
        assert torch.equal(loaded["y"], dataset["y"])
        assert loaded["classes"] == ["a", "b"]
        assert set(store.summary(artifact.hash)["members"]) == {"x", "y"}

    def test_metrics_are_json(self, store: ArtifactStore) -> None:
        metrics = {"accuracy": 0.75, "accuracy/cat": 0.5}
        artifact = store.put(metrics)
        assert artifact.info.kind == "json"
        # Its size is the value's compact JSON, not the 0 B of arrays it has none of.
        size = len(b'{"accuracy":0.75,"accuracy/cat":0.5}')
        assert artifact.bytes_written == artifact.info.bytes == size
        assert store.get(artifact.hash) == metrics
        assert store.summary(artifact.hash)["value"] == metrics

    def test_other_values_are_pickled(self, store: ArtifactStore) -> None:
        artifact = store.put((1, "two"))  # a tuple does not survive JSON unchanged
        assert artifact.info.kind == "object"
        assert store.get(artifact.hash) == (1, "two")

    def test_summary_has_shape_dtype_stats_and_provenance(self, store: ArtifactStore) -> None:
        artifact = store.put(torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
                             Provenance("c", "e", "j")).hash
        summary = store.summary(artifact)
        assert summary["shape"] == [2, 2]
        assert summary["dtype"] == "torch.float32"
        assert summary["stats"] == {"min": 1.0, "max": 4.0, "mean": 2.5,
                                    "std": pytest.approx(1.118033988749895)}
        assert summary["provenance"][0]["execution"] == "e"

    def test_export_writes_plain_files(self, store: ArtifactStore, tmp_path: Path) -> None:
        tensor = store.put(torch.arange(4)).hash
        assert np.array_equal(np.load(store.export(tensor, tmp_path / "t.npy")), np.arange(4))
        dataset = store.put({"x": np.ones((2, 2)), "y": np.zeros(2)}).hash
        with np.load(store.export(dataset, tmp_path / "d.npz")) as archive:
            assert set(archive.files) == {"x", "y"}
        metrics = store.put({"accuracy": 1.0}).hash
        assert json.loads(store.export(metrics, tmp_path / "m.json").read_text()) == {
            "accuracy": 1.0}
        model = store.put(torch.nn.Linear(2, 1)).hash
        state = torch.load(store.export(model, tmp_path / "model.pt"))
        assert set(state) == {"weight", "bias"}

    def test_unknown_and_malformed_hashes_say_what_is_wrong(self, store: ArtifactStore) -> None:
        with pytest.raises(ArtifactError, match="no artifact"):
            store.get("0" * 64)
        with pytest.raises(ArtifactError, match="64 lowercase hex"):
            store.get("../../etc/passwd")

    def test_bad_dataset_keys_are_refused(self, store: ArtifactStore) -> None:
        with pytest.raises(ArtifactError, match="without '/'"):
            store.put({"a/b": torch.ones(1)})

    def test_interrupted_writes_are_not_visible_and_are_completed(self, store: ArtifactStore
                                                                  ) -> None:
        import shutil

        value = np.arange(10)
        artifact = store.put(value).hash
        ref = Path(store.path("refs", artifact[:2], f"{artifact}.json"))
        ref.unlink()  # the writer died after placing the object, before its ref
        assert not store.exists(artifact)
        assert store.put(value).bytes_written == 0  # the object was complete: kept
        np.testing.assert_array_equal(store.get(artifact), value)
        ref.unlink()  # the writer died while building the object aside
        shutil.rmtree(Path(store.path("objects", artifact[:2], artifact)))
        assert store.put(value).bytes_written == value.nbytes
        np.testing.assert_array_equal(store.get(artifact), value)

    def test_concurrent_writers_of_the_same_content(self, store: ArtifactStore) -> None:
        from concurrent.futures import ThreadPoolExecutor

        value = {"x": np.arange(1000), "y": np.ones(1000)}
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: store.put(value), range(8)))
        assert len({r.hash for r in results}) == 1
        loaded = store.get(results[0].hash)
        np.testing.assert_array_equal(loaded["x"], value["x"])

    def test_small_files_leave_no_temporary_files_behind(self, store: ArtifactStore) -> None:
        artifact = store.put({"accuracy": 0.5}, Provenance("c1", "exec1", "job1")).hash
        store.put({"accuracy": 0.5}, Provenance("c1", "exec1", "job2"))
        leftovers = [p for p in Path(store.location).rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == []
        assert store.get(artifact) == {"accuracy": 0.5}
        assert {p.job for p in store.provenance(artifact)} == {"job1", "job2"}

    def test_a_json_artifact_without_its_ref_is_not_listed_but_still_reads(
            self, store: ArtifactStore) -> None:
        artifact = store.put([1, 2, 3]).hash
        Path(store.path("refs", artifact[:2], f"{artifact}.json")).unlink()
        assert not store.exists(artifact)
        assert store.get(artifact) == [1, 2, 3]  # the object was written whole, atomically
        assert store.put([1, 2, 3]).bytes_written == len(b"[1,2,3]")  # written again, whole
        assert store.exists(artifact)
        assert store.put([1, 2, 3]).bytes_written == 0

    def test_any_fsspec_location_works(self) -> None:
        memory = ArtifactStore("memory://forge-test/artifacts")
        artifact = memory.put({"x": np.arange(3), "y": np.arange(3)})
        assert memory.get(artifact.hash)["x"].tolist() == [0, 1, 2]
        assert memory.put({"x": np.arange(3), "y": np.arange(3)}).bytes_written == 0

    def test_store_pickles_by_location(self, store: ArtifactStore) -> None:
        import pickle

        artifact = store.put(np.arange(3)).hash
        clone = pickle.loads(pickle.dumps(store))
        assert clone.location == store.location
        assert clone.exists(artifact)


def any_store(tmp_path: Path, where: str) -> ArtifactStore:
    """A store in a local folder, or in fsspec's in-memory object store (a file per record)."""
    if where == "folder":
        return ArtifactStore(tmp_path / "artifacts")
    return ArtifactStore(f"memory://forge-test/{uuid.uuid4().hex}")


def _record_many(store: ArtifactStore, artifact: str, worker: int, count: int,
                 start: Any) -> None:
    """In a process of its own: ``count`` provenance records and cache entries, one at a
    time, from when all the processes are ready."""
    from forge_ops.execution import CacheIndex
    from forge_ops.execution._cache import CacheEntry

    index = CacheIndex(store)
    start.wait()
    for i in range(count):
        store.add_provenance(artifact, Provenance("c", f"exec{worker}", f"job{i}"))
        index.record(CacheEntry(f"{worker}{i:063d}", {"out": artifact}, "e", "j", "t"))


def building(store: ArtifactStore) -> list[str]:
    """What is left in the store's building area (zarr keeps a group's zarr.json there)."""
    folder = Path(store.location, "tmp")
    return [p.name for p in folder.iterdir() if p.name != "zarr.json"] if folder.exists() else []


class TestLargeArrays:
    def test_large_local_arrays_are_plain_zarr_readable_by_zarr(self, store: ArtifactStore
                                                               ) -> None:
        import zarr

        value = np.arange(3 * 1024 * 1024, dtype=np.float32).reshape(1024, 3072)  # 12 MiB
        artifact = store.put(value).hash
        np.testing.assert_array_equal(store.get(artifact), value)
        # Written without zarr's pipeline, but any zarr reader sees the same array.
        raw = zarr.open_array(store.location, path=f"objects/{artifact[:2]}/{artifact}",
                              mode="r")
        np.testing.assert_array_equal(raw[...], value)

    def test_large_model_and_dataset_members_round_trip(self, store: ArtifactStore) -> None:
        dataset = {"x": torch.randn(2048, 1024), "y": torch.arange(2048)}
        loaded = store.get(store.put(dataset).hash)
        assert torch.equal(loaded["x"], dataset["x"])
        assert torch.equal(loaded["y"], dataset["y"])

    def test_a_new_shape_is_written_while_hashed_and_a_known_one_hashed_first(
            self, store: ArtifactStore) -> None:
        value = np.random.default_rng(0).standard_normal((1024, 1024))  # 8 MiB
        first = store.put(value)
        assert first.bytes_written == value.nbytes
        np.testing.assert_array_equal(store.get(first.hash), value)
        usage = store.disk_usage()
        again = store.put(value.copy())  # the shape is known: hashed first, nothing written
        assert (again.hash, again.bytes_written, store.disk_usage()) == (first.hash, 0, usage)
        other = store.put(value + 1)  # same shape, other content: stored in full
        assert other.bytes_written == value.nbytes
        np.testing.assert_array_equal(store.get(other.hash), value + 1)
        assert building(store) == []

    @pytest.mark.parametrize("tensor", [
        torch.randn(1024, 2048).to(torch.bfloat16),  # kept as int16 bits
        torch.randn(2048, 1024).T,  # not contiguous: encoded from a copy
    ], ids=["bfloat16", "transposed"])
    def test_large_tensors_of_any_layout_round_trip(self, store: ArtifactStore,
                                                    tensor: torch.Tensor) -> None:
        loaded = store.get(store.put(tensor).hash)
        assert loaded.dtype == tensor.dtype
        assert torch.equal(loaded, tensor)
        assert building(store) == []

    def test_a_failed_hash_leaves_no_file_aside(self, store: ArtifactStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
        import forge_ops.artifacts._store as store_module

        def failing_encode(value: object) -> None:
            raise MemoryError("hashing failed")

        monkeypatch.setattr(store_module, "encode", failing_encode)
        with pytest.raises(MemoryError):
            store.put(np.zeros((1024, 1024)))
        assert building(store) == []
