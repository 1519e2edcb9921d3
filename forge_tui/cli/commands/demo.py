"""``forge demo``: a private server, the example project, then the TUI (or ``--headless`` run).

Everything the demo starts (the server, and through it the executor and a local Ray runtime)
is stopped when the TUI quits or the headless run ends.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forge_ops.schema import ProjectDoc
    from forge_tui.demo import ApiClient, DemoServer

EXAMPLE = "cifar10"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="try Forge: a local server with the example project, opened in the TUI",
        description="Start a private Forge server (SQLite, local executor or Ray runtime, "
        "artifacts and a fresh owner token in the demo data folder), create the example "
        "project 'cifar10' (the paper's CIFAR-10 pipeline and its offline twin) and open the "
        "TUI on it. Quitting the TUI stops everything the demo started. With --headless, run "
        "the example pipeline instead, print its progress and accuracies, and exit non-zero "
        "if it fails.",
    )
    parser.add_argument(
        "--headless", action="store_true", help="run the pipeline and print results; no TUI"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use the train-synthetic twin without checking whether CIFAR-10 can be downloaded",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the demo keeps its server data (default ~/.local/share/forge/demo)",
    )
    parser.add_argument("--project", default=EXAMPLE, help="project name (cifar10)")
    parser.add_argument(
        "--port", type=int, default=0, help="port for the demo server (default: a free one)"
    )
    parser.add_argument(
        "--executor",
        choices=["auto", "ray", "local"],
        default="auto",
        help="run jobs on a local Ray runtime (ray), in child processes (local), or Ray when "
        "it is installed (auto, the default)",
    )
    parser.add_argument(
        "--ray-address", metavar="ADDR", help="use an existing Ray cluster instead"
    )
    parser.add_argument(
        "--iterations",
        type=int,
        metavar="N",
        help="set the Train operation's max_iterations in the demo project before running "
        "(the paper's pipeline uses 50, its offline twin 150)",
    )
    parser.add_argument(
        "--gpus",
        type=float,
        metavar="N",
        help="give the Train and Test jobs N GPUs (their num_gpus setting; Ray hides GPUs "
        "from jobs that ask for none)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="--headless: re-run every job instead of reusing results of identical earlier runs",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="--headless: cancel the run after this long (1800)",
    )
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    import math
    import sys

    from forge_ops.examples import PIPELINE_CIFAR10, PIPELINE_SYNTHETIC
    from forge_tui.cli.errors import CliError
    from forge_tui.demo import DemoServer, DemoServerError, default_data_dir

    if args.iterations is not None and args.iterations < 1:
        raise CliError("--iterations must be at least 1")
    if args.gpus is not None and not 0 <= args.gpus < math.inf:
        raise CliError("--gpus must be a number of GPUs, 0 or more (e.g. 1, or 0.5 to share one)")
    if not 0 < args.timeout < math.inf:
        raise CliError("--timeout must be a number of seconds above 0 (the default is 1800)")
    if args.ray_address and args.executor == "local":
        raise CliError("--ray-address needs Ray: drop --executor local (or the address)")
    if not args.headless and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError("the demo opens the TUI, which needs a terminal; run it in one, or "
                       "pass --headless to run the example pipeline and print the results")
    executor = _executor(args)
    pipeline = PIPELINE_SYNTHETIC if _offline(args) else PIPELINE_CIFAR10
    data_dir: Path = (args.data_dir or default_data_dir()).expanduser().resolve()
    print(f"Starting the demo server (executor: {executor}; data in {data_dir}) ...", flush=True)
    server = DemoServer(
        data_dir, port=args.port, executor=executor, ray_address=args.ray_address
    )
    try:
        server.start()
    except DemoServerError as exc:
        raise CliError(str(exc)) from None
    try:
        print(f"Demo server listening on {server.url} (log: {server.log_path})", flush=True)
        if args.headless:
            return _headless(args, server, pipeline)
        return _interactive(args, server, pipeline)
    finally:
        print("Stopping the demo server ...", flush=True)
        server.stop()
        print("Demo server stopped.", flush=True)


def _executor(args: argparse.Namespace) -> str:
    import importlib.util

    if args.executor != "auto":
        return str(args.executor)
    if args.ray_address or importlib.util.find_spec("ray") is not None:
        return "ray"
    print("Ray is not installed: jobs run in child processes (the local executor).")
    return "local"


def _offline(args: argparse.Namespace) -> bool:
    """Whether to use the synthetic twin; says why whenever it is chosen."""
    from forge_tui.demo import check_cifar10_download

    if args.offline:
        print("--offline: using train-synthetic (SyntheticImages instead of DownloadCIFAR10).")
        return True
    print("Checking whether CIFAR-10 can be downloaded ...", flush=True)
    check = check_cifar10_download()
    if check.available:
        print(f"CIFAR-10 is available ({check.reason}): using train-cifar10, the paper's "
              "pipeline. Note: VGG16 trains slowly on a CPU; 50 iterations can take minutes.")
        return False
    print(f"CIFAR-10 download unavailable ({check.reason}).")
    print("Using the offline twin train-synthetic instead: the same pipeline on "
          "SyntheticImages (CIFAR-shaped, generated from a seed), training a slim VGG11 so "
          "that a CPU finishes in about a minute.")
    return True


def _prepare_project(api: ApiClient, args: argparse.Namespace, pipeline: str) -> None:
    """Create the example project (or reuse it) and apply --iterations."""
    import asyncio

    from forge_tui.demo import ApiError

    async def prepare() -> None:
        result = await api.request(
            "POST", "projects", {"name": args.project, "example": EXAMPLE, "exist_ok": True}
        )
        if result.get("created"):
            print(f"Created project {args.project} from the example {EXAMPLE}.")
        else:
            print(f"Reusing the existing project {args.project}.")
        if pipeline not in result.get("pipelines", []):
            raise ApiError(
                f"project {args.project!r} has no pipeline {pipeline!r}; it was not made from "
                f"the {EXAMPLE} example: pass --project NEW_NAME or another --data-dir"
            )
        await _train_settings(api, args.project, pipeline, args.iterations, args.gpus)

    asyncio.run(prepare())


async def _train_settings(
    api: ApiClient, project: str, pipeline: str, iterations: int | None, gpus: float | None
) -> None:
    """Apply --iterations and --gpus to the pipeline's nodes, then say how it will train.

    The edit goes through the sync client like any collaborator's (and is committed by the
    server's history like theirs), so the project shows what ran.
    """
    from forge_ops.schema import ProjectDoc
    from forge_server.client import SyncError, open_document
    from forge_tui.demo import ApiError

    try:
        async with open_document(api.server, api.token, f"{project}/main", timeout=30) as client:
            _apply_settings(ProjectDoc(client.doc), pipeline, iterations, gpus)
    except SyncError as exc:
        raise ApiError(f"cannot open project {project!r}: {exc}") from None


def _apply_settings(
    doc: ProjectDoc, pipeline: str, iterations: int | None, gpus: float | None
) -> None:
    """Edit the pipeline's Train (and Test) nodes as asked and print Train's settings."""
    plain = doc.to_plain()
    pid = doc.find("pipelines", pipeline)
    train = doc.find("operations", "Train")
    if pid is None or train is None:
        return
    gpu_users = {train, doc.find("operations", "Test")}
    for node_id, node in plain["pipelines"][pid]["nodes"].items():
        if gpus is not None and node["operation"] in gpu_users:
            doc.set_setting(pid, node_id, "num_gpus", gpus)
            print(f"Set {pipeline}'s {node['name']} num_gpus to {gpus:g}.")
        if node["operation"] != train:
            continue
        if iterations is not None:
            doc.set_attribute(pid, node_id, "max_iterations", iterations)
            print(f"Set {pipeline}'s {node['name']}.max_iterations to {iterations}.")
        settings = {**node["attributes"], **node["references"]}
        if iterations is not None:
            settings["max_iterations"] = iterations
        arch = plain["architectures"].get(str(settings.get("net")))
        if arch is not None:  # show the architecture's name, not its id
            settings["net"] = arch["name"]
        shown = ", ".join(f"{key}={value}" for key, value in sorted(settings.items()))
        print(f"{node['name']} settings: {shown}")
    _say_differences(doc, pipeline)


def _say_differences(doc: ProjectDoc, pipeline: str) -> None:
    """Say what the pipeline changes from the paper's (train-cifar10), as it will run."""
    from forge_ops.examples import PIPELINE_CIFAR10, setting_differences

    if pipeline == PIPELINE_CIFAR10:
        return
    differences = setting_differences(doc.to_plain(), pipeline, PIPELINE_CIFAR10)
    if differences:
        print(f"Differs from the paper's setting ({PIPELINE_CIFAR10}):")
        for difference in differences:
            print(f"  - {difference}")


def _headless(args: argparse.Namespace, server: DemoServer, pipeline: str) -> int:
    import asyncio

    from forge_ops.examples import ARTIFACTS
    from forge_tui.cli.errors import CliError
    from forge_tui.demo import ApiClient, ApiError, artifact_value, format_accuracies, run_pipeline

    api = ApiClient(server.url, server.token)
    try:
        _prepare_project(api, args, pipeline)

        async def run() -> int:
            report = await run_pipeline(
                api, args.project, pipeline, timeout_s=args.timeout, use_cache=not args.no_cache
            )
            if not report.ok:
                print(f"Execution {report.execution} {report.status}.")
                for failure in report.failures:
                    print(f"  {failure}")
                return 1
            print(f"Execution {report.execution} {report.status}.")
            model, accuracies = ARTIFACTS[pipeline]
            metrics = await artifact_value(api, args.project, accuracies)
            if not isinstance(metrics, dict):
                print(f"The run succeeded but artifact {accuracies!r} holds no metrics.")
                return 1
            print(f"Test accuracies ({accuracies}):")
            for line in format_accuracies(metrics):
                print(line)
            print(f"The trained network is the artifact {model!r}; the run is tagged "
                  f"run/{report.execution} in the project's history.")
            return 0

        return int(asyncio.run(run()))
    except ApiError as exc:
        raise CliError(f"{exc} (server log: {server.log_path})") from None


def _interactive(args: argparse.Namespace, server: DemoServer, pipeline: str) -> int:
    import os
    import subprocess
    import sys

    from forge_tui.cli.errors import CliError
    from forge_tui.demo import ApiClient, ApiError

    try:
        _prepare_project(ApiClient(server.url, server.token), args, pipeline)
    except ApiError as exc:
        raise CliError(f"{exc} (server log: {server.log_path})") from None
    print(f"Opening the TUI on project {args.project}, pipeline {pipeline}: press Ctrl+R to "
          "run it; the monitor shows each job, its console and the training error (j/k move "
          "between jobs). F1 lists every key; Ctrl+Q quits the TUI and stops the demo.",
          flush=True)
    # The token travels in the environment, never on a command line others can list.
    env = {**os.environ, "FORGE_TOKEN": server.token or ""}
    command = [sys.executable, "-m", "forge_tui", "tui", "--server", server.url,
               "--project", args.project, "--pipeline", pipeline]
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 130
