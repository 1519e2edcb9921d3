"""``forge run/rerun/restart/cancel/executions/artifacts/artifact`` against a real relay.

The commands run in a worker thread (they are synchronous HTTP clients) while the relay serves
on the test's event loop; jobs run on the local executor.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import coordinator_fixtures as fixtures
import pytest

from forge_ops.schema import ProjectDoc
from forge_server.relay.server import RelayServer
from forge_tui.cli import main as forge_main

# Fixtures shared with test_coordinator.py (see coordinator_fixtures.py).
coordinated = fixtures.coordinated
paper_project = fixtures.paper_project

BOOM = '''
def boom(*, message: str = "no luck") -> int:
    values = {"a": 1}
    return values[message]
'''


@pytest.fixture(autouse=True)
def no_stored_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("FORGE_SERVER", raising=False)
    monkeypatch.delenv("FORGE_TOKEN", raising=False)


async def forge(server: RelayServer, capsys: pytest.CaptureFixture[str], *argv: str
                ) -> tuple[int, str, str]:
    """Run ``forge ARGV --server URL``; (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = await asyncio.to_thread(forge_main, [*argv, "--server", server.url])
    out, err = capsys.readouterr()
    return code, out, err


def add_boom(project: ProjectDoc) -> None:
    pid = project.add_pipeline("boom")
    project.add_node(pid, project.find("operations", "Boom") or "")


class TestRunCommand:
    async def test_run_json_rerun_restart_and_artifacts(
        self, coordinated: RelayServer, paper_project, capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
    ) -> None:
        project = await paper_project()
        code, out, err = await forge(coordinated, capsys, "run", project, "paper", "--json",
                                     "--executor", "local")
        assert code == 0, err
        record = json.loads(out)
        assert record["status"] == "succeeded"
        jobs = {job["name"]: job for job in record["jobs"].values()}
        assert {job["status"] for job in jobs.values()} == {"succeeded"}
        assert all(job["duration"] >= 0 for job in jobs.values())
        assert all(job["cached_from"] is None for job in jobs.values())
        assert record["artifacts"]["model"] == jobs["Train"]["outputs"]["out"]
        assert record["artifacts"]["metrics"] == jobs["Test"]["outputs"]["out"]
        assert "Train" in err and "succeeded" in err  # progress went to stderr
        execution = record["execution"]

        # Reproducing: every output hash matches, and the command says so.
        code, out, err = await forge(coordinated, capsys, "rerun", execution, "--no-cache")
        assert code == 0, err
        ports = sum(len(job["outputs"]) for job in jobs.values())
        assert ports == 6  # two datasets each from Synthetic and Normalize, Train's, Test's
        assert f"{ports} of {ports} outputs match" in out
        assert f"reruns {execution} on local (commit " in out
        assert "DIFFERENT" not in out
        code, out, _ = await forge(coordinated, capsys, "rerun", execution, "--json")
        comparison = json.loads(out)
        assert comparison["all_match"] is True and comparison["status"] == "succeeded"

        # Restart Test: only Test and its Output run again.
        code, out, err = await forge(coordinated, capsys, "restart", execution, "Test",
                                     "--json")
        assert code == 0, err
        restarted = json.loads(out)
        assert restarted["tasks_launched"] == 2
        code, _, err = await forge(coordinated, capsys, "restart", execution, "Tset")
        assert code == 1
        assert "no job 'Tset' in this execution; jobs: MetricsOut (" in err  # sorted by name
        code, _, err = await forge(coordinated, capsys, "cancel", execution)
        assert code == 1 and "not running" in err

        code, out, _ = await forge(coordinated, capsys, "restart", execution, "Test")
        assert code == 0
        assert out.splitlines()[-3].startswith(f"execution {execution} succeeded (")
        assert "; the restart took " in out  # not the time since the execution first ran

        code, out, _ = await forge(coordinated, capsys, "executions", project)
        header, *rows = out.splitlines()
        assert header.split() == ["EXECUTION", "CREATED", "STATUS", "PIPELINE", "COMMIT", "BY"]
        assert len(rows) == 3 and all(row.split()[3:5] == ["succeeded", "paper"] for row in rows)

        # Artifacts: list, show, export.
        code, out, _ = await forge(coordinated, capsys, "artifacts", project)
        assert code == 0
        header, *rows = out.splitlines()
        assert header.split() == ["NAME", "KIND", "SHAPE", "DTYPE", "SIZE", "HASH", "EXECUTION"]
        model = next(row.split() for row in rows if row.startswith("model "))
        assert model[1] == "model" and model[-2] == record["artifacts"]["model"][:12]
        metrics = next(row.split() for row in rows if row.startswith("metrics "))
        assert metrics[1] == "json" and metrics[5] == "B" and int(metrics[4]) > 10  # its JSON
        code, out, _ = await forge(coordinated, capsys, "artifact", "show", project, "metrics")
        assert code == 0 and '"accuracy"' in out
        assert f"execution {execution}  job Test  " in out  # the job by its name
        code, out, err = await forge(coordinated, capsys, "artifact", "export", project,
                                     "model", str(tmp_path))
        assert code == 0, err
        assert (tmp_path / "model.pt").stat().st_size > 0
        code, _, err = await forge(coordinated, capsys, "artifact", "export", project, "model",
                                   str(tmp_path))
        assert code == 1 and "--force" in err
        (tmp_path / "link.pt").symlink_to(tmp_path / "elsewhere.pt")
        code, _, err = await forge(coordinated, capsys, "artifact", "export", project, "model",
                                   str(tmp_path / "link.pt"), "--force")
        assert code == 1 and "link.pt is not a regular file" in err
        assert not (tmp_path / "elsewhere.pt").exists() and (tmp_path / "link.pt").is_symlink()
        # A link planted where the partial file used to go is never written through.
        victim = tmp_path / "victim.txt"
        victim.write_text("keep me")
        (tmp_path / "model.pt.part").symlink_to(victim)
        code, _, err = await forge(coordinated, capsys, "artifact", "export", project, "model",
                                   str(tmp_path / "model.pt"), "--force")
        assert code == 0, err
        assert victim.read_text() == "keep me" and not (tmp_path / "model.pt").is_symlink()
        assert not list(tmp_path.glob(".model.pt.*.part"))

    async def test_failure_shows_the_user_traceback_and_exits_non_zero(
        self, coordinated: RelayServer, paper_project, capsys: pytest.CaptureFixture[str]
    ) -> None:
        project = await paper_project({"Boom": BOOM}, edit=add_boom)
        code, out, _ = await forge(coordinated, capsys, "run", project, "boom")
        assert code == 1
        assert "failed" in out
        assert "KeyError: 'no luck'" in out
        assert "return values[message]" in out  # the line of the user's code

    async def test_validation_errors_are_printed_per_node(
        self, coordinated: RelayServer, paper_project, capsys: pytest.CaptureFixture[str]
    ) -> None:
        def break_it(project: ProjectDoc) -> None:
            pid = project.find("pipelines", "paper") or ""
            nodes = project.to_plain()["pipelines"][pid]["nodes"]
            train = next(n for n, v in nodes.items() if v["name"] == "Train")
            project.set_attribute(pid, train, "batch_size", "big")

        project = await paper_project(edit=break_it)
        code, out, err = await forge(coordinated, capsys, "run", project, "paper")
        assert code == 1 and out == ""
        assert "cannot run (1 problem)" in err
        assert "Train" in err and "batch_size" in err
        code, _, err = await forge(coordinated, capsys, "run", project, "missing")
        assert code == 1 and "pipelines: paper" in err


QUICK = '''
def quick() -> int:
    return 1
'''
SLOW = '''
import time

def slow() -> int:
    time.sleep(60)
    return 2
'''


def add_quick_and_slow(project: ProjectDoc) -> None:
    pid = project.add_pipeline("mixed")
    project.add_node(pid, project.find("operations", "Quick") or "")
    project.add_node(pid, project.find("operations", "Slow") or "")


async def test_cancel_names_only_the_unfinished_jobs(
    coordinated: RelayServer, paper_project, capsys: pytest.CaptureFixture[str]
) -> None:
    """A finished job keeps its result when the execution is cancelled, and cancel says what
    it stops."""
    project = await paper_project({"Quick": QUICK, "Slow": SLOW}, edit=add_quick_and_slow)
    code, out, err = await forge(coordinated, capsys, "run", project, "mixed", "--detach")
    assert code == 0, err
    execution = out.split()[0]
    coordinator = fixtures.coordinator_of(coordinated)

    async def statuses() -> dict[str, str]:
        record = await coordinator.record(project, execution)
        return {job["name"]: job["status"] for job in record["jobs"].values()}

    async with asyncio.timeout(60):
        while (await statuses()) != {"Quick": "succeeded", "Slow": "running"}:
            await asyncio.sleep(0.05)
    code, out, err = await forge(coordinated, capsys, "cancel", execution)
    assert code == 0, err
    assert "1 unfinished job(s) (Slow); 1 finished job(s) keep their results" in out
    await asyncio.wait_for(coordinator.wait(execution), 30)
    assert await statuses() == {"Quick": "succeeded", "Slow": "cancelled"}
