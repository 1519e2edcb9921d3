"""Pipeline exporters: the forge.exporters entry points and the standalone python exporter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_export import run_without_forge

from forge_ops.arch import vgg
from forge_ops.exporters import ExportError, available_exporters, load_exporter
from forge_ops.exporters.python import PythonExporter, standalone_code
from forge_ops.operations import builtin_code


def cifar_project() -> dict[str, Any]:
    """The paper's example: Input -> SplitData -> NormalizeData -> Train(VGG) -> Test -> Output."""
    operations = {
        f"op-{name}": {"name": name, "code": builtin_code(name), "builtin": True}
        for name in ["Input", "SplitData", "NormalizeData", "Train", "Test", "Output"]
    }

    def node(op: str, **parts: Any) -> dict[str, Any]:
        return {"operation": f"op-{op}", "name": op, "attributes": parts.get("attributes", {}),
                "references": parts.get("references", {}), "settings": {}}

    nodes = {
        "n1": node("Input", references={"artifact": "cifar"}),
        "n2": node("SplitData", attributes={"test_fraction": 0.25}),
        "n3": node("NormalizeData"),
        "n4": node("Train", attributes={"max_iterations": 2, "batch_size": 8,
                                        "learning_rate": 0.01},
                   references={"net": "VGG11", "criterion": "NLLLoss"}),
        "n5": node("Test"),
        "n6": node("Output", attributes={"name": "metrics"}),
        "n7": node("Output", attributes={"name": "model"}),
    }
    wires = [("n1", "out", "n2", "data"), ("n2", "train", "n3", "train"),
             ("n2", "test", "n3", "test"), ("n3", "train", "n4", "data"),
             ("n4", "out", "n5", "model"), ("n3", "test", "n5", "data"),
             ("n5", "out", "n6", "data"), ("n4", "out", "n7", "data")]
    edges = {f"e{i}": {"src": s, "src_port": sp, "dst": d, "dst_port": dp}
             for i, (s, sp, d, dp) in enumerate(wires)}
    return {
        "meta": {"name": "CIFAR", "schema_version": 1, "created": "2026-01-01T00:00:00+00:00"},
        "operations": operations,
        "pipelines": {"p1": {"name": "Train VGG", "nodes": nodes, "edges": edges}},
        "layers": {},
        "architectures": {"a1": vgg(11)},
        "executions": {},
        "artifacts": {},
    }


class TestExtensionPoint:
    def test_python_exporter_is_listed_and_loads(self) -> None:
        exporters = available_exporters()
        assert exporters["python"].target == "forge_ops.exporters.python:PythonExporter"
        assert "standalone" in exporters["python"].description
        assert isinstance(load_exporter("python"), PythonExporter)

    def test_unknown_format(self) -> None:
        with pytest.raises(ExportError, match=r"no exporter named 'onnx' \(installed: .*python"):
            load_exporter("onnx")


class TestPythonExporter:
    def test_folder_layout(self, tmp_path: Path) -> None:
        paths = PythonExporter().export(cifar_project(), "p1", tmp_path / "out")
        names = {p.relative_to(tmp_path / "out").as_posix() for p in paths}
        assert {"run.py", "forge_standalone.py", "pipeline.json", "README.txt",
                "architectures/VGG11.py", "operations/Train.py", "operations/Output_2.py"} <= names
        steps = json.loads((tmp_path / "out" / "pipeline.json").read_text())["steps"]
        order = [s["name"] for s in steps]
        assert order.index("Input") < order.index("SplitData") < order.index("Train")
        train = next(s for s in steps if s["name"] == "Train")
        assert train["attributes"]["max_iterations"] == 2
        assert train["references"]["net"] == {"type": "Architecture", "value": "VGG11",
                                              "file": "architectures/VGG11.py", "class": "VGG11"}
        code = (tmp_path / "out" / "operations" / "Train.py").read_text()
        assert "forge_ops" not in code and "from forge_standalone import" in code

    def test_exported_cifar_pipeline_runs_without_forge(self, tmp_path: Path) -> None:
        folder = tmp_path / "export"
        PythonExporter().export(cifar_project(), "p1", folder)
        generator = torch.Generator().manual_seed(0)
        data = {"x": torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8,
                                   generator=generator),
                "y": torch.arange(24) % 10}
        torch.save(data, tmp_path / "cifar.pt")
        script = tmp_path / "go.py"
        script.write_text(
            "import sys\n"
            f"sys.argv = ['run.py', '--artifact', 'cifar={tmp_path / 'cifar.pt'}', "
            f"'--out', '{tmp_path / 'results'}']\n"
            f"exec(compile(open({str(folder / 'run.py')!r}).read(), "
            f"{str(folder / 'run.py')!r}, 'exec'), {{'__name__': '__main__', "
            f"'__file__': {str(folder / 'run.py')!r}}})\n"
        )
        done = run_without_forge(script, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "iteration 2/2" in done.stdout
        metrics = torch.load(tmp_path / "results" / "metrics.pt", weights_only=False)
        assert 0.0 <= metrics["accuracy"] <= 1.0
        state = torch.load(tmp_path / "results" / "model.pt")
        namespace: dict[str, Any] = {"__name__": "exported"}
        exec((folder / "architectures" / "VGG11.py").read_text(), namespace)
        model = namespace["VGG11"]()
        model.load_state_dict(state)  # the trained weights fit the exported class
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        graphs = json.loads((tmp_path / "results" / "graphs.json").read_text())
        assert len(graphs["Training Error"]["error"]) == 2

    def test_errors_say_what_to_fix(self, tmp_path: Path) -> None:
        project = cifar_project()
        del project["pipelines"]["p1"]["edges"]["e0"]
        with pytest.raises(ExportError, match="input 'data' of 'SplitData' is not connected"):
            PythonExporter().export(project, "p1", tmp_path / "a")
        project = cifar_project()
        project["pipelines"]["p1"]["nodes"]["n4"]["references"]["net"] = "AlexNet"
        with pytest.raises(ExportError, match="no architecture 'AlexNet'"):
            PythonExporter().export(project, "p1", tmp_path / "b")
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "keep.txt").write_text("x")
        with pytest.raises(ExportError, match="not empty"):
            PythonExporter().export(cifar_project(), "p1", tmp_path / "c")

    def test_import_rewriting_only_touches_forge_runtime_imports(self) -> None:
        code = "from forge_ops.runtime import Graph\n    from forge_ops.operations.types import X\n"
        code += "import forge_ops_like\n"
        assert standalone_code(code) == (
            "from forge_standalone import Graph\n    from forge_standalone import X\n"
            "import forge_ops_like\n"
        )
