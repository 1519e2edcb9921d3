"""Losing the node that hosts the feedback relay actor: the server says so in one line (not a
traceback a second), recreates the relay, and the job's feedback keeps coming."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_fixtures import (
    NODE_DEATH_SECONDS,
    RayCluster,
    add_pipeline,
    get_json,
    run_detached,
    wait_finished,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TALK = '''
import time

def talk(*, seconds: float = 12.0) -> int:
    begun = time.monotonic()
    count = 0
    while time.monotonic() - begun < seconds:
        count += 1
        print("line", count)
        time.sleep(0.1)
    return count
'''


async def test_losing_the_relay_node_recreates_the_relay(
        ray_cluster: RayCluster, serve_process: Any, tmp_path: Path, cli_config: None) -> None:
    relay_node = ray_cluster.add_node({"relay": 1}, cpus=0)  # jobs never run there
    server = serve_process(tmp_path / "data", "--no-auth", "--ray-address",
                           ray_cluster.client_address,
                           env={**ray_cluster.env,
                                "FORGE_FEEDBACK_RELAY_RESOURCES": json.dumps({"relay": 0.01})})
    await add_pipeline(server.url, "relay", "talk", {"Talk": TALK})
    execution = await asyncio.to_thread(run_detached, server.url, "relay", "talk")

    def console_lines() -> int:
        record = get_json(server.url, f"executions/{execution}")
        return sum(job["console_lines"] for job in record["jobs"].values())

    deadline = time.monotonic() + 60
    while await asyncio.to_thread(console_lines) < 5:
        assert time.monotonic() < deadline, "".join(server.output)
        await asyncio.sleep(0.2)
    relay_node.kill()
    await asyncio.sleep(NODE_DEATH_SECONDS + 2)
    before = await asyncio.to_thread(console_lines)
    await asyncio.sleep(1.5)
    assert await asyncio.to_thread(console_lines) > before  # feedback keeps flowing

    record = await asyncio.to_thread(wait_finished, server.url, execution, 60)
    assert record["status"] == "succeeded"
    log = "".join(server.output)
    assert log.count("the Ray feedback relay actor died") == 1, log
    assert "recreated it" in log and "Traceback" not in log, log
    assert "the Ray feedback relay actor is back after" in log, log
