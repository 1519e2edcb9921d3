"""Attempts (issue 19): a restart adds an attempt to the job; each attempt keeps its own status,
times, console, plot and outputs; cancelling a restart leaves the earlier successful attempt as
the job's result, and the execution says what happened. Real relay, local executor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import coordinator_fixtures as fixtures
from coordinator_fixtures import api, coordinator_of, execution_doc

from forge_ops.schema import ProjectDoc
from forge_server.relay.server import RelayServer

coordinated = fixtures.coordinated
http = fixtures.http
paper_project = fixtures.paper_project

#: Quick the first time; on a restart (its marker exists) slow enough to cancel. Each run
#: prints its own lines and plots its own curve.
SECOND_TIME_SLOW = '''
import os
import time
from forge_ops.runtime import Graph
def train(*, marker: str = "") -> int:
    again = os.path.exists(marker)
    open(marker, "w").close()
    line = Graph("loss").line("train")
    for step in range(300 if again else 3):
        print("second" if again else "first", step)
        line.add(step, 10.0 if again else 1.0)
        time.sleep(0.1 if again else 0.0)
    return 2 if again else 1
'''
AFTER = '''
def after(value: int, /) -> int:
    return value + 1
'''


async def test_a_cancelled_restart_keeps_the_earlier_result_and_both_attempts(
    coordinated: RelayServer, http: aiohttp.ClientSession, paper_project, tmp_path: Path
) -> None:
    def pipeline(project: ProjectDoc) -> None:
        pid = project.add_pipeline("twice")
        train = project.add_node(pid, project.find("operations", "Twice") or "",
                                 attributes={"marker": str(tmp_path / "ran-once")})
        after = project.add_node(pid, project.find("operations", "After") or "")
        project.connect(pid, train, "out", after, "value")

    project = await paper_project({"Twice": SECOND_TIME_SLOW, "After": AFTER}, edit=pipeline)
    base = f"{coordinated.url}/api/projects/{project}"
    status, record = await api(http, "POST", f"{base}/runs", {"pipeline": "twice"})
    assert status == 201, record
    execution = record["execution"]
    await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 60)
    _, first = await api(http, "GET", f"{base}/executions/{execution}")
    assert first["status"] == "succeeded", first
    twice = next(j for j, v in first["jobs"].items() if v["name"] == "Twice")
    first_outputs = first["jobs"][twice]["outputs"]

    status, _ = await api(http, "POST", f"{base}/executions/{execution}/jobs/Twice/restart")
    assert status in (200, 201, 202)
    for _ in range(200):  # the second attempt is running and has printed
        _, record = await api(http, "GET", f"{base}/executions/{execution}")
        job = record["jobs"][twice]
        if job["status"] == "running" and job["console_lines"] >= 3:
            break
        await asyncio.sleep(0.1)
    doc = await execution_doc(coordinated, project, execution)
    during = doc.to_plain()
    assert set(during["console"][twice]) <= {f"second {i}" for i in range(300)}  # no mixing
    assert all(y == 10.0 for _, y in during["graphs"][twice]["loss"]["train"])
    assert [a["status"] for a in during["attempts"][twice]] == ["succeeded"]

    status, _ = await api(http, "POST", f"{base}/executions/{execution}/cancel")
    assert status == 202
    await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 30)
    _, final = await api(http, "GET", f"{base}/executions/{execution}")
    job = final["jobs"][twice]
    # The execution still holds a trained result, and says what happened.
    assert final["status"] == "succeeded", final
    assert "restart was cancelled" in final["note"] and "Twice" in final["note"]
    assert job["status"] == "succeeded" and job["outputs"] == first_outputs
    assert job["kept_from_attempt"] == 1
    assert [a["ended_by"] for a in job["attempts"]] == ["restart", "cancelled"]
    assert [a["status"] for a in job["attempts"]] == ["succeeded", "cancelled"]
    plain = (await execution_doc(coordinated, project, execution)).to_plain()
    assert plain["console"][twice] == [f"first {i}" for i in range(3)]
    assert plain["graphs"][twice]["loss"]["train"] == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
    cancelled = plain["attempts"][twice][-1]
    assert cancelled["console"][:3] == ["second 0", "second 1", "second 2"]


#: Its worker dies the first time (after printing and plotting); the retry succeeds.
DIES_ONCE = '''
import os
from forge_ops.runtime import Graph
def flaky(*, marker: str = "") -> int:
    first = not os.path.exists(marker)
    open(marker, "w").close()
    line = Graph("loss").line("train")
    for step in range(3):
        print("doomed" if first else "retry", step)
        line.add(step, 5.0 if first else 1.0)
    if first:
        import sys
        sys.stdout.flush()
        import time
        time.sleep(0.5)  # let the feedback reach the server before the worker dies
        os._exit(1)
    return 1
'''


async def test_a_retry_after_the_worker_died_starts_a_clean_attempt(
    coordinated: RelayServer, http: aiohttp.ClientSession, paper_project, tmp_path: Path
) -> None:
    def pipeline(project: ProjectDoc) -> None:
        pid = project.add_pipeline("flaky")
        project.add_node(pid, project.find("operations", "Flaky") or "",
                         attributes={"marker": str(tmp_path / "died-once")})

    project = await paper_project({"Flaky": DIES_ONCE}, edit=pipeline)
    base = f"{coordinated.url}/api/projects/{project}"
    status, record = await api(http, "POST", f"{base}/runs", {"pipeline": "flaky"})
    assert status == 201, record
    execution = record["execution"]
    await asyncio.wait_for(coordinator_of(coordinated).wait(execution), 60)
    _, final = await api(http, "GET", f"{base}/executions/{execution}")
    flaky = next(j for j, v in final["jobs"].items() if v["name"] == "Flaky")
    job = final["jobs"][flaky]
    assert final["status"] == "succeeded" and job["status"] == "succeeded"
    assert [a["ended_by"] for a in job["attempts"]] == ["retry: the worker died"]
    plain = (await execution_doc(coordinated, project, execution)).to_plain()
    assert [line for line in plain["console"][flaky] if not line.startswith("[forge]")] == [
        "retry 0", "retry 1", "retry 2"]
    assert plain["graphs"][flaky]["loss"]["train"] == [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]
    died = plain["attempts"][flaky][0]
    assert died["console"][:3] == ["doomed 0", "doomed 1", "doomed 2"]
    assert [y for _, y in died["graphs"]["loss"]["train"]] == [5.0, 5.0, 5.0]
