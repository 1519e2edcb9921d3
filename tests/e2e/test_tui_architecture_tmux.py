"""End to end at 80×24: a real `forge serve` with the example project and a real `forge tui`
in tmux, editing an architecture: a refused attribute value is never written, the input shape
and the parameter total show without a key, and a new layer is inserted after the selection."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from test_tui_tmux import terminals  # noqa: F401  (the fixture, shared with that module)

from forge_ops.schema import ProjectDoc
from forge_server.client import open_document


def create_example(url: str, name: str) -> None:
    request = urllib.request.Request(
        f"{url}/api/projects",
        data=json.dumps({"name": name, "example": "cifar10"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201


def architecture(url: str, project: str, name: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async with open_document(url, None, f"{project}/main") as client:
            doc = ProjectDoc(client.doc)
            arch_id = doc.find("architectures", name)
            assert arch_id is not None
            return dict(doc.to_plain()["architectures"][arch_id])

    return asyncio.run(read())


def test_architecture_editing_at_80x24(serve_process, terminals, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    server = serve_process(tmp_path / "data", "--no-auth", "--executor", "local")
    create_example(server.url, "ex")
    env = {
        "FORGE_CONFIG_DIR": str(tmp_path / "config"),
        "PATH": os.environ.get("PATH", ""),
        "TERM": "xterm-256color",
    }
    forge = f"{shlex.quote(sys.executable)} -m forge_tui"
    ada = terminals(f"{forge} tui --server {server.url} --project ex --name Ada", env, (80, 24))
    ada.wait_for(lambda s: "SmallCNN" in s and "connected" in s, "the example project")
    # Open SmallCNN from the sidebar: 3 pipelines, 7 operations, then FlipCNN, ResNet, ...
    ada.keys(*["Down"] * 16, pause=0.1)
    ada.keys("Enter")
    ada.wait_for(lambda s: "input 1×3×32×32 · total 136.9k params" in s,
                 "the input shape and the parameter total, no key pressed", timeout=60)
    before = architecture(server.url, "ex", "SmallCNN")
    # Select conv1 (under the Input) and give it a negative out_channels: refused.
    ada.keys("j", "j", "e")
    ada.wait_for(lambda s: "Edit attribute of conv1 (Conv2d)" in s, "the attribute picker")
    ada.type("out_channels")
    ada.keys("Enter")
    ada.wait_for(lambda s: "conv1.out_channels (Conv2d)" in s, "the value prompt")
    ada.keys("C-u")
    # "--": the text starts with a dash, which tmux would read as an option
    subprocess.run([*ada.tmux, "send-keys", "-t", ada.name, "-l", "--", "-16"], check=True)
    ada.keys("Enter")
    refused = ada.wait_for(lambda s: "out_channels must be a positive" in s, "the refusal")
    assert "layer 'conv1' (Conv2d)" in refused
    ada.keys("Escape")
    ada.wait_for(lambda s: "conv1.out_channels" not in s and "1×16×32×32" in s,
                 "the prompt closed, conv1 still giving 16 channels")
    # Insert a relu after conv1: it is wired in between conv1 and what conv1 fed.
    ada.keys("a")
    ada.wait_for(lambda s: "Add layer" in s, "the layer picker", timeout=60)
    ada.type("relu")
    ada.keys("Enter")
    ada.wait_for(lambda s: "Inserted relu after conv1" in s, "the insertion")
    after = architecture(server.url, "ex", "SmallCNN")
    conv = next(i for i, lay in before["layers"].items() if lay["name"] == "conv1")
    assert after["layers"][conv] == before["layers"][conv]  # the refused value never landed
    new = next(i for i, lay in after["layers"].items() if i not in before["layers"])
    assert after["layers"][new]["type"] == "relu"
    fed = {e["dst"] for e in before["edges"].values() if e["src"] == conv}
    assert {e["dst"] for e in after["edges"].values() if e["src"] == conv} == {new}
    assert {e["dst"] for e in after["edges"].values() if e["src"] == new} == fed
