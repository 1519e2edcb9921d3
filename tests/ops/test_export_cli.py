"""``forge export`` and ``forge import`` against a real relay (the shared ``relay`` fixture)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pycrdt import Doc
from test_export_pipeline import cifar_project
from test_import import MODELS

from forge_ops.arch import canonical
from forge_ops.arch.importer import import_file
from forge_ops.schema import ProjectDoc
from forge_tui.cli import main

MODERN = Path(__file__).with_name("modern_models.py")
THIRD_PARTY = '''
class OnnxExporter:
    description = "ONNX graph of every architecture (third-party test plugin)"

    def export(self, project, pipeline_id, destination):
        return []
'''


@pytest.fixture(autouse=True)
def no_stored_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("FORGE_TOKEN", raising=False)


async def seed_project(make_client, room: str) -> None:
    """Put the CIFAR example project into a fresh room on the relay."""
    plain = cifar_project()
    plain["meta"]["name"] = room.split("/", maxsplit=1)[0]
    doc = Doc()
    ProjectDoc(doc).restore(plain)
    client = await make_client(room, doc)
    await client.synced(10)
    await client.flush(10)


async def eventually(read, done, timeout: float = 10.0):
    """Poll ``read()`` until ``done(value)`` (remote edits arrive asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = read()
        if done(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))  # the CLI runs its own event loop


class TestCli:
    async def test_export_architecture_and_pipeline(
        self, relay, make_client, new_room, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        room = new_room("cli")
        project = room.split("/")[0]
        await seed_project(make_client, room)
        capsys.readouterr()
        assert await cli("export", project, "VGG11", "--server", relay.url) == 0
        source = capsys.readouterr().out
        assert source.startswith('"""VGG11: exported from Forge')
        assert "class VGG11(nn.Module):" in source
        folder = tmp_path / "standalone"
        code = await cli("export", project, "Train VGG", "--format", "python", str(folder),
                         "--server", relay.url)
        assert code == 0
        assert (folder / "run.py").exists() and (folder / "architectures" / "VGG11.py").exists()
        assert await cli("export", project, "Nope", "--server", relay.url) == 1
        assert "no pipeline 'Nope'" in capsys.readouterr().err

    async def test_import_writes_an_editable_architecture(
        self, relay, make_client, new_room, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        room = new_room("cli")
        project = room.split("/")[0]
        await seed_project(make_client, room)
        models = tmp_path / "models.py"
        models.write_text(MODELS)
        code = await cli("import", project, f"{models}:Residual", "--input-shape", "2,3,8,8",
                         "--server", relay.url)
        assert code == 0, capsys.readouterr().err
        assert "imported Residual as architecture 'Residual'" in capsys.readouterr().out
        reader = await make_client(room)
        await reader.synced(10)
        plain = await eventually(
            lambda: ProjectDoc(reader.doc).to_plain(),
            lambda p: any(a["name"] == "Residual" for a in p["architectures"].values()),
        )
        stored = next(a for a in plain["architectures"].values() if a["name"] == "Residual")
        expected = import_file(str(models), "Residual", [2, 3, 8, 8])
        assert canonical(stored) == canonical(expected)
        assert stored["input_shape"] == [2, 3, 8, 8]
        # a second import under the same name is refused, and the error names the fix
        again = await cli("import", project, f"{models}:Residual", "--server", relay.url)
        assert again == 1 and "--name" in capsys.readouterr().err
        bad = await cli("import", project, f"{models}:Gated", "--server", relay.url)
        assert bad == 1 and "--leaf Gate" in capsys.readouterr().err
        code = await cli("import", project, f"{models}:Gated", "--leaf", "Gate",
                         "--server", relay.url)
        assert code == 0, capsys.readouterr().err
        assert "custom layer 'Gate' added" in capsys.readouterr().out
        plain = await eventually(
            lambda: ProjectDoc(reader.doc).to_plain(),
            lambda p: any(a["name"] == "Gated" for a in p["architectures"].values()),
        )
        gate = next(layer for layer in plain["layers"].values() if layer["name"] == "Gate")
        assert "class Gate(nn.Module):" in gate["code"]
        gated = next(a for a in plain["architectures"].values() if a["name"] == "Gated")
        assert any(layer["type"] == "Gate" for layer in gated["layers"].values())

    async def test_import_checks_text_models_and_factories(
        self, relay, make_client, new_room, capsys: pytest.CaptureFixture[str]
    ) -> None:
        room = new_room("cli")
        project = room.split("/")[0]
        await seed_project(make_client, room)
        capsys.readouterr()
        code = await cli("import", project, f"{MODERN}:TextClassifier",
                         "--input", "long[2,7]:0..99", "--server", relay.url)
        assert code == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "outputs checked on int64[2,7]:0..99: the import matches the original" in out
        code = await cli("import", project, f"{MODERN}:make_classifier(width=4)",
                         "--server", relay.url)
        assert code == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "as architecture 'make_classifier'" in out and "outputs checked on" in out
        # a layer built outside Forge's view keeps a derived value: caught, and named
        code = await cli("import", project, f"{MODERN}:SHIFTED", "--leaf", "Shift",
                         "--server", relay.url)
        err = capsys.readouterr().err
        assert code == 1 and "layer 'shift' (Shift) is the first whose output differs" in err
        assert await cli("import", project, f"{MODERN}:TinyViT", "--input", "float[1,3,8]x",
                         "--server", relay.url) == 1
        assert "--input must be DTYPE[SIZES]:LOW..HIGH" in capsys.readouterr().err
        reader = await make_client(room)
        await reader.synced(10)
        plain = await eventually(
            lambda: ProjectDoc(reader.doc).to_plain(),
            lambda p: any(a["name"] == "make_classifier" for a in p["architectures"].values()),
        )
        text = next(a for a in plain["architectures"].values() if a["name"] == "TextClassifier")
        tokens = next(layer for layer in text["layers"].values() if layer["type"] == "Input")
        assert tokens["attributes"]["dtype"] == "int64"


def test_list_shows_third_party_exporters(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "forge_onnx_export-1.0.dist-info").mkdir(parents=True)
    (site / "forge_onnx_export.py").write_text(THIRD_PARTY)
    (site / "forge_onnx_export-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: forge-onnx-export\nVersion: 1.0\n"
    )
    (site / "forge_onnx_export-1.0.dist-info" / "entry_points.txt").write_text(
        "[forge.exporters]\nonnx = forge_onnx_export:OnnxExporter\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from forge_tui.cli import main; "
         "sys.exit(main(['export', '--list']))"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("python ") and "standalone folder" in line for line in lines)
    assert any(line.startswith("onnx ") and "forge-onnx-export" in line for line in lines)
