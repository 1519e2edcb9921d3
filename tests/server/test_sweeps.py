"""Sweeps on a real relay: a grid over learning rates whose trials share the upstream jobs,
seeded proposals, pruning, apply-best, and the refusals (local executor; one Ray run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sweep_fixtures as fixtures
from sweep_fixtures import (
    PIPELINE,
    RATES,
    define,
    example_project,
    execution,
    finish,
    jobs_by_name,
    sweep_api,
    sweep_setups,
)

from forge_ops.schema import ProjectDoc
from forge_ops.sweeps import optuna_module, read_sweep, sampler, suggest
from forge_server.history import HISTORY
from forge_server.principal import Role, Unauthenticated
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer

swept = fixtures.swept


async def check_grid_sweep(server: RelayServer, project: str, run: dict[str, Any]) -> None:
    """Four executions, one per rate; the data jobs computed once and shared by the others."""
    record = await finish(server, project, "lr", run["run"])
    assert record["status"] == "finished", record
    trials = record["trials"]
    assert [t["status"] for t in trials] == ["succeeded"] * 4, trials
    assert sorted(t["settings"]["Train.learning_rate"] for t in trials) == sorted(RATES)
    assert all(isinstance(t["objective"], float) for t in trials)
    best = max(trials, key=lambda t: t["objective"])
    assert record["best"] == best["number"] and best["best"]
    executions = [await execution(server, t["execution"]) for t in trials]
    assert len({e["execution"] for e in executions}) == 4
    for name in ("SyntheticImages", "NormalizeData"):
        statuses = sorted(jobs_by_name(e)[name]["status"] for e in executions)
        assert statuses == ["cached", "cached", "cached", "succeeded"], (name, statuses)
    assert all(jobs_by_name(e)["Train"]["status"] == "succeeded" for e in executions)
    # Every trial ran from its own tag, whose commit holds its rate.
    store = server.app[HISTORY].store
    for trial, run_record in zip(trials, executions, strict=True):
        tag = store.tag(project, f"run/{trial['execution']}")
        assert tag is not None and tag.commit == run_record["commit"]
        pipeline = next(p for p in store.content(tag.commit)["pipelines"].values()
                        if p["name"] == PIPELINE)
        train = next(n for n in pipeline["nodes"].values() if n["name"] == "Train")
        assert train["attributes"]["learning_rate"] == trial["settings"]["Train.learning_rate"]
    assert store.tag(project, f"sweep/{run['run']}").commit == run["commit"]


class TestGridSweep:
    async def test_four_learning_rates_share_the_data_jobs(self, swept: RelayServer) -> None:
        project = await example_project(swept)
        await define(swept, project)
        status, run = await sweep_api(swept)("POST", f"{project}/sweeps/lr/runs", {})
        assert status == 201, run
        assert run["status"] == "running" and run["budget"]["trials"] == 4
        await check_grid_sweep(swept, project, run)

        # Apply the best settings: an ordinary, committed edit of the pipeline.
        status, applied = await sweep_api(swept)(
            "POST", f"{project}/sweeps/lr/runs/latest/apply", {})
        assert status == 200, applied
        record = await finish(swept, project, "lr", run["run"])
        best = next(t for t in record["trials"] if t["best"])
        rate = best["settings"]["Train.learning_rate"]
        assert applied["trial"] == best["number"]
        room = await swept.app[ROOMS].get(f"{project}/main")
        pipeline = next(p for p in ProjectDoc(room.doc).to_plain()["pipelines"].values()
                        if p["name"] == PIPELINE)
        train = next(n for n in pipeline["nodes"].values() if n["name"] == "Train")
        assert train["attributes"]["learning_rate"] == rate
        message = applied["commit"]["message"]
        assert message.startswith(f"Applied sweep lr trial {best['number']}: Set "
                                  f"Train.learning_rate 0.0005 → {rate}"), message
        head = swept.app[HISTORY].store.head(project, "main")
        assert head.id == applied["commit"]["id"]

    async def test_listing_and_refusals(self, swept: RelayServer) -> None:
        project = await example_project(swept)
        call = sweep_api(swept)
        status, body = await call("PUT", f"{project}/sweeps/bad", {
            "pipeline": PIPELINE, "parameters": {"lr": {"node": "Trian",
                                                        "attribute": "learning_rate",
                                                        "values": [0.1]}},
            "objective": {"artifact": "metrics", "key": "accuracy"}})
        assert status == 400
        assert any("no node 'Trian'" in p for p in body["problems"])
        assert any("publishes no artifact 'metrics'" in p for p in body["problems"])
        status, body = await call("POST", f"{project}/sweeps/nope/runs", {})
        assert status == 404 and "no sweep 'nope'" in body["error"]
        await define(swept, project)
        status, body = await call("GET", f"{project}/sweeps/lr/runs/latest")
        assert status == 404 and "has not run yet" in body["error"]
        status, body = await call("POST", f"{project}/sweeps/lr/runs", {"executor": "slurm"})
        assert status == 400 and "unknown executor" in body["error"]
        status, listing = await call("GET", f"{project}/sweeps")
        assert status == 200
        assert [(s["name"], s["trials"], s["problems"], s["runs"])
                for s in listing["sweeps"]] == [("lr", 4, [], [])]


    async def test_a_time_budget_stops_new_trials(self, swept: RelayServer) -> None:
        project = await example_project(swept)
        await define(swept, project, budget={"concurrency": 1, "time_s": 0.5})
        status, run = await sweep_api(swept)("POST", f"{project}/sweeps/lr/runs", {})
        assert status == 201, run
        record = await finish(swept, project, "lr", run["run"])
        assert record["status"] == "finished"
        # Trials it began finish; none begins after the budget (a trial answered from the
        # cache may end within it, letting a second one begin on a fast machine).
        statuses = [t["status"] for t in record["trials"]]
        assert 1 <= len(statuses) < 4 and set(statuses) == {"succeeded"}, record
        assert record["note"] == f"time budget spent after {len(statuses)} trials"


class TestSearch:
    async def test_a_seeded_random_sweep_proposes_the_same_trials_twice(
            self, swept: RelayServer) -> None:
        project = await example_project(swept, {"max_iterations": 2})
        await define(swept, project, "random", parameters={
            "lr": {"node": "Train", "attribute": "learning_rate", "low": 1e-4, "high": 1e-1,
                   "log": True},
            "batch": {"node": "Train", "attribute": "batch_size", "values": [16, 32, 64]}},
            sampler={"kind": "random", "seed": 7}, budget={"trials": 3, "concurrency": 3})
        proposed = []
        for _ in range(2):
            status, run = await sweep_api(swept)("POST", f"{project}/sweeps/random/runs", {})
            assert status == 201, run
            record = await finish(swept, project, "random", run["run"])
            assert [t["status"] for t in record["trials"]] == ["succeeded"] * 3, record
            proposed.append([t["values"] for t in record["trials"]])
        assert proposed[0] == proposed[1]
        assert len({v["lr"] for v in proposed[0]}) == 3


def grid_order(project: ProjectDoc, sweep: str) -> list[Any]:
    """The order in which the sweep's grid sampler proposes its points."""
    plain = project.to_plain()
    spec = read_sweep(plain, sweep)
    study = optuna_module().create_study(sampler=sampler(spec))
    order = []
    for _ in range(spec.budget.trials):
        trial = study.ask()
        order.append(suggest(trial, spec)["lr"])
        study.tell(trial, 0.0)
    return order


class TestPruning:
    async def test_a_diverging_trial_is_pruned_cancelled_and_marked(
            self, swept: RelayServer) -> None:
        project = await example_project(swept, {"max_iterations": 300})
        rates = [0.003, 50.0]  # Adam at a rate of 50 diverges at once
        parts = {"parameters": {"lr": {"node": "Train", "attribute": "learning_rate",
                                       "values": rates}},
                 "budget": {"concurrency": 1},
                 "pruner": {"rule": "median", "node": "Train", "graph": "Training Error",
                            "line": "error", "startup_trials": 1}}
        room = await swept.app[ROOMS].get(f"{project}/main")
        for seed in range(50):  # a seed whose grid order puts the diverging rate last
            sweep = await define(swept, project, sampler={"kind": "grid", "seed": seed},
                                 **parts)
            if grid_order(ProjectDoc(room.doc), sweep["sweep"])[-1] == 50.0:
                break
        status, run = await sweep_api(swept)("POST", f"{project}/sweeps/lr/runs", {})
        assert status == 201, run
        record = await finish(swept, project, "lr", run["run"])
        pruned = [t for t in record["trials"] if t["status"] == "pruned"]
        assert len(pruned) == 1, record["trials"]
        trial = pruned[0]
        assert trial["settings"] == {"Train.learning_rate": 50.0}
        assert "pruned at step" in trial["reason"] and "median rule" in trial["reason"]
        assert trial["objective"] is None and not trial["best"]
        run_record = await execution(swept, trial["execution"])
        assert run_record["status"] == "cancelled"
        train = jobs_by_name(run_record)["Train"]
        assert train["status"] == "cancelled"
        assert train["error"].startswith("sweep lr: pruned at step")
        assert trial["steps"] < 300  # stopped early
        assert [t["status"] for t in record["trials"]] == ["succeeded", "pruned"]


class TokenRoles:
    """The token is the user's name; "reader" may only read, anyone else writes."""

    async def authenticate(self, token: str | None) -> str:
        if not token:
            raise Unauthenticated("a token is required")
        return token

    async def role(self, user: str, project: str) -> Role | None:
        return Role.READER if user == "reader" else Role.WRITER


async def test_readers_read_writers_run(tmp_path: Path) -> None:
    async with RelayServer(RelayConfig(data_dir=tmp_path), authorizer=TokenRoles(),
                           setups=sweep_setups(tmp_path)) as server:
        project = await example_project(server)
        base = f"{server.url}/api/projects/{project}/sweeps"
        definition = {"pipeline": PIPELINE, **fixtures.GRID}

        async def call(token: str | None, method: str, url: str,
                       body: dict[str, Any] | None = None) -> tuple[int, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with aiohttp.ClientSession(headers=headers) as session, \
                    session.request(method, url, json=body) as response:
                return response.status, await response.json()

        assert (await call(None, "GET", base))[0] == 401
        status, body = await call("reader", "PUT", f"{base}/lr", definition)
        assert status == 403 and "writer or owner role" in body["error"]
        assert (await call("writer", "PUT", f"{base}/lr", definition))[0] == 200
        assert (await call("reader", "GET", base))[0] == 200
        for action in ("runs", "runs/latest/cancel", "runs/latest/resume", "runs/latest/apply"):
            assert (await call("reader", "POST", f"{base}/lr/{action}", {}))[0] == 403, action


@pytest.mark.ray
@pytest.mark.slow
class TestRay:
    async def test_grid_sweep_on_ray(self, tmp_path: Path) -> None:
        pytest.importorskip("ray")
        async with RelayServer(RelayConfig(data_dir=tmp_path),
                               setups=sweep_setups(tmp_path, "ray")) as server:
            project = await example_project(server)
            await define(server, project)
            status, run = await sweep_api(server)("POST", f"{project}/sweeps/lr/runs", {})
            assert status == 201, run
            await check_grid_sweep(server, project, run)
            record = await finish(server, project, "lr", run["run"])
            assert {(await execution(server, t["execution"]))["executor"]
                    for t in record["trials"]} == {"ray"}
