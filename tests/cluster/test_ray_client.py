"""`forge serve --ray-address ray://…` (Ray Client, the README's example) and `--ray-address
HOST:PORT` against a real two-node cluster whose head runs the Ray Client server: a run
completes, and cancel afterwards cancels nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cluster_fixtures import RayCluster, forge, run_detached, wait_finished

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.mark.parametrize("address", ["client", "node"])
def test_a_run_completes_and_cancel_leaves_finished_jobs(
        ray_cluster: RayCluster, serve_process: Any, tmp_path: Path, cli_config: None,
        address: str) -> None:
    """``ray://HOST:PORT`` (Ray Client) and ``HOST:PORT`` (the server on a node of the
    cluster) both run the example to the end."""
    where = ray_cluster.client_address if address == "client" else ray_cluster.address
    server = serve_process(tmp_path / "data", "--no-auth", "--ray-address", where,
                           env=ray_cluster.env)
    code, _, err = forge(server.url, "project", "create", "demo", "--example", "cifar10")
    assert code == 0, err
    execution = run_detached(server.url, "demo", "train-custom")
    record = wait_finished(server.url, execution, timeout=120)
    assert record["status"] == "succeeded", "".join(server.output)
    assert {job["status"] for job in record["jobs"].values()} == {"succeeded"}
    assert record["executor"] == "ray"

    # Nothing runs any more: cancel says so and changes nothing.
    code, _, err = forge(server.url, "cancel", execution)
    assert code != 0 and "is not running; nothing to cancel" in err
    after = wait_finished(server.url, execution)
    assert after["status"] == "succeeded"
    assert {job["status"] for job in after["jobs"].values()} == {"succeeded"}
