"""`forge serve --ray-address` on a two-node Ray cluster with artifacts in S3 (moto's server):
the workers get the store's settings and the forwarded credentials from the server (the nodes
were started without them), jobs run on both nodes, a second run is fully cached; without the
credentials, the first run is refused in one line naming the node type."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cluster_fixtures import (
    MotoS3,
    RayCluster,
    add_pipeline,
    forge,
    run_detached,
    wait_finished,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NAP = '''
import time

def nap(*, seconds: float = 5.0) -> Tensor:
    import torch
    time.sleep(seconds)
    return torch.ones(4)
'''


def serve_on(ray_cluster: RayCluster, moto: MotoS3, serve_process: Any, data: Path,
             *extra: str) -> Any:
    return serve_process(data, "--no-auth", "--ray-address", ray_cluster.client_address,
                         "--artifacts", f"s3://{moto.new_bucket()}/forge",
                         "--artifacts-option", f"endpoint_url={moto.endpoint}", *extra,
                         env={**ray_cluster.env, **moto.env})


def interval(job: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(job["started"]), datetime.fromisoformat(job["finished"])


async def test_two_nodes_store_in_s3_and_cache(
        ray_cluster: RayCluster, moto_s3: MotoS3, serve_process: Any, tmp_path: Path,
        cli_config: None) -> None:
    server = serve_on(ray_cluster, moto_s3, serve_process, tmp_path / "data",
                      "--forward-env", "AWS_*")
    await add_pipeline(server.url, "spread", "pair", {"Left": NAP, "Right": NAP})
    execution = await asyncio.to_thread(run_detached, server.url, "spread", "pair")
    record = await asyncio.to_thread(wait_finished, server.url, execution, 180)
    assert record["status"] == "succeeded", "".join(server.output)
    # Both jobs ran (each node has one CPU). Whether they overlapped in time is not asserted:
    # a sandboxed Ray job may report its start together with its end.
    assert all(interval(job)[0] <= interval(job)[1] for job in record["jobs"].values())
    assert "checking the Ray cluster's node types" in "".join(server.output)

    again = await asyncio.to_thread(run_detached, server.url, "spread", "pair")
    record = await asyncio.to_thread(wait_finished, server.url, again, 60)
    assert {job["status"] for job in record["jobs"].values()} == {"cached"}


def test_a_node_type_without_the_stores_credentials_refuses_the_first_run(
        ray_cluster: RayCluster, moto_s3: MotoS3, serve_process: Any, tmp_path: Path,
        cli_config: None) -> None:
    server = serve_on(ray_cluster, moto_s3, serve_process, tmp_path / "data")  # no forwarding
    # The server checks the cluster as it starts, and says what is wrong in its log.
    deadline = time.monotonic() + 120
    while "the Ray cluster cannot run Forge's jobs" not in "".join(server.output):
        assert time.monotonic() < deadline, "".join(server.output)
        time.sleep(0.2)
    code, _, err = forge(server.url, "project", "create", "refused", "--example", "cifar10")
    assert code == 0, err
    code, _, err = forge(server.url, "run", "refused", "train-custom")
    assert code != 0
    assert "the Ray cluster cannot run Forge's jobs: node " in err, err
    assert "NoCredentialsError" in err and "--forward-env AWS_*" in err, err
    assert len(err.strip().splitlines()) == 1, err
