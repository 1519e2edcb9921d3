"""``forge demo``: a background server, the example project, and the TUI or a headless run.

``DemoServer`` runs ``forge serve`` for the demo; ``run_pipeline`` drives a run through the HTTP
API and reports progress; ``ApiClient`` (:mod:`forge_tui.api_client`) is the client both use.
"""

from forge_tui.api_client import ApiClient as ApiClient
from forge_tui.api_client import ApiError as ApiError
from forge_tui.demo._headless import RunReport as RunReport
from forge_tui.demo._headless import artifact_value as artifact_value
from forge_tui.demo._headless import format_accuracies as format_accuracies
from forge_tui.demo._headless import run_pipeline as run_pipeline
from forge_tui.demo._network import DownloadCheck as DownloadCheck
from forge_tui.demo._network import check_cifar10_download as check_cifar10_download
from forge_tui.demo._server import DemoServer as DemoServer
from forge_tui.demo._server import DemoServerError as DemoServerError
from forge_tui.demo._server import default_data_dir as default_data_dir

__all__ = [
    "ApiClient",
    "ApiError",
    "DemoServer",
    "DemoServerError",
    "DownloadCheck",
    "RunReport",
    "artifact_value",
    "check_cifar10_download",
    "default_data_dir",
    "format_accuracies",
    "run_pipeline",
]
