"""The architecture editor, driven by the pilot: attribute values are checked before they are
written, shapes and parameters (with a total) show without a key and follow the shared input
shape, a layer added with a layer selected is inserted after it, and the view stays put."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.widgets import Input, Label

from forge_tui.app import ForgeApp, MemoryBackend
from forge_tui.app.screens.modals import FuzzyPicker, Prompt
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.widgets.architecture_editor import ArchitectureEditor

from .conftest import PaperProject, shown

SIZE = (80, 24)


async def until(pilot: Any, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await pilot.pause(0.05)


async def open_architecture(app: ForgeApp, pilot: Any, paper: PaperProject) -> ArchitectureEditor:
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ProjectScreen)
    await screen.open_now("architecture", paper.arch)
    editor = screen.query_one(ArchitectureEditor)
    # Parameters and shapes are worked out in a thread (torch imports on first use).
    await until(pilot, lambda: bool(editor.parameters or editor.shape_error),
                "the architecture's parameters")
    return editor


async def type_into(pilot: Any, screen_type: Any, text: str) -> None:
    field = await shown(pilot, screen_type, "Input", timeout=30.0)
    assert isinstance(field, Input)
    field.value = text
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


def summary_text(editor: ArchitectureEditor) -> str:
    """The line over the diagram (input shape, parameter total, the first error)."""
    return str(editor.query_one("#summary").render())


def architecture(paper: PaperProject) -> dict[str, Any]:
    return dict(paper.view().to_plain()["architectures"][paper.arch])


class TestAttributeChecks:
    async def test_negative_out_channels_is_refused_and_nothing_is_written(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_architecture(app, pilot, paper)
            before = architecture(paper)
            editor.selected = "l1"  # conv1: Conv2d(3, 16, 3)
            await pilot.press("e")
            await type_into(pilot, FuzzyPicker, "out_channels")
            await type_into(pilot, Prompt, "-16")
            # Still asking, with a message that names the layer and the attribute.
            assert isinstance(app.screen, Prompt)
            error = str(app.screen.query_one("#prompt-error", Label).render())
            assert "layer 'conv1' (Conv2d)" in error
            assert "out_channels must be a positive integer" in error and "-16" in error
            await pilot.press("escape")
            await pilot.pause()
            assert architecture(paper) == before  # nothing written, so nothing to commit
            # A valid value goes through.
            await pilot.press("e")
            await type_into(pilot, FuzzyPicker, "out_channels")
            await type_into(pilot, Prompt, "32")
            assert not isinstance(app.screen, Prompt)
            assert architecture(paper)["layers"]["l1"]["attributes"]["out_channels"] == 32

    async def test_the_constructor_rules_of_torch_layers_apply_too(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_architecture(app, pilot, paper)
            editor.selected = "l1"
            await pilot.press("e")
            # Attributes the layer does not set yet are offered with their defaults.
            picker = await shown(pilot, FuzzyPicker, "Input")
            labels = [label for label, _ in app.screen.options]  # type: ignore[attr-defined]
            assert "groups  (default 1)" in labels and "(new attribute)" not in labels
            assert isinstance(picker, Input)
            await type_into(pilot, FuzzyPicker, "groups")
            await type_into(pilot, Prompt, "2")
            error = str(app.screen.query_one("#prompt-error", Label).render())
            assert "layer 'conv1' (Conv2d)" in error and "divisible by groups" in error
            await pilot.press("escape")
            assert "groups" not in architecture(paper)["layers"]["l1"]["attributes"]


class TestShapesForEveryone:
    async def test_shapes_parameters_and_total_show_without_a_key(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_architecture(app, pilot, paper)
            assert "input 1×3×32×32 · total 448 params" in summary_text(editor)
            await until(pilot, lambda: "1×16×30×30" in editor.canvas.rendered.text(),
                        "conv1's output shape on its edge")
            assert "448 params" in editor.canvas.rendered.text()
            # Someone else changes the shared input shape: the shapes follow, no key pressed.
            paper.view().set_input_shape(paper.arch, [2, 3, 16, 16])
            await until(pilot, lambda: "2×16×14×14" in editor.canvas.rendered.text(),
                        "the new shapes")
            assert "input 2×3×16×16" in summary_text(editor)

    async def test_a_shape_error_names_the_layer_and_flags_its_box(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_architecture(app, pilot, paper)
            paper.view().set_layer_attribute(paper.arch, "l1", "in_channels", 5)  # a peer's edit
            await until(pilot, lambda: "conv1" in editor.shape_error, "the shape error")
            assert "layer 'conv1' (Conv2d) got input shape [1, 3, 32, 32]" in editor.shape_error
            assert "⚠ layer 'conv1'" in summary_text(editor)
            rect = editor.canvas.rendered.boxes["l1"]
            assert editor.canvas.rendered.styles[rect.y][rect.x] == "box.failed"
            assert editor.canvas.rendered.styles[
                editor.canvas.rendered.boxes["l2"].y][editor.canvas.rendered.boxes["l2"].x
            ] != "box.failed"

    async def test_without_an_input_shape_parameters_still_show(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        paper.view().set_input_shape(paper.arch, None)
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_architecture(app, pilot, paper)
            text = summary_text(editor)
            assert "input not set (s) · total 448 params" in text
            assert "press s to set one" in text


class TestInsertAfterSelection:
    async def test_a_new_layer_goes_after_the_selected_one_and_the_view_stays(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_architecture(app, pilot, paper)
            editor.selected = "l1"  # conv1, which feeds relu1
            await pilot.pause()
            canvas = editor.canvas
            conv = canvas.rendered.boxes["l1"]
            on_screen = (conv.x - canvas.scroll_x, conv.y - canvas.scroll_y)
            await pilot.press("a")
            await type_into(pilot, FuzzyPicker, "BatchNorm2d")
            arch = architecture(paper)
            new = editor.selected
            assert new is not None and arch["layers"][new]["type"] == "BatchNorm2d"
            wiring = sorted((e["src"], e["dst"], e["index"]) for e in arch["edges"].values())
            assert wiring == sorted([("l0", "l1", 0), ("l1", new, 0), (new, "l2", 0),
                                     ("l2", "l3", 0)])
            assert "Inserted BatchNorm2d after conv1" in str(editor.query_one("#message").render())
            await pilot.pause(0.2)
            # conv1 stays where it was on screen, but for the rows the view must scroll to
            # show all of the new layer, which is drawn right under it.
            conv, box = canvas.rendered.boxes["l1"], canvas.rendered.boxes[new]
            assert box.y > conv.bottom and box.x < conv.right and conv.x < box.right
            assert canvas.scroll_y <= box.y and box.bottom <= canvas.scroll_y + canvas.size.height
            needed = max(0, box.bottom - (conv.y - on_screen[1] + canvas.size.height))
            assert (conv.x - canvas.scroll_x, conv.y - canvas.scroll_y) == (
                on_screen[0], on_screen[1] - needed)

    async def test_after_an_output_the_new_layer_goes_before_it(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_architecture(app, pilot, paper)
            editor.selected = "l3"  # the Output
            await pilot.press("a")
            await type_into(pilot, FuzzyPicker, "Flatten")
            new = editor.selected
            arch = architecture(paper)
            wiring = sorted((e["src"], e["dst"]) for e in arch["edges"].values())
            assert wiring == sorted([("l0", "l1"), ("l1", "l2"), ("l2", new), (new, "l3")])
