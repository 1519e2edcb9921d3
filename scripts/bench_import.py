"""Benchmark ``forge import`` -> ``forge export`` on real model code, and check each exactly.

    .venv/bin/python scripts/bench_import.py                   # torchvision + timm, or ours
    .venv/bin/python scripts/bench_import.py --only vit_b_16 convnext_tiny
    .venv/bin/python scripts/bench_import.py --families        # only Forge's test families

For every torchvision classification model (``torchvision.models.list_models``) and a list of
timm families, built by their own factories without weights: import (trace, recover layers,
check against the original on a sample), export to plain PyTorch source, load the original's
state dict strictly into the exported class, and compare outputs at batch sizes 2 and 3.
Prints a Markdown table: import s, export s, nodes, and ``exact`` (``bitwise`` when the outputs
are identical) or the first failure.

torchvision and timm must import in this environment. Where they cannot (a CUDA torchvision
wheel beside a CPU torch, as on Forge's CI), the script says so and benchmarks the small
models in ``tests/ops/modern_models.py`` instead, which reproduce the same constructs.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from forge_ops.arch import InputSpec, export_source, import_module
from forge_ops.arch._load import load_target

TIMM_FAMILIES = [
    "vit_tiny_patch16_224", "deit_tiny_patch16_224", "convnext_atto", "convnextv2_atto",
    "swin_tiny_patch4_window7_224", "swinv2_cr_tiny_224", "efficientnet_b0", "mobilevit_xxs",
    "mobilevitv2_050", "mobilenetv3_small_100", "resnet18d", "regnetx_002", "levit_128s",
    "maxvit_nano_rw_256", "coatnet_nano_rw_224", "poolformer_s12", "convmixer_768_32",
    "ghostnet_100", "densenet121", "inception_v3", "efficientformer_l1", "edgenext_xx_small",
]
MODERN = Path(__file__).resolve().parents[1] / "tests" / "ops" / "modern_models.py"
OUR_FAMILIES = {
    "TinyViT": "float[2,3,8,8]",
    "TinyConvNeXt": "float[2,3,16,16]",
    "TinySwin": "float[2,3,8,8]",
    "TinyEfficientNet": "float[2,3,16,16]",
    "TinyShuffleNet": "float[2,3,16,16]",
    "TinyMobileViT": "float[2,3,16,16]",
    "TextClassifier": "long[2,7]:0..99",
    "make_classifier": "float[2,3,8,8]",
}


def models_to_run(
    families_only: bool, without_ops: bool
) -> tuple[str, list[tuple[str, Callable[[], Any], str]]]:
    """(what is benchmarked, [(name, factory, --input)])."""
    if without_ops:
        # torchvision registers its C++ detection ops (nms, roi_align) when imported; a wheel
        # built for another torch fails there. Classification models never use them.
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("skipped")
    if not families_only:
        try:
            import timm
            import torchvision
        except Exception as exc:  # a CUDA torchvision wheel fails with OSError, not ImportError
            print(
                f"torchvision/timm cannot be imported here ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:120]}); benchmarking Forge's own test families "
                f"({MODERN.name}) instead. A torchvision wheel built for another torch release "
                "may load with --without-torchvision-ops.\n",
                file=sys.stderr,
            )
        else:
            found: list[tuple[str, Callable[[], Any], str]] = []
            for name in torchvision.models.list_models(module=torchvision.models):
                size = 299 if name == "inception_v3" else 224
                found.append(
                    (f"torchvision {name}",
                     lambda n=name: torchvision.models.get_model(n, weights=None),
                     f"float[2,3,{size},{size}]")
                )
            for name in TIMM_FAMILIES:
                config = timm.models.get_pretrained_cfg(name)
                side = getattr(config, "input_size", (3, 224, 224))[-1] if config else 224
                found.append(
                    (f"timm {name}",
                     lambda n=name: timm.create_model(n, pretrained=False),
                     f"float[2,3,{side},{side}]")
                )
            return "torchvision + timm", found
    return "Forge's test families", [
        (name, lambda n=name: load_target(str(MODERN), n).module, spec)
        for name, spec in OUR_FAMILIES.items()
    ]


def run_one(make: Callable[[], Any], spec_text: str) -> tuple[float, float, int, str]:
    """(import s, export s, nodes, result) for one model."""
    from forge_ops.arch import parse_input

    spec = parse_input(spec_text)
    model = make().eval()
    started = time.perf_counter()
    custom: dict[str, str] = {}
    notes: list[str] = []
    arch = import_module(model, "Model", inputs=[spec], custom_layers=custom, notes=notes)
    fixed = any("traced at the sizes" in note for note in notes)
    imported = time.perf_counter() - started
    started = time.perf_counter()
    source = export_source(arch, custom, "Exported")
    exported_s = time.perf_counter() - started
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(source, "<exported>", "exec"), namespace)
    exported = namespace["Exported"]().eval()
    exported.load_state_dict(model.state_dict(), strict=True)
    generator = torch.Generator().manual_seed(0)
    result = "bitwise"
    for batch in (2,) if fixed else (2, 3):
        sample = InputSpec([batch, *spec.shape[1:]], spec.dtype, spec.low, spec.high)
        x = sample.sample(generator)
        with torch.no_grad():
            want, got = model(x), exported(x)
        want = want if isinstance(want, tuple | list) else (want,)
        got = got if isinstance(got, tuple | list) else (got,)
        for a, b in zip(want, got, strict=True):
            if not torch.equal(a, b):
                if not torch.allclose(a, b, atol=1e-5, rtol=1e-4):
                    gap = float((a - b).abs().max())
                    return imported, exported_s, len(arch["layers"]), f"differs ({gap:.3g})"
                result = "exact"
    if fixed:
        result += " (sizes fixed: forward depends on them)"
    return imported, exported_s, len(arch["layers"]), result


class TooSlow(Exception):
    pass


def _too_slow(signum: int, frame: Any) -> None:
    raise TooSlow("stopped: slower than --timeout")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="model names to run")
    parser.add_argument("--skip", nargs="*", default=[], help="model names not to run")
    parser.add_argument("--families", action="store_true", help="only Forge's test families")
    parser.add_argument(
        "--without-torchvision-ops",
        action="store_true",
        help="skip torchvision's C++ op registrations, so a torchvision wheel built for another "
        "torch release still imports (classification models do not use those ops)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per model")
    args = parser.parse_args(argv)
    what, models = models_to_run(args.families, args.without_torchvision_ops)
    if args.only:
        models = [m for m in models if m[0].split()[-1] in args.only]
    models = [m for m in models if m[0].split()[-1] not in args.skip]
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"Import -> export of {what}, torch {torch.__version__}\n")
    print("| model | import s | export s | nodes | result |")
    print("| --- | ---: | ---: | ---: | --- |")
    exact = 0
    signal.signal(signal.SIGALRM, _too_slow)
    for name, make, spec in models:
        signal.alarm(int(args.timeout))
        try:
            imported, exported, nodes, result = run_one(make, spec)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"| {name} | | | | {reason[:160]} |", flush=True)
            continue
        finally:
            signal.alarm(0)
        exact += result.startswith(("exact", "bitwise"))
        print(f"| {name} | {imported:.2f} | {exported:.3f} | {nodes} | {result} |", flush=True)
    print(f"\n{exact} of {len(models)} exact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
