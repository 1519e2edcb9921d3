"""Rerun an exported Forge pipeline with plain PyTorch.

Usage: python run.py [--artifact NAME=PATH ...] [--out DIR]

Artifacts the pipeline reads (its Input operations' references) are loaded from PATH (a file
written with ``torch.save``, or a ``.npy`` array); by default from ``inputs/NAME.pt``. Values of
Output operations are saved to ``DIR/NAME.pt`` (default ``outputs/``); a model is saved as its
state dict, which loads into its class in ``architectures/``. pipeline.json lists the
steps in the order they run, with their attributes and references.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import forge_standalone  # noqa: E402


def load_value(path: Path) -> Any:
    if path.suffix == ".npy":
        import numpy as np

        return torch.from_numpy(np.load(path))
    return torch.load(path, weights_only=False)


def load_file(path: Path, name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"exported_{path.stem}", "__file__": str(path)}
    namespace.update(forge_standalone.NAMESPACE)
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - operation code
    return namespace


def load_class(relative: str, class_name: str) -> Any:
    spec = importlib.util.spec_from_file_location(Path(relative).stem, HERE / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def resolve(reference: dict[str, Any], artifacts: dict[str, Path], seed: int) -> Any:
    kind, value = reference["type"], reference["value"]
    if kind == "Architecture":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return load_class(reference["file"], reference["class"])()
    if kind in {"Criterion", "Layer"}:
        if reference.get("file"):
            cls = load_class(reference["file"], reference["class"])
        else:
            cls = getattr(torch.nn, value)
        return cls() if kind == "Criterion" else cls
    if kind == "Artifact":
        path = artifacts.get(value, HERE / "inputs" / f"{value}.pt")
        if not path.exists():
            raise SystemExit(f"artifact {value!r}: no file {path}; pass --artifact {value}=PATH")
        return load_value(path)
    raise SystemExit(f"unknown reference type {kind}")


def outputs_of(step: dict[str, Any], result: Any) -> dict[str, Any]:
    ports = step["outputs"]
    if not ports:
        return {}
    if step["single_output"]:
        return {ports[0]: result}
    if isinstance(result, tuple) and hasattr(result, "_asdict"):
        result = result._asdict()
    if isinstance(result, dict):
        return {port: result[port] for port in ports}
    return dict(zip(ports, result, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--out", default="outputs", help="folder for Output values")
    args = parser.parse_args(argv)
    artifacts = {}
    for item in args.artifact:
        name, _, path = item.partition("=")
        artifacts[name] = Path(path)
    out = Path(args.out)
    forge_standalone.OUTPUT_DIR = out
    pipeline = json.loads((HERE / "pipeline.json").read_text())
    values: dict[tuple[str, str], Any] = {}
    for step in pipeline["steps"]:
        print(f"== {step['name']}", flush=True)
        namespace = load_file(HERE / step["file"], step["name"])
        seed = step["attributes"].get("seed", 0)
        references = {
            name: resolve(ref, artifacts, seed if isinstance(seed, int) else 0)
            for name, ref in step["references"].items()
        }
        inputs = [values[(src["node"], src["port"])] for src in step["inputs"]]
        result = namespace[step["function"]](*inputs, **step["attributes"], **references)
        for port, value in outputs_of(step, result).items():
            values[(step["node"], port)] = value
        if step["publishes"]:
            out.mkdir(parents=True, exist_ok=True)
            name = step["attributes"].get("name", "output")
            value = inputs[0]
            if isinstance(value, torch.nn.Module):
                value = value.state_dict()  # load it into the class in architectures/
            torch.save(value, out / f"{name}.pt")
            print(f"saved {out / (name + '.pt')}")
    forge_standalone.save_graphs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
