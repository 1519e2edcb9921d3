"""``forge sweep`` and ``forge sweeps`` against a real relay (local executor)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sweep_fixtures as fixtures
from sweep_fixtures import GRID, PIPELINE, RATES, example_project

from forge_server.relay.server import RelayServer
from forge_tui.cli import main as forge_main

swept = fixtures.swept


@pytest.fixture(autouse=True)
def no_stored_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("FORGE_SERVER", raising=False)
    monkeypatch.delenv("FORGE_TOKEN", raising=False)


async def forge(server: RelayServer, capsys: pytest.CaptureFixture[str], *argv: str
                ) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(forge_main, [*argv, "--server", server.url])
    out, err = capsys.readouterr()
    return code, out, err


async def test_define_run_list_and_apply(swept: RelayServer, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    project = await example_project(swept)
    definition = tmp_path / "lr.json"
    definition.write_text(json.dumps({"pipeline": PIPELINE, **GRID}))
    code, out, err = await forge(swept, capsys, "sweep", project, "lr", "--define",
                                 str(definition))
    assert code == 0, err
    assert f"run it with `forge sweep {project} lr`" in out

    code, out, err = await forge(swept, capsys, "sweeps", project)
    assert code == 0, err
    assert "lr" in out and "never run" in out

    code, out, err = await forge(swept, capsys, "sweep", project, "lr", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert sorted(t["values"]["lr"] for t in record["trials"]) == sorted(RATES)
    assert {t["status"] for t in record["trials"]} == {"succeeded"}
    assert "trial 0" in err and "succeeded" in err  # progress on stderr

    code, out, err = await forge(swept, capsys, "sweep", project, "lr", "--status")
    assert code == 0, err
    best = next(t for t in record["trials"] if t["best"])
    assert f"*{best['number']}" in out and "Train.learning_rate=" in out
    assert f"run {record['run']} finished" in out

    code, out, err = await forge(swept, capsys, "sweeps", project, "--json")
    assert json.loads(out)[0]["runs"][0]["run"] == record["run"]

    # Every trial reruns from its own tag: the same settings, so every job comes from the cache.
    code, out, err = await forge(swept, capsys, "rerun", best["execution"], "--json")
    assert code == 0, err
    rerun = json.loads(out)
    assert rerun["all_match"] and rerun["status"] == "succeeded"
    code, out, err = await forge(swept, capsys, "executions", project, "--json")
    again = next(row for row in json.loads(out) if row["execution"] == rerun["rerun"])
    assert again["commit"] == best["commit"]

    code, out, err = await forge(swept, capsys, "sweep", project, "lr", "--apply")
    assert code == 0, err
    assert f"applied trial {best['number']}" in out
    assert "Set Train.learning_rate 0.0005 →" in out


async def test_errors_are_one_line(swept: RelayServer, capsys: pytest.CaptureFixture[str],
                                   tmp_path: Path) -> None:
    project = await example_project(swept)
    code, _, err = await forge(swept, capsys, "sweep", project, "nope")
    assert code == 1 and "no sweep 'nope' in this project; sweeps: none yet" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, _, err = await forge(swept, capsys, "sweep", project, "lr", "--define", str(bad))
    assert code == 1 and "is not JSON" in err
