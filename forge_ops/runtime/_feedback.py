"""The feedback API operation code calls: graphs with named lines, images, stored artifacts.

    graph = Graph("Training Error")
    line = graph.line("error")
    line.add(iteration, loss)
    image("samples", tensor_or_array)
"""

from __future__ import annotations

from typing import Any

from ._context import current_job

__all__ = ["Graph", "Line", "image", "load_artifact", "to_image_array"]


class Line:
    """A named series of (x, y) points on a graph."""

    def __init__(self, graph: Graph, name: str) -> None:
        self.graph = graph
        self.name = name

    def add(self, x: Any, y: Any) -> None:
        """Append a point; x and y may be numbers or one-element tensors/arrays."""
        current_job().sink.graph_point(self.graph.title, self.name, _number(x), _number(y))

    def __repr__(self) -> str:
        return f"Line({self.graph.title!r}, {self.name!r})"


def _number(value: Any) -> float:
    """A coordinate as a float: tensors are detached first (no autograd warning about reading
    one that requires grad), one-element tensors and arrays read with ``item()``."""
    if hasattr(value, "detach"):
        value = value.detach()
    item = getattr(value, "item", None)
    return float(item() if callable(item) else value)


class Graph:
    """A plot shown live in the job monitor; lines are created with ``line(name)``."""

    def __init__(self, title: str) -> None:
        if not isinstance(title, str) or not title:
            raise ValueError("Graph needs a non-empty title, e.g. Graph('Training Error')")
        self.title = title
        self._lines: dict[str, Line] = {}

    def line(self, name: str) -> Line:
        """The line called ``name`` (created on first use)."""
        if not isinstance(name, str) or not name:
            raise ValueError("a graph line needs a non-empty name, e.g. graph.line('error')")
        if name not in self._lines:
            self._lines[name] = Line(self, name)
        return self._lines[name]

    def __repr__(self) -> str:
        return f"Graph({self.title!r})"


def to_image_array(value: Any) -> Any:
    """An H×W×C or H×W numpy array from a tensor or array.

    Tensors are read as C×H×W (torch's convention) when their first axis has 1, 3 or 4 entries;
    arrays as H×W×C unless only the first axis can be channels.
    """
    import numpy

    channels_first = hasattr(value, "detach")  # torch's convention is C×H×W
    if channels_first:
        import torch  # loaded: value is a tensor

        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.dtype not in (torch.float16, torch.float32,
                                                                 torch.float64):
            value = value.float()  # bfloat16 and float8 have no numpy dtype
        value = value.numpy()
    array = numpy.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"image needs numbers (uint8 0–255, or floats in [0, 1]), got dtype "
                         f"{array.dtype}")
    if array.size == 0:
        raise ValueError(f"image is empty (shape {tuple(array.shape)})")
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and (
        channels_first or array.shape[2] not in (1, 3, 4)
    ):
        array = array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"image needs an H×W, H×W×3/4 or 3/4×H×W array, got shape "
                         f"{tuple(array.shape)}")
    if array.dtype == numpy.bool_:
        array = array.astype(numpy.uint8) * 255
    elif array.dtype.kind in "iu" and array.dtype != numpy.uint8:
        array = numpy.clip(array, 0, 255).astype(numpy.uint8)
    elif array.dtype.kind == "f" and array.dtype != numpy.float32:
        array = array.astype(numpy.float32)
    return numpy.ascontiguousarray(array)


def image(name: str, value: Any) -> None:
    """Show an image (tensor or array, HWC/HW/CHW, uint8 or float in [0, 1]) under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError("image needs a non-empty name, e.g. image('samples', x[0])")
    current_job().sink.image(name, to_image_array(value))


def load_artifact(content_hash: str) -> Any:
    """The stored value with this content hash (only inside a job run by an executor)."""
    loader = current_job().load_artifact
    if loader is None:
        raise RuntimeError("no artifact store is available: load_artifact works only inside a "
                           "job run by a Forge executor")
    return loader(content_hash)
