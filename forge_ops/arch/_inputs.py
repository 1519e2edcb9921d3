"""Sample inputs: what ``forge import --input`` describes and what an import is checked on.

An input is written ``DTYPE[SIZES]:LOW..HIGH`` — ``float[1,3,224,224]``, ``long[1,64]:0..30000``
(token ids for an embedding), ``[2,16]`` (float) — or as a plain shape ``1,3,32,32``. The
range is inclusive; integers default to ``0..1`` and floats to the standard normal. Several
``--input`` options describe several ``forward`` arguments, in order. Parsing needs no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from forge_ops.arch._user_code import ArchitectureImportError
from forge_ops.input_shape import InputShapeError, parse_input_shape

if TYPE_CHECKING:
    import torch

_DTYPES = {
    "float": "float32", "float32": "float32", "float64": "float64", "double": "float64",
    "half": "float16", "float16": "float16", "bfloat16": "bfloat16", "long": "int64",
    "int64": "int64", "int": "int32", "int32": "int32", "int16": "int16", "int8": "int8",
    "uint8": "uint8", "bool": "bool",
}
_NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SPEC = re.compile(
    rf"^\s*(?P<dtype>[a-z0-9]+)?\s*\[(?P<shape>[^\]]*)\]\s*"
    rf"(?::\s*(?P<low>{_NUMBER})\s*\.\.\s*(?P<high>{_NUMBER}))?\s*$"
)
INPUT_RULE = "DTYPE[SIZES]:LOW..HIGH, e.g. float[1,3,32,32] or long[1,64]:0..30000"


@dataclass(frozen=True)
class InputSpec:
    """One ``forward`` argument: its shape, dtype and (optional) value range."""

    shape: list[int]
    dtype: str = "float32"
    low: float | None = None
    high: float | None = None

    @property
    def integral(self) -> bool:
        return self.dtype.startswith(("int", "uint")) or self.dtype == "bool"

    def attributes(self) -> dict[str, Any]:
        """The Input node's attributes (``shape``, and ``dtype``/``range`` when not default)."""
        found: dict[str, Any] = {"shape": list(self.shape)}
        if self.dtype != "float32":
            found["dtype"] = self.dtype
        if self.low is not None and self.high is not None:
            found["range"] = [self.low, self.high]
        return found

    def text(self) -> str:
        ranged = f":{_num(self.low)}..{_num(self.high)}" if self.low is not None else ""
        return f"{self.dtype}[{','.join(map(str, self.shape))}]{ranged}"

    def with_batch(self, batch: int) -> InputSpec:
        return InputSpec([batch, *self.shape[1:]], self.dtype, self.low, self.high)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random tensor of this shape, dtype and range."""
        import torch

        dtype = getattr(torch, self.dtype)
        if self.integral:
            low = int(self.low) if self.low is not None else 0
            high = int(self.high) if self.high is not None else 1
            values = torch.randint(low, high + 1, self.shape, generator=generator)
            return values.to(dtype)
        if self.low is not None and self.high is not None:
            values = torch.rand(self.shape, generator=generator, dtype=torch.float64)
            return (values * (self.high - self.low) + self.low).to(dtype)
        return torch.randn(self.shape, generator=generator, dtype=torch.float64).to(dtype)


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def parse_input(text: str) -> InputSpec:
    """``"long[1,64]:0..30000"`` -> InputSpec; ArchitectureImportError saying the form."""
    match = _SPEC.match(text)
    if match is None:
        try:
            return InputSpec(parse_input_shape(text))
        except InputShapeError:
            raise ArchitectureImportError(
                f"--input must be {INPUT_RULE} (got {text!r})"
            ) from None
    dtype = _DTYPES.get(match.group("dtype") or "float")
    if dtype is None:
        raise ArchitectureImportError(
            f"--input {text!r}: unknown dtype {match.group('dtype')!r} "
            f"(one of {', '.join(sorted(_DTYPES))})"
        )
    try:
        shape = parse_input_shape(match.group("shape"))
    except InputShapeError as exc:
        raise ArchitectureImportError(f"--input {text!r}: {exc}") from None
    low = float(match.group("low")) if match.group("low") is not None else None
    high = float(match.group("high")) if match.group("high") is not None else None
    if low is not None and high is not None and low > high:
        raise ArchitectureImportError(f"--input {text!r}: the range {low}..{high} is empty")
    return InputSpec(shape, dtype, low, high)


def spec_of_attributes(attributes: dict[str, Any]) -> InputSpec | None:
    """The InputSpec an Input node's attributes describe (None without a shape)."""
    shape = attributes.get("shape")
    if not shape:
        return None
    bounds = attributes.get("range") or [None, None]
    return InputSpec(list(shape), str(attributes.get("dtype", "float32")), bounds[0], bounds[1])
