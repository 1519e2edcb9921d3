"""Pure graph rendering: layered layout and orthogonal routing into a styled character grid.

No Textual import: widgets colour the grid by its style tags, tests read it as text.
"""

from forge_tui.render._model import (
    COMPACT as COMPACT,
)
from forge_tui.render._model import (
    STATUS_GLYPHS as STATUS_GLYPHS,
)
from forge_tui.render._model import (
    EdgeSpec as EdgeSpec,
)
from forge_tui.render._model import (
    GraphSpec as GraphSpec,
)
from forge_tui.render._model import (
    Mark as Mark,
)
from forge_tui.render._model import (
    NodeSpec as NodeSpec,
)
from forge_tui.render._model import (
    Rect as Rect,
)
from forge_tui.render._model import (
    Rendered as Rendered,
)
from forge_tui.render._model import (
    RenderOptions as RenderOptions,
)
from forge_tui.render._model import (
    Status as Status,
)
from forge_tui.render._navigate import nearest as nearest
from forge_tui.render._render import render_graph as render_graph

__all__ = [
    "COMPACT",
    "STATUS_GLYPHS",
    "EdgeSpec",
    "GraphSpec",
    "Mark",
    "NodeSpec",
    "Rect",
    "RenderOptions",
    "Rendered",
    "Status",
    "nearest",
    "render_graph",
]
