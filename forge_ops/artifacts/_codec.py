"""Turning Python values into hashed, storable parts and back.

Kinds: ``tensor`` (torch), ``array`` (numpy), ``model`` (an ``nn.Module``: its state-dict tensors
plus metadata), ``dataset`` (a dict of tensors/arrays, with optional JSON extras), ``json`` (small
structured results such as metrics) and ``object`` (anything else, pickled; its hash is only as
stable as its pickle).
"""

from __future__ import annotations

import copy
import json
import math
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from ._hashing import hash_array, hash_bytes, hash_header


class ArtifactKind(StrEnum):
    """What an artifact holds; decides how it is stored and loaded back."""

    TENSOR = "tensor"
    ARRAY = "array"
    MODEL = "model"
    DATASET = "dataset"
    JSON = "json"
    OBJECT = "object"


class ArtifactError(ValueError):
    """A value cannot be stored, or a stored artifact cannot be read."""


@dataclass
class Member:
    """One array of an artifact, with the dtype name it is restored to."""

    array: np.ndarray
    dtype_name: str
    hash: str


@dataclass
class Encoded:
    """A value split into hashed parts, ready to write."""

    kind: ArtifactKind
    hash: str
    header: dict[str, Any]
    members: dict[str, Member] = field(default_factory=dict)
    #: Bytes stored beside the members but not part of the hash (a model's skeleton).
    blob: bytes | None = None

    @property
    def nbytes(self) -> int:
        """The content's size: its arrays, its blob and the JSON it carries in its header (a
        JSON artifact's value, a dataset's extras), so small results do not read as 0 B."""
        carried = [self.header[key] for key in ("value", "extras") if self.header.get(key)]
        return (sum(m.array.nbytes for m in self.members.values()) + len(self.blob or b"")
                + sum(len(json.dumps(v, sort_keys=True, separators=(",", ":")).encode())
                      for v in carried))


# torch dtypes numpy cannot hold: stored as same-width integers, restored by view().
_VIEW_AS = {"torch.bfloat16": "int16", "torch.float8_e4m3fn": "int8", "torch.float8_e5m2": "int8"}


def _torch() -> Any:
    """torch if this process already imported it (a value cannot be a tensor otherwise)."""
    return sys.modules.get("torch")


def _is_tensor(value: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.Tensor)


def _is_module(value: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.nn.Module)


def _tensor_to_numpy(tensor: Any) -> tuple[np.ndarray, str]:
    torch = _torch()
    tensor = tensor.detach().cpu().contiguous()
    dtype_name = str(tensor.dtype)
    if dtype_name in _VIEW_AS:
        tensor = tensor.view(getattr(torch, _VIEW_AS[dtype_name]))
    return tensor.numpy(), dtype_name


def _storable_array(array: np.ndarray) -> bool:
    return array.dtype.kind in "biufc" and not array.dtype.hasobject


def _member(value: Any) -> Member:
    if _is_tensor(value):
        array, dtype_name = _tensor_to_numpy(value)
        return Member(array, dtype_name, hash_array(array, ArtifactKind.TENSOR, dtype_name))
    array = value if value.flags.c_contiguous else np.array(value, order="C")
    return Member(array, array.dtype.str, hash_array(array, ArtifactKind.ARRAY, array.dtype.str))


def single_array(value: Any) -> tuple[np.ndarray, str, str] | None:
    """(array, kind, dtype name) that ``encode`` stores for a single tensor or array, when it
    is at hand without a copy (a contiguous CPU tensor, a C-ordered array); else None."""
    if _is_tensor(value):
        if value.device.type != "cpu" or not value.is_contiguous():
            return None
        array, dtype_name = _tensor_to_numpy(value)
        kind = ArtifactKind.TENSOR
    elif isinstance(value, np.ndarray) and value.flags.c_contiguous:
        array, dtype_name, kind = value, value.dtype.str, ArtifactKind.ARRAY
    else:
        return None
    return (array, kind.value, dtype_name) if _storable_array(array) else None


def _json_value(value: Any) -> Any | None:
    """The value if it round-trips through JSON unchanged, else None."""
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return None
    decoded = json.loads(text)
    if _same_json(decoded, value):
        return decoded
    return None


def _same_json(decoded: Any, value: Any) -> bool:
    # Tuples become lists and int keys become strings in JSON: such values do not round-trip.
    if isinstance(value, float) and math.isnan(value):
        return isinstance(decoded, float) and math.isnan(decoded)
    if type(decoded) is not type(value):
        return False
    if isinstance(value, dict):
        return decoded.keys() == value.keys() and all(
            _same_json(decoded[k], value[k]) for k in value
        )
    if isinstance(value, list):
        return len(decoded) == len(value) and all(
            _same_json(d, v) for d, v in zip(decoded, value, strict=True)
        )
    return bool(decoded == value)


def _check_member_name(name: Any) -> str:
    if not isinstance(name, str) or not name or "/" in name or name.startswith("__") or name in {
        ".", ".."
    }:
        raise ArtifactError(
            f"dataset/model key {name!r} cannot be stored: use a non-empty string without '/' "
            "that does not start with '__'"
        )
    return name


def encode(value: Any) -> Encoded:
    """Split ``value`` into hashed parts; see the module docstring for the kinds."""
    if _is_tensor(value):
        member = _member(value)
        if _storable_array(member.array):
            return Encoded(ArtifactKind.TENSOR, member.hash, _array_header(ArtifactKind.TENSOR,
                           member), {"": member})
    elif isinstance(value, np.ndarray) and _storable_array(value):
        member = _member(value)
        return Encoded(ArtifactKind.ARRAY, member.hash, _array_header(ArtifactKind.ARRAY, member),
                       {"": member})
    elif _is_module(value):
        return _encode_model(value)
    elif isinstance(value, dict) and any(
        _is_tensor(v) or isinstance(v, np.ndarray) for v in value.values()
    ):
        encoded = _encode_dataset(value)
        if encoded is not None:
            return encoded
    else:
        plain = _json_value(value)
        if plain is not None or value is None:
            header = {"kind": ArtifactKind.JSON.value, "value": plain}
            return Encoded(ArtifactKind.JSON, hash_header(header), header)
    return _encode_object(value)


def _array_header(kind: ArtifactKind, member: Member) -> dict[str, Any]:
    return {"kind": kind.value, "dtype": member.dtype_name, "shape": list(member.array.shape)}


def _encode_dataset(value: dict[Any, Any]) -> Encoded | None:
    members: dict[str, Member] = {}
    extras: dict[str, Any] = {}
    for key, item in value.items():
        name = _check_member_name(key)
        if _is_tensor(item) or isinstance(item, np.ndarray):
            member = _member(item)
            if not _storable_array(member.array):
                return None
            members[name] = member
        else:
            plain = _json_value(item)
            if plain is None and item is not None:
                return None
            extras[name] = plain
    header = {
        "kind": ArtifactKind.DATASET.value,
        "members": {name: m.hash for name, m in members.items()},
        "extras": extras,
    }
    return Encoded(ArtifactKind.DATASET, hash_header(header), header, members)


def _encode_model(module: Any) -> Encoded:
    import cloudpickle
    import torch

    state = module.state_dict()
    members = {_check_member_name(k): _member(t) for k, t in state.items()}
    # Non-persistent buffers are not in the state dict but the module needs them back.
    transient = sorted(name for name, _ in module.named_buffers() if name not in state)
    buffers = dict(module.named_buffers())
    members.update({_check_member_name(name): _member(buffers[name]) for name in transient})
    architecture = _json_value(getattr(module, "forge_architecture", None))
    metadata = {
        "class": f"{type(module).__module__}.{type(module).__qualname__}",
        "framework": "torch",
        "framework_version": torch.__version__.split("+")[0],
        "architecture": architecture,
    }
    header = {
        "kind": ArtifactKind.MODEL.value,
        "members": {name: m.hash for name, m in members.items()},
        "transient_buffers": transient,
        "metadata": metadata,
    }
    # The skeleton (the module without its tensors' data) is pickled with meta tensors; the
    # data comes back from the stored members, so the hash depends on weights and metadata only.
    memo: dict[int, Any] = {}
    for param in module.parameters():
        memo[id(param)] = torch.nn.Parameter(param.detach().to("meta"),
                                             requires_grad=param.requires_grad)
    for buffer in module.buffers():
        memo[id(buffer)] = buffer.detach().to("meta")
    skeleton = copy.deepcopy(module, memo)
    blob = cloudpickle.dumps(skeleton)
    return Encoded(ArtifactKind.MODEL, hash_header(header), header, members, blob)


def _encode_object(value: Any) -> Encoded:
    import cloudpickle

    try:
        data = cloudpickle.dumps(value)
    except Exception as exc:
        raise ArtifactError(
            f"cannot store a value of type {type(value).__name__}: it is not a tensor, array, "
            f"module, dict of tensors, JSON value, nor picklable ({exc})"
        ) from exc
    header = {"kind": ArtifactKind.OBJECT.value, "type": type(value).__qualname__}
    blob_hash = hash_bytes(data, header)
    return Encoded(ArtifactKind.OBJECT, blob_hash, header, blob=data)


def restore_member(array: np.ndarray, dtype_name: str) -> Any:
    """An array read back from storage, as the tensor or array it was stored from."""
    if not dtype_name.startswith("torch."):
        return array
    import torch

    if not (array.flags.writeable and array.flags.c_contiguous):
        array = np.array(array, order="C")
    tensor = torch.from_numpy(array)
    if dtype_name in _VIEW_AS:
        tensor = tensor.view(getattr(torch, dtype_name.removeprefix("torch.")))
    return tensor


def restore_model(blob: bytes, tensors: dict[str, Any], transient: list[str]) -> Any:
    """Rebuild a module from its pickled skeleton and stored tensors."""
    import pickle

    import torch

    module = pickle.loads(blob)  # noqa: S301 - our own skeleton, written by _encode_model
    # Materialise the meta tensors by hand: Module.to_empty() goes through torch's Python
    # reference kernels, whose first import costs about a second in a fresh job process.
    for submodule in module.modules():
        for name, param in submodule._parameters.items():
            if param is not None:
                submodule._parameters[name] = torch.nn.Parameter(
                    torch.empty(param.shape, dtype=param.dtype),
                    requires_grad=param.requires_grad)
        for name, buffer in submodule._buffers.items():
            if buffer is not None:
                submodule._buffers[name] = torch.empty(buffer.shape, dtype=buffer.dtype)
    module.load_state_dict({k: v for k, v in tensors.items() if k not in transient})
    for name in transient:
        owner, _, attribute = name.rpartition(".")
        module.get_submodule(owner)._buffers[attribute] = tensors[name]
    return module
