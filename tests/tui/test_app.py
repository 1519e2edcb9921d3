"""Pilot tests: each editing action, asserted on the shared document's content."""

from __future__ import annotations

import sys

from textual.widgets import Input, Tree

from forge_tui.app import ForgeApp, MemoryBackend
from forge_tui.app.screens.modals import FuzzyPicker, Prompt
from forge_tui.app.screens.project import ProjectScreen
from forge_tui.app.widgets.graph_editor import GraphEditor

from .conftest import PaperProject, shown

SIZE = (100, 40)


async def open_pipeline(app: ForgeApp, pilot, paper: PaperProject) -> GraphEditor:  # type: ignore[no-untyped-def]
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, ProjectScreen)
    await screen.open_now("pipeline", paper.pipeline)
    await pilot.pause()
    return screen.query_one(GraphEditor)


async def choose(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """Fill the open picker's or prompt's input (as if typed) and press Enter."""
    field = await shown(pilot, FuzzyPicker | Prompt, "Input", timeout=5.0)
    assert isinstance(field, Input)
    field.value = text
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


def node_names(paper: PaperProject) -> list[str]:
    plain = paper.view().to_plain()
    return sorted(n["name"] for n in plain["pipelines"][paper.pipeline]["nodes"].values())


class TestGraphEditing:
    async def test_select_and_add_node(self, backend: MemoryBackend, paper: PaperProject) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            await pilot.press("j")
            assert editor.selected is not None
            await pilot.press("a")
            await choose(pilot, "Outpu")
            assert node_names(paper).count("Output") == 1
            assert editor.selected is not None

    async def test_delete_rename_undo_redo(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            editor.selected = paper.nodes["test"]
            await pilot.press("r")
            await pilot.pause()
            await choose(pilot, "Evaluate")
            assert "Evaluate" in node_names(paper)
            await pilot.press("d")
            await pilot.pause()
            plain = paper.view().to_plain()["pipelines"][paper.pipeline]
            assert paper.nodes["test"] not in plain["nodes"]
            assert all(
                paper.nodes["test"] not in (e["src"], e["dst"]) for e in plain["edges"].values()
            )
            await pilot.press("u")
            await pilot.pause()
            assert "Evaluate" in node_names(paper)
            await pilot.press("U")
            await pilot.pause()
            assert "Evaluate" not in node_names(paper)

    async def test_connect_checks_types(self, backend: MemoryBackend, paper: PaperProject) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            # Train's Model output into NormalizeData is refused: no free port / type differs.
            project = paper.view()
            extra = project.add_node(paper.pipeline, paper.ops["normalize"], "Normalize2")
            await pilot.pause()
            editor.selected = paper.nodes["train"]
            await pilot.press("c")
            await choose(pilot, "Normalize2.train")
            message = str(editor.query_one("#message").render())
            assert "Model" in message and "Dataset" in message
            edges = paper.view().to_plain()["pipelines"][paper.pipeline]["edges"].values()
            assert not any(e["dst"] == extra for e in edges)
            # a compatible connection goes through, as one edge
            editor.selected = paper.nodes["download"]
            await pilot.press("c")
            await choose(pilot, "train")  # which output
            await choose(pilot, "Normalize2.train")
            edges = paper.view().to_plain()["pipelines"][paper.pipeline]["edges"].values()
            assert any(e["dst"] == extra and e["dst_port"] == "train" for e in edges)

    async def test_disconnect(self, backend: MemoryBackend, paper: PaperProject) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            editor.selected = paper.nodes["out_model"]
            await pilot.press("x")
            await choose(pilot, "")
            edges = paper.view().to_plain()["pipelines"][paper.pipeline]["edges"].values()
            assert not any(e["dst"] == paper.nodes["out_model"] for e in edges)

    async def test_attribute_validation(self, backend: MemoryBackend, paper: PaperProject) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            editor.selected = paper.nodes["train"]
            await pilot.press("e")
            await choose(pilot, "learning")
            prompt = app.screen
            assert isinstance(prompt, Prompt)
            prompt.query_one("Input").value = "fast"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await pilot.pause()
            assert app.screen is prompt  # refused, still asking
            assert "float" in str(prompt.query_one("#prompt-error").render())
            prompt.query_one("Input").value = "0.01"  # type: ignore[attr-defined]
            await pilot.press("enter")
            await pilot.pause()
            node = paper.view().to_plain()["pipelines"][paper.pipeline]["nodes"][
                paper.nodes["train"]
            ]
            assert node["attributes"]["learning_rate"] == 0.01

    async def test_set_reference(self, backend: MemoryBackend, paper: PaperProject) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            editor.selected = paper.nodes["train"]
            await pilot.press("f")
            await choose(pilot, "net")
            await choose(pilot, "VGG")
            node = paper.view().to_plain()["pipelines"][paper.pipeline]["nodes"][
                paper.nodes["train"]
            ]
            assert node["references"]["net"] == paper.arch


class TestProjectScreen:
    async def test_start_pipeline_opens_its_diagram(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name, start_pipeline="cifar10")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ProjectScreen)
            assert screen.open_entry == ("pipeline", paper.pipeline)
            assert screen.pending_pipeline is None
            assert screen.query_one(GraphEditor).display

    async def test_sidebar_lists_everything(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            tree = app.screen.query_one(Tree)
            labels = [str(n.label) for n in tree.root.children]
            assert labels[:5] == [
                "Pipelines (1)",
                "Operations (5)",
                "Architectures (1)",
                "Custom layers (0)",
                "Executions (0)",
            ]

    async def test_create_operation_from_template(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("n")
            await choose(pilot, "Operation")
            await choose(pilot, "Scale Data")
            op_id = paper.view().find("operations", "Scale Data")
            assert op_id is not None
            code = paper.view().to_plain()["operations"][op_id]["code"]
            assert "def scale_data(data: Tensor" in code

    async def test_create_architecture_and_add_layer(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("n")
            await choose(pilot, "Architecture")
            await choose(pilot, "Tiny")
            arch_id = paper.view().find("architectures", "Tiny")
            assert arch_id is not None
            editor = app.screen.query_one(GraphEditor)
            assert editor.entry_id == arch_id
            await pilot.press("a")
            for _ in range(600):  # the catalogue imports torch in a thread
                await pilot.pause(0.05)
                if isinstance(app.screen, FuzzyPicker):
                    break
            await choose(pilot, "relu")
            layers = paper.view().to_plain()["architectures"][arch_id]["layers"]
            assert [layer["type"] for layer in layers.values()] == ["relu"]


class TestArchitecture:
    async def test_shapes_on_edges_and_parameters_in_boxes(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ProjectScreen)
            await screen.open_now("architecture", paper.arch)
            editor = screen.query_one(GraphEditor)
            for _ in range(600):  # inference imports torch in a worker thread
                await pilot.pause(0.05)
                if editor.parameters:
                    break
            text = editor.canvas.rendered.text()
            assert "1×16×30×30" in text  # conv1's output shape on its edge
            assert "448 params" in text  # Conv2d(3, 16, 3): 16*3*3*3 + 16
            # a bad change is reported, not drawn as if fine
            with app.workspace.edit() as doc:  # type: ignore[union-attr]
                doc.set_layer_attribute(paper.arch, "l1", "in_channels", 5)
            for _ in range(400):
                await pilot.pause(0.05)
                if editor.shape_error:
                    break
            assert "conv1" in editor.shape_error


    async def test_parameter_nodes_shown_and_package_code_never_run(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ProjectScreen)
            await screen.open_now("architecture", paper.arch)
            editor = screen.query_one(GraphEditor)
            with app.workspace.edit() as doc:  # type: ignore[union-attr]
                token = doc.add_arch_layer(
                    paper.arch, "Parameter", "class_token",
                    {"shape": [1, 16, 30, 30], "init": "normal", "std": 0.02}, layer_id="p1",
                )
                added = doc.add_arch_layer(paper.arch, "add", "add", layer_id="l4")
                doc.connect_layers(paper.arch, "l2", added, 0)
                doc.connect_layers(paper.arch, token, added, 1)
            for _ in range(600):  # inference imports torch in a worker thread
                await pilot.pause(0.05)
                if editor.parameters.get("p1"):
                    break
            text = editor.canvas.rendered.text()
            assert "class_token" in text and "1×16×30×30" in text and "normal(std=0.02)" in text
            assert editor.parameters["p1"] == 16 * 30 * 30
            # a layer from a package is user code: never imported here, only in jobs
            with app.workspace.edit() as doc:  # type: ignore[union-attr]
                doc.add_arch_layer(paper.arch, "forge_never_imported.Layer", "lib", layer_id="l5")
                doc.connect_layers(paper.arch, "l4", "l5", 0)
            for _ in range(200):
                await pilot.pause(0.05)
                if editor.shape_error:
                    break
            assert "library layer forge_never_imported.Layer runs in jobs" in editor.shape_error
            assert "forge_never_imported" not in sys.modules


    async def test_blocks_collapse_into_a_group_box(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ProjectScreen)
            await screen.open_now("architecture", paper.arch)
            editor = screen.query_one(GraphEditor)
            with app.workspace.edit() as doc:  # type: ignore[union-attr]
                first = doc.add_arch_layer(paper.arch, "ReLU", "block.act", layer_id="b1")
                second = doc.add_arch_layer(paper.arch, "Tanh", "block.out", layer_id="b2")
                doc.connect_layers(paper.arch, "l2", first, 0)
                doc.connect_layers(paper.arch, first, second, 0)
            await pilot.pause()
            editor.selected = "b1"
            await pilot.press("g")
            await pilot.pause()
            assert editor.selected == "group:block"
            boxes = editor.canvas.rendered.boxes
            assert "group:block" in boxes and "b1" not in boxes and "b2" not in boxes
            assert "group of 2 layers" in editor.canvas.rendered.text()
            await pilot.press("d")  # a group is not a layer: nothing is deleted
            await pilot.pause()
            layers = paper.view().to_plain()["architectures"][paper.arch]["layers"]
            assert {"b1", "b2"} <= set(layers)
            await pilot.press("g")
            await pilot.pause()
            assert "b1" in editor.canvas.rendered.boxes and editor.collapsed == set()


class TestKeysAndMouse:
    async def test_palette_lists_every_footer_action(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await open_pipeline(app, pilot, paper)
            titles = {command.title for command in app.get_system_commands(app.screen)}
            for action in (
                "Add",
                "Connect",
                "Disconnect",
                "Delete",
                "Rename",
                "Undo",
                "New",
                "Help",
            ):
                assert action in titles

    async def test_click_selects_a_box(self, backend: MemoryBackend, paper: PaperProject) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            rect = editor.canvas.rendered.boxes[paper.nodes["train"]]
            await pilot.click(editor.canvas, offset=(rect.x + 2, rect.y + 1))
            await pilot.pause()
            assert editor.selected == paper.nodes["train"]
            assert (
                app.workspace.link.presence.get_local_state()["selection"] == paper.nodes["train"]
            )  # type: ignore[union-attr,index]

    async def test_view_pans_and_follows_selection(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=(80, 24)) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            canvas = editor.canvas
            assert canvas.virtual_size.height > canvas.size.height  # taller than the view
            await pilot.press("J")
            await pilot.pause()
            assert canvas.scroll_y > 0
            await pilot.press("K", "K")
            await pilot.pause()
            assert canvas.scroll_y == 0
            editor.selected = paper.nodes["out_model"]  # at the bottom: the view follows
            await pilot.pause()
            rect = canvas.rendered.boxes[paper.nodes["out_model"]]
            assert canvas.scroll_y <= rect.y and rect.bottom <= canvas.scroll_y + canvas.size.height

    async def test_set_input_shape(self, backend: MemoryBackend, paper: PaperProject) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ProjectScreen)
            await screen.open_now("architecture", paper.arch)
            await pilot.press("s")
            await choose(pilot, "2, 3, 64 x 64")
            shape = paper.view().to_plain()["architectures"][paper.arch]["input_shape"]
            assert shape == [2, 3, 64, 64]
            await pilot.press("s")
            await choose(pilot, "3, -1")
            assert isinstance(app.screen, Prompt)  # refused with a message, still asking
            assert "positive integers" in str(app.screen.query_one("#prompt-error").render())


class TestSharedEditing:
    async def test_undo_leaves_other_peoples_edits_alone(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            editor.selected = paper.nodes["test"]
            await pilot.press("r")
            await choose(pilot, "Mine")
            paper.view().rename_node(paper.pipeline, paper.nodes["train"], "Theirs")  # remote
            await pilot.pause()
            await pilot.press("u")
            await pilot.pause()
            assert node_names(paper).count("Theirs") == 1  # the remote edit stays
            assert "Mine" not in node_names(paper) and "Test" in node_names(paper)
            await pilot.press("u")
            await pilot.pause()
            assert "Theirs" in node_names(paper)
            assert "Nothing of yours to undo" in str(editor.query_one("#message").render())

    async def test_entry_deleted_by_someone_else(
        self, backend: MemoryBackend, paper: PaperProject
    ) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=SIZE) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            editor.selected = paper.nodes["train"]
            paper.view().remove(paper.pipeline)
            await pilot.pause()
            assert editor.selected is None
            assert "deleted" in str(editor.query_one("#inspector-body").render())
            await pilot.press("a")  # edits are refused with a message, not a crash
            await pilot.pause()
            assert not isinstance(app.screen, FuzzyPicker)
            assert "deleted" in str(editor.query_one("#message").render())

    async def test_help_lists_every_key(self, backend: MemoryBackend, paper: PaperProject) -> None:

        from forge_tui.app.screens.info import HelpScreen

        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=(100, 60)) as pilot:
            await open_pipeline(app, pilot, paper)
            await pilot.press("f1")
            help_text = await shown(pilot, HelpScreen, "Static", timeout=5.0)
            text = "".join(
                segment.text
                for line in help_text.render_lines(app.screen.region)
                for segment in line
            )
            for binding in GraphEditor.BINDINGS:
                assert binding.description in text  # type: ignore[union-attr]
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)

    async def test_compact_toggle(self, backend: MemoryBackend, paper: PaperProject) -> None:
        app = ForgeApp(backend, project=paper.name)
        async with app.run_test(size=(80, 24)) as pilot:
            editor = await open_pipeline(app, pilot, paper)
            full = editor.canvas.rendered.height
            await pilot.press("z")
            await pilot.pause()
            assert editor.canvas.rendered.height < full
            assert "learning_rate" not in editor.canvas.rendered.text()
            await pilot.press("z")
            await pilot.pause()
            assert editor.canvas.rendered.height == full
