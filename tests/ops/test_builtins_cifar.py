"""DownloadCIFAR10 against a local HTTP server serving a tiny archive in the real format."""

from __future__ import annotations

import hashlib
import io
import pickle
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy
import pytest

from forge_ops.operations import builtin_code
from forge_ops.runtime import MemorySink, OperationFailed, execute_operation

torch = pytest.importorskip("torch")

PER_BATCH = 3


def _batch(label: str, count: int, seed: int) -> bytes:
    """A batch as CIFAR-10's python version pickles it (bytes keys, uint8 rows of 3072)."""
    rng = numpy.random.default_rng(seed)
    batch = {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, count)],
        b"data": rng.integers(0, 256, (count, 3072), dtype=numpy.uint8),
        b"filenames": [f"image_{i}.png".encode() for i in range(count)],
    }
    return pickle.dumps(batch, protocol=2)


def tiny_archive() -> tuple[bytes, dict[str, dict[bytes, Any]]]:
    members = {f"data_batch_{n}": _batch(f"training batch {n} of 5", PER_BATCH, n)
               for n in range(1, 6)}
    members["test_batch"] = _batch("testing batch 1 of 1", 2, 99)
    members["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue(), {name: pickle.loads(data) for name, data in members.items()}


class _Server:
    def __init__(self) -> None:
        self.body = b""
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cifar-10-python.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    yield running
    running.close()


def download(sink: MemorySink | None = None, **attributes: Any) -> dict[str, Any]:
    return execute_operation(builtin_code("DownloadCIFAR10"), attributes, {}, {},
                             sink if sink is not None else MemorySink(), name="DownloadCIFAR10")


def test_downloads_verifies_caches_and_reads_the_real_format(server: _Server,
                                                               tmp_path: Path) -> None:
    server.body, batches = tiny_archive()
    md5 = hashlib.md5(server.body).hexdigest()
    result = download(url=server.url, md5=md5, cache_dir=str(tmp_path))
    train, test = result["train"], result["test"]
    assert train["x"].shape == (5 * PER_BATCH, 3, 32, 32) and train["x"].dtype == torch.uint8
    assert test["x"].shape == (2, 3, 32, 32) and test["y"].dtype == torch.int64
    first = batches["data_batch_1"]
    assert train["x"][0].flatten().tolist() == first[b"data"][0].tolist()
    expected_labels = [label for n in range(1, 6)
                       for label in batches[f"data_batch_{n}"][b"labels"]]
    assert train["y"].tolist() == expected_labels
    assert test["y"].tolist() == batches["test_batch"][b"labels"]
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == server.body

    sink = MemorySink()
    again = download(sink, url=server.url, md5=md5, cache_dir=str(tmp_path), train_limit=4)
    assert server.requests == 1  # served from the cache
    assert "using cached" in sink.text()
    assert again["train"]["x"].shape[0] == 4
    assert torch.equal(again["train"]["x"], train["x"][:4])


def test_corrupted_archive_fails_the_checksum(server: _Server, tmp_path: Path) -> None:
    body, _ = tiny_archive()
    server.body = body[:-10] + b"corrupted!"
    with pytest.raises(OperationFailed, match="checksum mismatch") as info:
        download(url=server.url, md5=hashlib.md5(body).hexdigest(), cache_dir=str(tmp_path))
    assert "try again, or fix the url/md5 attributes" in info.value.message
    assert list(tmp_path.iterdir()) == []  # nothing corrupt is left in the cache


def test_default_checksum_is_the_official_one(server: _Server, tmp_path: Path) -> None:
    server.body, _ = tiny_archive()
    with pytest.raises(OperationFailed, match="expected c58f30108f718f92721af3b95e74349a"):
        download(url=server.url, cache_dir=str(tmp_path))


def test_offline_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OperationFailed, match="could not download CIFAR-10") as info:
        download(url=f"http://127.0.0.1:{port}/x.tar.gz", cache_dir=str(tmp_path), timeout=5.0)
    assert "use SyntheticImages to work offline" in info.value.message
    assert list(tmp_path.iterdir()) == []


def test_archive_with_foreign_objects_is_refused(server: _Server, tmp_path: Path) -> None:
    payload = pickle.dumps({b"data": Path("x"), b"labels": []}, protocol=2)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in [f"data_batch_{n}" for n in range(1, 6)] + ["test_batch"]:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    server.body = buffer.getvalue()
    with pytest.raises(OperationFailed, match="unexpected object pathlib"):
        download(url=server.url, md5=hashlib.md5(server.body).hexdigest(),
                 cache_dir=str(tmp_path))
