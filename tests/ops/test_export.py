"""Export of architectures to plain PyTorch source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from test_arch import SCALE_LAYER

from forge_ops.arch import ArchitectureBuilder, build_module, export_source, resnet, small_cnn

# Runs a file as __main__ with every forge package made unimportable, so the exported code
# provably needs nothing but torch.
WITHOUT_FORGE = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"forge_ops", "forge_server", "forge_tui"}:
            raise ModuleNotFoundError(f"forge is not installed here ({name})")
        return None
sys.meta_path.insert(0, Block())
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def run_without_forge(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-c", WITHOUT_FORGE, str(path)],
        capture_output=True, text=True, cwd=cwd, timeout=120, check=False,
    )


def load_class(source: str, name: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(source, "<exported>", "exec"), namespace)
    return namespace[name]


class TestExport:
    def test_source_is_one_readable_class(self) -> None:
        source = export_source(small_cnn())
        assert source.count("class ") == 1
        assert "class SmallCNN(nn.Module):" in source
        assert "self.conv1 = nn.Conv2d(3, 16, 3, padding=1)" in source
        assert "relu1 = F.relu(conv1)" in source
        assert "flatten = torch.flatten(pool2, 1)" in source
        assert "log_softmax = F.log_softmax(fc2, dim=1)" in source
        assert "forge" not in source.replace("Forge", "")
        assert max(len(line) for line in source.splitlines()) <= 100

    def test_exported_module_matches_the_built_one(self) -> None:
        arch = resnet()
        built = build_module(arch).eval()
        exported = load_class(export_source(arch), "ResNet")().eval()
        exported.load_state_dict(built.state_dict())  # same parameter names
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            assert torch.allclose(built(x), exported(x), atol=1e-6)
        assert "s2b1_add = s2b1_bn2 + s2b1_proj_bn" in export_source(arch)

    def test_runs_without_forge_installed(self, tmp_path: Path) -> None:
        path = tmp_path / "model.py"
        path.write_text(export_source(resnet()))
        done = run_without_forge(path, tmp_path)
        assert done.returncode == 0, done.stderr
        assert "torch.Size([1, 10])" in done.stdout
        assert f"{sum(p.numel() for p in build_module(resnet()).parameters())} parameters" in (
            done.stdout
        )

    def test_the_blocker_really_blocks_forge(self, tmp_path: Path) -> None:
        path = tmp_path / "uses_forge.py"
        path.write_text("import forge_ops\n")
        done = run_without_forge(path, tmp_path)
        assert done.returncode != 0 and "forge is not installed here" in done.stderr

    def test_custom_layers_and_multiple_io(self) -> None:
        b = ArchitectureBuilder("Two Heads", [2, 3, 4, 4])
        x = b.input("image")
        extra = b.input("extra", index=1)
        scaled = b.layer("Scale", "scale", x, channels=3, init=0.5)
        joined = b.layer("cat", "joined", scaled, extra, dim=1)
        pooled = b.layer("mean", "pooled", joined, dim=[2, 3])
        b.output(pooled, "features")
        b.output(b.layer("sigmoid", "gate", pooled), "gate", index=1)
        arch = b.plain()
        source = export_source(arch, {"Scale": SCALE_LAYER, "Unused": "class Unused: pass"})
        assert "class Scale(nn.Module):" in source and "Unused" not in source
        assert "def forward(self, image: torch.Tensor, extra: torch.Tensor)" in source
        assert "pooled = joined.mean(dim=(2, 3))" in source
        module = load_class(source, "TwoHeads")()
        built = build_module(arch, {"Scale": SCALE_LAYER})
        module.load_state_dict(built.state_dict())
        a, b_ = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4)
        for got, want in zip(module(a, b_), built(a, b_), strict=True):
            assert torch.allclose(got, want)

    @pytest.mark.parametrize(
        ("attrs", "expected"),
        [
            ({"args": [{"type": "ReLU", "attributes": {}},
                       {"type": "Dropout", "attributes": {"p": 0.25}}]},
             "nn.Sequential(nn.ReLU(), nn.Dropout(p=0.25))"),
        ],
    )
    def test_layer_valued_attributes_are_written_as_calls(self, attrs: dict, expected: str) -> None:
        b = ArchitectureBuilder("Nested", [1, 4])
        b.output(b.layer("Sequential", "body", b.input(), **attrs))
        assert f"self.body = {expected}" in export_source(b.plain())
