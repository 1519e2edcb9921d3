"""Benchmark of sweeps (issue 22): 16 trials of a pipeline whose upstream jobs take most of the
time, searched three ways on the same machine, each from a cold artifact store:

- Forge's sweep: a grid of 16 learning rates, ``--concurrency`` trials at once; the upstream
  jobs are computed once and shared (also while the first trial computes them);
- a plain loop of 16 independent executions (``forge run --no-cache`` after each edit: every
  job of every trial computed, as a script-per-trial tool does); and the same loop with the
  cache on (each edit run and waited for in turn: the cache then serves the upstream);
- a plain Optuna loop calling the same Python functions in this process (the upstream
  recomputed per trial, as a script per trial would), and the same loop computing the upstream
  once by hand (the floor: no processes, no storage).

Reported: wall time, tasks launched, upstream jobs computed. Targets: the upstream computed
once; the sweep's wall time ≤ 0.5× the independent executions' (2 cores).

    .venv/bin/python scripts/bench_sweep.py                  # everything
    .venv/bin/python scripts/bench_sweep.py --only sweep,independent --trials 8
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from forge_ops.arch import small_cnn
from forge_ops.examples import PIPELINE_SYNTHETIC, example_document
from forge_ops.schema import ProjectDoc
from forge_server.coordinator import COORDINATOR, CoordinatorConfig, coordinator_setup
from forge_server.history import HistoryConfig, history_setup
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_server.sweeps import SWEEPS, sweeps_setup

#: The expensive upstream step: smoothing passes over every image (a stand-in for decoding
#: and cleaning a dataset), between SyntheticImages and NormalizeData.
DENOISE = '''
from typing import NamedTuple

import torch

from forge_ops.runtime import Dataset


class Datasets(NamedTuple):
    train: Dataset
    test: Dataset


def _smooth(x: torch.Tensor, passes: int) -> torch.Tensor:
    kernel = torch.full((3, 1, 3, 3), 1 / 9)
    y = x.float()
    for _ in range(passes):
        y = 0.5 * y + 0.5 * torch.nn.functional.conv2d(y, kernel, padding=1, groups=3)
    return y.round().clamp(0, 255).to(torch.uint8)


def denoise(train: Dataset, test: Dataset, /, *, passes: int = 10) -> Datasets:
    """Smooth the images of both sets ``passes`` times."""
    return Datasets({**train, "x": _smooth(train["x"], passes)},
                    {**test, "x": _smooth(test["x"], passes)})
'''
UPSTREAM = ("SyntheticImages", "Denoise", "NormalizeData")
VERBOSE = False
DATA = {"train_size": 4000, "test_size": 500, "seed": 1}
TRAIN = {"max_iterations": 10, "batch_size": 32, "seed": 3}


def rates(trials: int) -> list[float]:
    low, high = 1e-4, 1e-1
    return [float(f"{low * (high / low) ** (i / max(1, trials - 1)):.6g}")
            for i in range(trials)]


def project_doc(name: str, passes: int) -> tuple[ProjectDoc, str, str]:
    """The example project's synthetic pipeline with Denoise inserted, SmallCNN, tiny training;
    (document, pipeline id, Train's node id)."""
    project = example_document("cifar10", name)
    pipeline = project.find("pipelines", PIPELINE_SYNTHETIC)
    assert pipeline is not None
    plain = project.to_plain()["pipelines"][pipeline]
    nodes = {node["name"]: node_id for node_id, node in plain["nodes"].items()}
    for key, value in DATA.items():
        project.set_attribute(pipeline, nodes["SyntheticImages"], key, value)
    for key, value in TRAIN.items():
        project.set_attribute(pipeline, nodes["Train"], key, value)
    project.set_reference(pipeline, nodes["Train"], "net", "SmallCNN")
    op = project.add_operation("Denoise", DENOISE)
    denoise = project.add_node(pipeline, op, attributes={"passes": passes})
    for edge_id, edge in plain["edges"].items():
        if edge["src"] == nodes["SyntheticImages"]:
            project.disconnect(pipeline, edge_id)
            project.connect(pipeline, denoise, edge["src_port"], edge["dst"], edge["dst_port"])
    project.connect(pipeline, nodes["SyntheticImages"], "train", denoise, "train")
    project.connect(pipeline, nodes["SyntheticImages"], "test", denoise, "test")
    return project, pipeline, nodes["Train"]


async def server_for(folder: Path) -> RelayServer:
    config = CoordinatorConfig(artifacts=str(folder / "artifacts"), executor="local",
                               local_workers=2)
    setups = [history_setup(HistoryConfig(debounce_s=30, max_interval_s=60)),
              coordinator_setup(config), sweeps_setup()]
    server = RelayServer(RelayConfig(data_dir=folder), setups=setups)
    await server.start()
    return server


async def call(server: RelayServer, method: str, path: str,
               body: dict[str, Any] | None = None) -> Any:
    async with aiohttp.ClientSession() as session, session.request(
            method, f"{server.url}/api/{path}", json=body) as response:
        answer = await response.json()
        assert response.status < 300, answer
        return answer


def count(records: list[dict[str, Any]]) -> tuple[int, int]:
    """(tasks launched, upstream jobs computed) over executions' records."""
    tasks = sum(record.get("tasks_launched") or 0 for record in records)
    upstream = sum(1 for record in records for job in record["jobs"].values()
                   if job["name"] in UPSTREAM and job["status"] == "succeeded")
    return tasks, upstream


async def bench_sweep(folder: Path, trials: int, concurrency: int, passes: int
                      ) -> dict[str, Any]:
    server = await server_for(folder)
    try:
        doc, pipeline, _ = project_doc("bench", passes)
        await server.app[ROOMS].create("bench/main", doc.doc.get_update())
        await call(server, "PUT", "projects/bench/sweeps/lr", {
            "pipeline": pipeline,
            "parameters": {"lr": {"node": "Train", "attribute": "learning_rate",
                                  "values": rates(trials)}},
            "objective": {"artifact": "synthetic-accuracies", "key": "accuracy",
                          "goal": "maximize"},
            "budget": {"concurrency": concurrency}})
        began = time.perf_counter()
        run = await call(server, "POST", "projects/bench/sweeps/lr/runs", {})
        await server.app[SWEEPS].wait("bench", run["run"])
        wall = time.perf_counter() - began
        record = await call(server, "GET", f"projects/bench/sweeps/lr/runs/{run['run']}")
        assert [t["status"] for t in record["trials"]] == ["succeeded"] * trials, record
        runs = [await call(server, "GET", f"executions/{t['execution']}")
                for t in record["trials"]]
        tasks, upstream = count(runs)
        if VERBOSE:
            for record in runs:
                print("  ", record["execution"], record["started"], record["duration"])
                for j in record["jobs"].values():
                    print("     ", j["name"], j["status"], j["started"], j["finished"])
        return {"wall": wall, "tasks": tasks, "upstream": upstream}
    finally:
        await server.stop()


async def bench_loop(folder: Path, trials: int, passes: int, *, no_cache: bool
                     ) -> dict[str, Any]:
    """Edit Train's rate, run, wait; sixteen times."""
    server = await server_for(folder)
    try:
        doc, pipeline, train = project_doc("bench", passes)
        await server.app[ROOMS].create("bench/main", doc.doc.get_update())
        coordinator = server.app[COORDINATOR]
        records = []
        began = time.perf_counter()
        for rate in rates(trials):
            async with server.app[ROOMS].hold("bench/main") as room:
                with room.edit("bench"):
                    ProjectDoc(room.doc).set_attribute(pipeline, train, "learning_rate", rate)
            started = await call(server, "POST", "projects/bench/runs",
                                 {"pipeline": pipeline, "no_cache": no_cache})
            await coordinator.wait(started["execution"])
            records.append(await call(server, "GET", f"executions/{started['execution']}"))
        wall = time.perf_counter() - began
        assert all(r["status"] == "succeeded" for r in records)
        tasks, upstream = count(records)
        return {"wall": wall, "tasks": tasks, "upstream": upstream}
    finally:
        await server.stop()


def bench_optuna(trials: int, passes: int, *, upstream_once: bool) -> dict[str, Any]:
    """A plain Optuna loop calling the pipeline's functions in this process."""
    import torch

    from forge_ops.arch.build import build_module
    from forge_ops.sweeps import optuna_module

    optuna = optuna_module()
    lib = "forge_ops.operations.library."
    synthetic = importlib.import_module(lib + "synthetic_images").synthetic_images
    normalize = importlib.import_module(lib + "normalize_data").normalize_data
    train = importlib.import_module(lib + "train").train
    test = importlib.import_module(lib + "testing").test
    namespace: dict[str, Any] = {}
    exec(compile(DENOISE, "denoise", "exec"), namespace)
    computed = 0

    def upstream() -> Any:
        nonlocal computed
        computed += 3
        data = synthetic(**DATA)
        smooth = namespace["denoise"](data.train, data.test, passes=passes)
        return normalize(smooth.train, smooth.test)

    began = time.perf_counter()  # the upstream computed once counts too
    shared = upstream() if upstream_once else None

    def objective(trial: Any) -> float:
        rate = trial.suggest_categorical("lr", rates(trials))
        data = shared if shared is not None else upstream()
        model = train(data.train, learning_rate=rate, net=build_module(small_cnn()),
                      criterion=torch.nn.CrossEntropyLoss(), **TRAIN)
        return float(test(model, data.test)["accuracy"])

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.GridSampler({"lr": rates(trials)}))
    study.optimize(objective, n_trials=trials)
    return {"wall": time.perf_counter() - began, "tasks": None, "upstream": computed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--passes", type=int, default=10,
                        help="smoothing passes of the Denoise upstream job")
    parser.add_argument("--only", default="sweep,independent,cached-loop,optuna",
                        help="comma-separated: sweep, independent, cached-loop, optuna")
    parser.add_argument("--verbose", action="store_true", help="print each trial's jobs")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    logging.basicConfig(level=logging.WARNING)
    only = set(args.only.split(","))
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="forge-bench-sweep-") as tmp:
        work = Path(tmp)
        if "sweep" in only:
            print("Forge sweep …", flush=True)
            results["Forge sweep"] = asyncio.run(bench_sweep(
                work / "sweep", args.trials, args.concurrency, args.passes))
        if "independent" in only:
            print("independent executions (no cache) …", flush=True)
            results["independent executions"] = asyncio.run(bench_loop(
                work / "independent", args.trials, args.passes, no_cache=True))
        if "cached-loop" in only:
            print("a loop of runs with the cache …", flush=True)
            results["loop of runs, cache on"] = asyncio.run(bench_loop(
                work / "cached", args.trials, args.passes, no_cache=False))
        if "optuna" in only:
            print("plain Optuna loops …", flush=True)
            import torch

            torch.set_num_threads(2)
            results["Optuna loop, same functions"] = bench_optuna(
                args.trials, args.passes, upstream_once=False)
            results["Optuna loop, upstream once by hand"] = bench_optuna(
                args.trials, args.passes, upstream_once=True)
    print(f"\n{args.trials} trials, concurrency {args.concurrency}, Denoise passes "
          f"{args.passes}\n")
    print(f"| {'way':<36} | wall time | tasks launched | upstream jobs computed |")
    print(f"| {'-' * 36} | ---: | ---: | ---: |")
    for name, result in results.items():
        tasks = "-" if result["tasks"] is None else str(result["tasks"])
        print(f"| {name:<36} | {result['wall']:.1f} s | {tasks} | {result['upstream']} |")
    sweep, independent = results.get("Forge sweep"), results.get("independent executions")
    if sweep and independent:
        ratio = sweep["wall"] / independent["wall"]
        print(f"\nsweep / independent executions: {ratio:.2f}× (target ≤ 0.5×); upstream "
              f"computed {sweep['upstream']} times (target {len(UPSTREAM)}: once each)")
        return 0 if ratio <= 0.5 and sweep["upstream"] == len(UPSTREAM) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
