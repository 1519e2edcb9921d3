"""The execution writer outlives an event it cannot write: later events still land."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from forge_ops.execution import JobFeedback, JobStatusChanged
from forge_ops.schema import ExecutionDoc, JobStatus
from forge_server.coordinator import ExecutionWriter
from forge_server.relay.config import RelayConfig
from forge_server.relay.rooms import RoomManager
from forge_server.relay.store import Store


async def test_an_unwritable_event_is_logged_and_the_next_ones_are_written(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = RelayConfig(data_dir=tmp_path)
    rooms = RoomManager(Store(config.db_path), config)
    async with rooms.hold("p/executions/x1") as room:
        with room.edit(None) as doc:
            ExecutionDoc(doc).add_job("N", "op", job_id="j")
    writer = ExecutionWriter(rooms, "p/executions/x1", "p/main", "x1", author=None,
                             interval=0.01)
    writer.start()
    writer.on_event(JobStatusChanged("x1", "j", JobStatus.RUNNING, "t0"))
    # A lone surrogate: pycrdt panics on it (a BaseException). Workers escape such text now;
    # the writer must survive it all the same.
    writer.on_event(JobFeedback("x1", "j", (("stdout", "bad \udcff"),)))
    await asyncio.sleep(0.1)
    writer.on_event(JobFeedback("x1", "j", (("stdout", "after"),)))
    writer.on_event(JobStatusChanged("x1", "j", JobStatus.SUCCEEDED, "t1", finished="t1"))
    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(writer.close(), 10)
    async with rooms.hold("p/executions/x1") as room:
        plain = ExecutionDoc(room.doc).to_plain()
    assert plain["jobs"]["j"]["status"] == "succeeded"
    assert "after" in plain["console"]["j"]
    assert "writing events failed" in caplog.text
    await rooms.close()
