"""Artifacts in a real S3-compatible store (moto's server mode on loopback, s3fs): runs store
and cache there; an outage fails the jobs it hits with the store's reason, in their records;
`forge artifact show` fails in seconds; `forge serve` refuses a store that does not answer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_fixtures import (
    MotoS3,
    add_pipeline,
    forge,
    get_json,
    run_detached,
    wait_finished,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

MAKE = '''
def make(*, n: int = 1000) -> Tensor:
    import torch
    return torch.arange(n, dtype=torch.float32)
'''
SLOW = '''
import time

def slow(*, seconds: float = 4.0) -> Tensor:
    import torch
    print("started", flush=True)
    time.sleep(seconds)
    return torch.ones(10)
'''


def serve_on_s3(serve_process: Any, tmp_path: Path, moto: MotoS3, *extra: str) -> Any:
    bucket = moto.new_bucket()
    return serve_process(tmp_path / "data", "--no-auth", "--executor", "local",
                         "--artifacts", f"s3://{bucket}/forge", "--artifacts-option",
                         f"endpoint_url={moto.endpoint}", *extra, env=moto.env)


def stored_objects(moto: MotoS3) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=moto.endpoint, aws_access_key_id="forge-test",
                          aws_secret_access_key="forge-test", region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=moto.bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


async def test_runs_cache_in_s3_and_an_outage_fails_jobs_with_the_stores_reason(
        moto_s3: MotoS3, serve_process: Any, tmp_path: Path, cli_config: None) -> None:
    server = serve_on_s3(serve_process, tmp_path, moto_s3)
    await add_pipeline(server.url, "s3", "make", {"Make": MAKE, "Output": None},
                       edges=(("Make", "out", "Output", "data"),),
                       attributes={"Output": {"name": "made"}})
    await add_pipeline(server.url, "s3slow", "slow", {"Slow": SLOW})

    first = await asyncio.to_thread(
        wait_finished, server.url, await asyncio.to_thread(run_detached, server.url, "s3", "make"))
    assert first["status"] == "succeeded", "".join(server.output)
    made = first["artifacts"]["made"]
    stored = stored_objects(moto_s3)
    assert f"forge/refs/{made[:2]}/{made}.json" in stored
    assert not any(key.startswith("forge/probes/") for key in stored)  # the probe cleaned up
    second = await asyncio.to_thread(
        wait_finished, server.url, await asyncio.to_thread(run_detached, server.url, "s3", "make"))
    assert {job["status"] for job in second["jobs"].values()} == {"cached"}
    code, out, err = await asyncio.to_thread(forge, server.url, "artifact", "show", "s3", "made")
    assert code == 0 and "tensor" in out, err

    # The store goes away while a job runs: the job fails saying so, when it stores its output.
    execution = await asyncio.to_thread(run_detached, server.url, "s3slow", "slow")
    deadline = time.monotonic() + 60
    while get_json(server.url, f"executions/{execution}")["status"] != "running" or \
            not any(j["console_lines"] for j in
                    get_json(server.url, f"executions/{execution}")["jobs"].values()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    moto_s3.stop()
    try:
        record = await asyncio.to_thread(wait_finished, server.url, execution, 60)
        assert record["status"] == "failed"
        (job,) = record["jobs"].values()
        assert job["error"].startswith(f"artifact store s3://{moto_s3.bucket}/forge unreachable: ")
        assert "retried 4 time(s) with backoff" in job["error"]
        assert "\n" not in job["error"]  # one line, not botocore's traceback

        # A new execution while the store is down: failed, every job with the reason, none
        # left queued.
        execution = await asyncio.to_thread(run_detached, server.url, "s3", "make", "--no-cache")
        record = await asyncio.to_thread(wait_finished, server.url, execution, 60)
        assert record["status"] == "failed"
        jobs = {job["name"]: job for job in record["jobs"].values()}
        assert jobs["Make"]["status"] == "failed" and "unreachable" in jobs["Make"]["error"]
        assert jobs["Output"]["status"] == "cancelled"  # not left queued
        execution = await asyncio.to_thread(run_detached, server.url, "s3", "make")
        record = await asyncio.to_thread(wait_finished, server.url, execution, 60)
        jobs = {job["name"]: job for job in record["jobs"].values()}
        # The cache lookup cannot answer either.
        assert jobs["Make"]["status"] == "failed" and "unreachable" in jobs["Make"]["error"]

        # Reading an artifact fails in seconds, saying why.
        began = time.monotonic()
        code, _, err = await asyncio.to_thread(
            forge, server.url, "artifact", "show", "s3", "made")
        assert code != 0 and "unreachable" in err, err
        assert time.monotonic() - began < 8
    finally:
        moto_s3.start()


def test_serve_refuses_a_store_that_does_not_answer(
        moto_s3: MotoS3, serve_process: Any, tmp_path: Path) -> None:
    closed = MotoS3()  # a port nothing listens on
    with pytest.raises(RuntimeError) as refused:
        serve_process(tmp_path / "data", "--no-auth", "--artifacts", "s3://forge-nothing/x",
                      "--artifacts-option", f"endpoint_url={closed.endpoint}", env=moto_s3.env)
    message = str(refused.value)
    assert "artifact store s3://forge-nothing/x unreachable: EndpointConnectionError" in message
    assert "or give another --artifacts" in message and "Traceback" not in message


def test_every_kind_round_trips_through_s3(moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """Nodes are built in memory and uploaded in one batch, read back whole: what comes back
    is what was stored, for every kind."""
    import fsspec.config
    import numpy as np
    import torch

    from forge_ops.artifacts import ArtifactStore

    for name, value in moto_s3.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": moto_s3.endpoint})
    store = ArtifactStore(f"s3://{moto_s3.new_bucket()}/kinds")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    values = {
        "tensor": torch.randn(5, 3),
        "array": np.arange(12, dtype=np.int16).reshape(3, 4),
        "dataset": {"x": torch.randn(6, 2), "y": torch.arange(6), "classes": ["a", "b"]},
        "json": {"accuracy": 0.5},
        "model": model,
    }
    for kind, value in values.items():
        stored = store.put(value)
        assert stored.kind == kind
        again = ArtifactStore(store.location).get(stored.hash)  # a fresh reader
        if kind == "tensor":
            assert torch.equal(again, value)
        elif kind == "array":
            assert np.array_equal(again, value) and again.dtype == np.int16
        elif kind == "dataset":
            assert torch.equal(again["x"], value["x"]) and again["classes"] == ["a", "b"]
        elif kind == "model":
            for (k, a), (_, b) in zip(again.state_dict().items(),
                                      value.state_dict().items(), strict=True):
                assert torch.equal(a, b), k
        else:
            assert again == value
        assert store.put(value).bytes_written == 0  # stored once
    assert store.summary(store.put(values["tensor"]).hash)["kind"] == "tensor"
