"""An artifact shown to people: its summary (``forge artifact show``) and plain-file export."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ._codec import ArtifactError, ArtifactKind
from ._info import ArtifactInfo, Provenance


def summarize(info: ArtifactInfo, provenance: list[Provenance], value: Any,
              header: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Provenance, shape, dtype and statistics of an artifact (``value``, loaded back), with
    its model metadata from ``header()`` (read only for models)."""
    summary: dict[str, Any] = asdict(info)
    summary["provenance"] = [asdict(p) for p in provenance]
    kind = ArtifactKind(info.kind)
    if kind in (ArtifactKind.TENSOR, ArtifactKind.ARRAY):
        summary["stats"] = _stats(value)
    elif kind in (ArtifactKind.MODEL, ArtifactKind.DATASET):
        tensors = (dict(value.state_dict(), **dict(value.named_buffers()))
                   if kind is ArtifactKind.MODEL else value)
        summary["members"] = {
            name: {"shape": list(t.shape), "dtype": str(t.dtype), "stats": _stats(t)}
            for name, t in tensors.items()
            if hasattr(t, "shape")
        }
        if kind is ArtifactKind.MODEL:
            summary["metadata"] = header()["metadata"]
            summary["parameters"] = int(sum(p.numel() for p in value.parameters()))
    elif kind is ArtifactKind.JSON:
        summary["value"] = value
    return summary


def export_value(info: ArtifactInfo, value: Any, destination: Path) -> Path:
    """Write an artifact (``value``, loaded back) as a plain file: .npy, .npz, .pt (state
    dict) or .json; returns the file written."""
    dest = destination
    kind = ArtifactKind(info.kind)
    if kind in (ArtifactKind.TENSOR, ArtifactKind.ARRAY):
        np.save(dest, _as_numpy(value))
        return dest if dest.suffix == ".npy" else dest.with_name(dest.name + ".npy")
    if kind is ArtifactKind.DATASET:
        arrays = {k: _as_numpy(v) for k, v in value.items() if hasattr(v, "shape")}
        np.savez(dest, **arrays)  # type: ignore[arg-type]
        return dest if dest.suffix == ".npz" else dest.with_name(dest.name + ".npz")
    if kind is ArtifactKind.MODEL:
        import torch

        torch.save(value.state_dict(), dest)
        return dest
    if kind is ArtifactKind.JSON:
        dest.write_text(json.dumps(value, indent=2))
        return dest
    raise ArtifactError(f"artifact {info.hash[:12]}… is a pickled object; load it with "
                        "ArtifactStore.get() in Python instead of exporting it")


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16",):
            value = value.float()
        return np.asarray(value.numpy())
    return np.asarray(value)


def _stats(value: Any) -> dict[str, float] | None:
    array = _as_numpy(value)
    if array.size == 0 or array.dtype.kind not in "biuf":
        return None
    as_float = array.astype(np.float64, copy=False)
    stats = {
        "min": float(as_float.min()),
        "max": float(as_float.max()),
        "mean": float(as_float.mean()),
        "std": float(as_float.std()),
    }
    return {k: (v if math.isfinite(v) else float("nan")) for k, v in stats.items()}
