"""DownloadCIFAR10: the official CIFAR-10 python archive, checksum-verified and cached.

The archive is downloaded once into ``cache_dir`` and checked against ``md5`` before it is read
(and again whenever the cached copy is used). Point ``url`` at a mirror or local server if the
official one is out of reach; use SyntheticImages for offline work.
"""

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NamedTuple

import numpy
import torch

from forge_ops.runtime import Dataset

ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES = [f"data_batch_{number}" for number in range(1, 6)]
TEST_BATCH = "test_batch"


class Datasets(NamedTuple):
    train: Dataset
    test: Dataset


class _ArrayUnpickler(pickle.Unpickler):
    """Reads the archive's pickled batches but builds nothing except numpy arrays."""

    ALLOWED = frozenset({("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the archive")
        return super().find_class(module, name)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, timeout: float) -> None:
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise ValueError(f"url must be an http(s) URL, got {url!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".download-")
    try:
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(  # noqa: S310 - scheme checked
            url, timeout=timeout
        ) as response:
            size = int(response.headers.get("Content-Length") or 0)
            done, shown = 0, -1
            for block in iter(lambda: response.read(1 << 20), b""):
                file.write(block)
                done += len(block)
                if size and done * 10 // size != shown:
                    shown = done * 10 // size
                    print(f"downloaded {done >> 20} of {size >> 20} MiB")
        os.replace(partial, target)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(
            f"could not download CIFAR-10 from {url}: {reason}. Check the network connection, "
            f"or copy {ARCHIVE} into {target.parent}, or set the url attribute to a reachable "
            "mirror; use SyntheticImages to work offline"
        ) from None
    finally:
        Path(partial).unlink(missing_ok=True)


def _batch(archive: tarfile.TarFile, name: str) -> tuple[numpy.ndarray, list[int]]:
    member = next((m for m in archive.getmembers() if m.isfile()
                   and m.name.rsplit("/", 1)[-1] == name), None)
    if member is None:
        raise ValueError(f"the archive has no {name}: it is not the CIFAR-10 python version")
    extracted = archive.extractfile(member)
    assert extracted is not None
    batch = _ArrayUnpickler(io.BytesIO(extracted.read()), encoding="bytes").load()
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    return numpy.asarray(data, dtype=numpy.uint8), list(labels)


def _dataset(parts: list[tuple[numpy.ndarray, list[int]]], limit: int) -> Dataset:
    pixels = numpy.concatenate([data for data, _ in parts]).reshape(-1, 3, 32, 32)
    labels = numpy.concatenate([numpy.asarray(found, dtype=numpy.int64) for _, found in parts])
    if limit > 0:
        pixels, labels = pixels[:limit], labels[:limit]
    return {"x": torch.from_numpy(pixels.copy()), "y": torch.from_numpy(labels.copy())}


def download_cifar10(
    *,
    url: str = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5: str = "c58f30108f718f92721af3b95e74349a",
    cache_dir: str = "~/.cache/forge/cifar10",
    timeout: float = 60.0,
    train_limit: int = 0,
    test_limit: int = 0,
) -> Datasets:
    """Return CIFAR-10's 50,000 training and 10,000 test images (the first ``train_limit`` /
    ``test_limit`` when those are > 0) as uint8 N×3×32×32 with int64 labels."""
    path = Path(cache_dir).expanduser() / ARCHIVE
    if path.exists() and _md5(path) == md5:
        print(f"using cached {path}")
    else:
        print(f"downloading {url}")
        _download(url, path, timeout)
        found = _md5(path)
        if found != md5:
            path.unlink()
            raise ValueError(f"checksum mismatch for {url}: md5 is {found}, expected {md5}. The "
                             "download is corrupt or is not the CIFAR-10 python archive; try "
                             "again, or fix the url/md5 attributes")
    with tarfile.open(path, "r:gz") as archive:
        train = _dataset([_batch(archive, name) for name in TRAIN_BATCHES], train_limit)
        test = _dataset([_batch(archive, TEST_BATCH)], test_limit)
    print(f"loaded {len(train['y'])} training and {len(test['y'])} test images")
    return Datasets(train, test)
