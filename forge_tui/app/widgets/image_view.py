"""A job's images, drawn with half blocks (two pixels per cell) so any colour terminal shows them.

The pixels come from the server (``ForgeApi.image``, shrunk there to a terminal's size) through
``loader``; each image is fetched once per content hash and redrawn to the widget's width.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rich.text import Text
from textual.widgets import Static

from forge_tui.app.api import ApiError
from forge_tui.render.halfblock import HalfBlockImage, half_block

ImageLoader = Callable[[str | None, str, str], Awaitable[Any]]
"""``await loader(execution_id, job_id, image_name)`` → uint8 H×W×C pixels (execution None:
the one on screen)."""

MAX_ROWS = 10  # cells of height per picture: 20 pixel rows, enough to recognise a sample


class ImageView(Static):
    """Images of the selected job: name, hash and the picture (or why it cannot be shown)."""

    DEFAULT_CSS = "ImageView { height: auto; padding: 0 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.loader: ImageLoader | None = None
        self.job_id: str | None = None
        self.execution_id: str | None = None
        self.images: dict[str, str] = {}
        self.allowed = True
        """False while the pane that holds the images is not the one shown."""
        self.pictures: dict[str, HalfBlockImage] = {}
        """name → the picture drawn now (tests read it)."""
        self._pixels: dict[str, Any] = {}
        self._failed: dict[str, str] = {}
        self._loading: set[str] = set()

    def show(
        self, job_id: str | None, images: Mapping[str, str], execution_id: str | None = None
    ) -> None:
        """Show ``images`` (name → artifact hash) of job ``job_id`` (of another execution than
        the one on screen: ``execution_id``); fetch the new ones."""
        changed = job_id != self.job_id or dict(images) != self.images
        self.job_id, self.images, self.execution_id = job_id, dict(images), execution_id
        for name, digest in self.images.items():
            known = digest in self._pixels or digest in self._failed or digest in self._loading
            if job_id is not None and self.loader is not None and not known:
                self._loading.add(digest)
                self.run_worker(self._load(execution_id, job_id, name, digest), group="images")
        if changed:
            self.redraw()

    async def _load(self, execution_id: str | None, job_id: str, name: str, digest: str) -> None:
        assert self.loader is not None
        try:
            self._pixels[digest] = await self.loader(execution_id, job_id, name)
        except ApiError as exc:
            self._failed[digest] = exc.message
        finally:
            self._loading.discard(digest)
        self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def allow(self, allowed: bool) -> None:
        """Show the images only while their pane is on screen (and there are some)."""
        self.allowed = allowed
        self.display = allowed and bool(self.images)

    def redraw(self) -> None:
        width = max(8, (self.size.width or 42) - 2)
        text = Text()
        self.pictures = {}
        for name, digest in sorted(self.images.items()):
            if text:
                text.append("\n")
            text.append(f"image {name}", style="bold")
            text.append(f"  {digest[:10]}\n", style="dim")
            if digest in self._pixels:
                picture = half_block(self._pixels[digest], width, MAX_ROWS)
                self.pictures[name] = picture
                text.append_text(picture.to_rich())
            elif digest in self._failed:
                text.append(f"cannot show it: {self._failed[digest]}", style="red")
            elif digest in self._loading:
                text.append("loading…", style="dim")
            else:
                text.append("pictures need a Forge server (--server URL)", style="dim")
        self.display = self.allowed and bool(self.images)
        self.update(text)
