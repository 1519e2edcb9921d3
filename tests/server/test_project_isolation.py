"""Projects keep their data: on a real server with accounts, version history and the
coordinator (local executor), over real sockets, with documents edited through the real sync
client as their writers can.

alice owns project alpha; bob writes project beta and has no role on alpha. Whatever bob writes
into beta's documents (another project's artifact hash in an execution's outputs or images, in
the ``artifacts`` map, in a LoadArtifact attribute, a room under alpha's execution id), beta
cannot read alpha's artifacts, and alpha's ids never show in beta. Each test fails on a server
that trusted document content.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from pycrdt import Doc

from forge_ops.operations import builtin_code
from forge_ops.schema import ExecutionDoc, ProjectDoc
from forge_server.auth import AuthStore, TokenAuthorizer
from forge_server.auth.routes import setup_auth_routes
from forge_server.client import open_document
from forge_server.coordinator import COORDINATOR, CoordinatorConfig, coordinator_setup
from forge_server.history import HistoryConfig, history_setup
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.cli import main as forge_main
from tests.conftest import ws_refusal

SECRET = '''
def secret(*, value: int = 1) -> int:
    image("pic", [[value % 251, 7], [3, 9]])
    return value
'''
DOUBLE = '''
def double(value: int, /) -> int:
    return value * 2
'''
PEEK = '''
def peek(*, source: Artifact = "stolen") -> int:
    return source
'''


@dataclass
class World:
    server: RelayServer
    store: AuthStore
    tokens: dict[str, str]
    data_dir: Path

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


def build(name: str, value: int) -> ProjectDoc:
    """Pipelines ``secret`` (Secret(value) → Output "secret") and ``mine`` (Secret(value + 1)
    → Double → Output "mine")."""
    project = ProjectDoc.create(name)
    ops = {op: project.add_operation(op, builtin_code(op), builtin=True)
           for op in ("Output", "LoadArtifact")}
    for op, code in (("Secret", SECRET), ("Double", DOUBLE), ("Peek", PEEK)):
        ops[op] = project.add_operation(op, code)
    pid = project.add_pipeline("secret")
    secret = project.add_node(pid, ops["Secret"], attributes={"value": value})
    out = project.add_node(pid, ops["Output"], attributes={"name": "secret"})
    project.connect(pid, secret, "out", out, "data")
    pid = project.add_pipeline("mine")
    secret = project.add_node(pid, ops["Secret"], attributes={"value": value + 1})
    double = project.add_node(pid, ops["Double"])
    out = project.add_node(pid, ops["Output"], attributes={"name": "mine"})
    project.connect(pid, secret, "out", double, "value")
    project.connect(pid, double, "out", out, "data")
    return project


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data_dir = tmp_path_factory.mktemp("isolation")
    store = AuthStore.open(data_dir)
    tokens = {}
    for user in ("alice", "bob", "nora", "rita", "walt"):
        store.add_user(user)
        tokens[user] = store.create_token(user)[0]
    config = CoordinatorConfig(artifacts=str(data_dir / "artifacts"), executor="local",
                               local_workers=2, cancel_grace_s=2.0)
    setups = [setup_auth_routes, history_setup(HistoryConfig(debounce_s=30, max_interval_s=60)),
              coordinator_setup(config)]
    async with RelayServer(RelayConfig(data_dir=data_dir), authorizer=TokenAuthorizer(store),
                           setups=setups) as server:
        yield World(server, store, tokens, data_dir)
    store.close()


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(autouse=True)
def no_stored_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("FORGE_SERVER", raising=False)
    monkeypatch.delenv("FORGE_TOKEN", raising=False)
    yield


@dataclass
class Pair:
    alpha: str  # alice's
    beta: str  # bob's; sorts before alpha, so a search by id through projects meets it first
    value: int  # the secret alpha's pipeline computes


async def make_pair(world: World, *, same_pipelines: bool = False) -> Pair:
    """alpha (owner alice) and beta (owner bob); beta's pipelines compute other values unless
    ``same_pipelines``."""
    tag = uuid.uuid4().hex[:8]
    value = random.randrange(10**6, 10**9)
    pair = Pair(f"z-alpha-{tag}", f"b-beta-{tag}", value)
    rooms = world.server.app[ROOMS]
    for name, owner, secret in ((pair.alpha, "alice", value),
                                (pair.beta, "bob", value if same_pipelines else value + 7)):
        world.store.create_project(name, owner)
        await rooms.create(f"{name}/main", build(name, secret).doc.get_update())
    return pair


async def call(world: World, http: aiohttp.ClientSession, user: str, method: str, path: str,
               body: dict[str, Any] | None = None) -> tuple[int, str]:
    async with http.request(method, world.server.url + path, json=body,
                            headers=world.headers(user)) as response:
        return response.status, await response.text()


async def run(world: World, http: aiohttp.ClientSession, user: str, project: str,
              pipeline: str) -> dict[str, Any]:
    """Run a pipeline as ``user``, wait for it, return its final record."""
    status, text = await call(world, http, user, "POST", f"/api/projects/{project}/runs",
                              {"pipeline": pipeline, "executor": "local"})
    assert status == 201, text
    execution = json.loads(text)["execution"]
    await asyncio.wait_for(world.server.app[COORDINATOR].wait(execution), 120)
    status, text = await call(world, http, user, "GET", f"/api/executions/{execution}")
    assert status == 200, text
    record: dict[str, Any] = json.loads(text)
    assert record["status"] == "succeeded", record
    return record


def job_named(record: dict[str, Any], name: str) -> str:
    return next(job for job, info in record["jobs"].items() if info["name"] == name)


async def forge(world: World, capsys: pytest.CaptureFixture[str],
                monkeypatch: pytest.MonkeyPatch, user: str, *argv: str) -> tuple[int, str]:
    """``forge ARGV`` as ``user``: (exit code, stdout and stderr)."""
    monkeypatch.setenv("FORGE_TOKEN", world.tokens[user])
    capsys.readouterr()
    code = await asyncio.to_thread(forge_main, [*argv, "--server", world.server.url])
    out, err = capsys.readouterr()
    return code, out + err


async def images_of(world: World, project: str, execution: str) -> dict[str, dict[str, str]]:
    room = await world.server.app[ROOMS].get(f"{project}/executions/{execution}")
    return ExecutionDoc(room.doc).to_plain()["images"]


async def test_another_projects_hash_written_into_beta_documents_is_never_served(
    world: World, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    pair = await make_pair(world)
    alpha_run = await run(world, http, "alice", pair.alpha, "secret")
    secret = alpha_run["artifacts"]["secret"]
    alpha_job = job_named(alpha_run, "Secret")
    picture = (await images_of(world, pair.alpha, alpha_run["execution"]))[alpha_job]["pic"]
    beta_run = await run(world, http, "bob", pair.beta, "mine")
    beta_exec, beta_job = beta_run["execution"], job_named(beta_run, "Secret")

    # bob, a writer of beta, points beta's documents at alpha's artifacts.
    token = world.tokens["bob"]
    async with open_document(world.server.url, token, f"{pair.beta}/main") as client:
        ProjectDoc(client.doc).record_artifact("stolen", secret, "json",
                                               produced_by=beta_exec)
    async with open_document(world.server.url, token,
                             f"{pair.beta}/executions/{beta_exec}") as client:
        ExecutionDoc(client.doc).set_output(beta_job, "out", secret)
        ExecutionDoc(client.doc).set_image(beta_job, "stolen", picture)

    refused = [
        ("GET", f"/api/projects/{pair.beta}/artifacts/stolen"),
        ("GET", f"/api/projects/{pair.beta}/artifacts/stolen/export"),
        ("GET", f"/api/executions/{beta_exec}/artifacts/{secret}"),
        ("GET", f"/api/projects/{pair.beta}/executions/{beta_exec}/artifacts/{secret}"),
        ("GET", f"/api/executions/{beta_exec}/artifacts/{picture}"),
        ("GET", f"/api/executions/{beta_exec}/jobs/{beta_job}/images/stolen?format=raw"),
    ]
    for method, path in refused:
        status, text = await call(world, http, "bob", method, path)
        assert status == 404, (path, status, text)
        assert str(pair.value) not in text and pair.alpha not in text
        assert alpha_run["execution"] not in text
    target = tmp_path / "stolen.json"
    code, output = await forge(world, capsys, monkeypatch, "bob", "artifact", "export",
                               pair.beta, "stolen", str(target))
    assert code != 0 and not target.exists(), output
    code, output = await forge(world, capsys, monkeypatch, "bob", "artifact", "show",
                               pair.beta, "stolen")
    assert code != 0 and str(pair.value) not in output, output
    assert "no execution of" in output  # says why

    # What is theirs stays readable: alice's secret, and bob's own output.
    code, output = await forge(world, capsys, monkeypatch, "alice", "artifact", "export",
                               pair.alpha, "secret", str(tmp_path / "alpha.json"))
    assert code == 0, output
    assert json.loads((tmp_path / "alpha.json").read_text()) == pair.value
    code, output = await forge(world, capsys, monkeypatch, "bob", "artifact", "export",
                               pair.beta, "mine", str(tmp_path / "mine.json"))
    assert code == 0, output
    assert json.loads((tmp_path / "mine.json").read_text()) == 2 * (pair.value + 7 + 1)


async def test_a_pipeline_cannot_load_another_projects_artifact(
    world: World, http: aiohttp.ClientSession
) -> None:
    pair = await make_pair(world)
    secret = (await run(world, http, "alice", pair.alpha, "secret"))["artifacts"]["secret"]
    async with open_document(world.server.url, world.tokens["bob"],
                             f"{pair.beta}/main") as client:
        project = ProjectDoc(client.doc)
        project.record_artifact("stolen", secret, "json")
        load, output, peek = (project.find("operations", op) or ""
                              for op in ("LoadArtifact", "Output", "Peek"))
        steal = project.add_pipeline("steal")
        loaded = project.add_node(steal, load, attributes={"content_hash": secret})
        copy = project.add_node(steal, output, attributes={"name": "copy"})
        project.connect(steal, loaded, "out", copy, "data")
        refer = project.add_pipeline("refer")
        peeked = project.add_node(refer, peek, references={"source": "stolen"})
        copy = project.add_node(refer, output, attributes={"name": "peeked"})
        project.connect(refer, peeked, "out", copy, "data")

    for pipeline, says in (("steal", "content_hash"), ("refer", "stolen")):
        status, text = await call(world, http, "bob", "POST", f"/api/projects/{pair.beta}/runs",
                                  {"pipeline": pipeline, "executor": "local"})
        assert status == 400, (pipeline, status, text)
        assert says in json.loads(text)["error"]
    for name in ("copy", "peeked"):
        status, text = await call(world, http, "bob", "GET",
                                  f"/api/projects/{pair.beta}/artifacts/{name}/export")
        assert status == 404 and str(pair.value) not in text


async def test_a_restart_does_not_feed_a_planted_output_downstream(
    world: World, http: aiohttp.ClientSession
) -> None:
    pair = await make_pair(world)
    secret = (await run(world, http, "alice", pair.alpha, "secret"))["artifacts"]["secret"]
    first = await run(world, http, "bob", pair.beta, "mine")
    execution, source = first["execution"], job_named(first, "Secret")
    async with open_document(world.server.url, world.tokens["bob"],
                             f"{pair.beta}/executions/{execution}") as client:
        ExecutionDoc(client.doc).set_output(source, "out", secret)
    status, text = await call(world, http, "bob", "POST",
                              f"/api/executions/{execution}/jobs/Double/restart")
    assert status == 202, text
    await asyncio.wait_for(world.server.app[COORDINATOR].wait(execution), 120)
    status, text = await call(world, http, "bob", "GET",
                              f"/api/projects/{pair.beta}/artifacts/mine/export")
    assert status == 200, text
    assert json.loads(text) == 2 * (pair.value + 7 + 1)  # beta's own value, not alpha's
    status, text = await call(world, http, "bob", "GET", f"/api/executions/{execution}")
    assert json.loads(text)["jobs"][source]["outputs"] == first["jobs"][source]["outputs"]


async def test_a_cache_hit_from_another_project_shows_none_of_its_ids(
    world: World, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    pair = await make_pair(world, same_pipelines=True)
    alpha_run = await run(world, http, "alice", pair.alpha, "secret")
    foreign = [alpha_run["execution"], alpha_run["commit"][:10], pair.alpha]

    beta_run = await run(world, http, "bob", pair.beta, "secret")
    job = job_named(beta_run, "Secret")
    assert beta_run["jobs"][job]["status"] == "cached"  # shared cache: computed by alpha
    assert beta_run["jobs"][job]["cached_from"] is None
    summary_status, summary = await call(world, http, "bob", "GET",
                                         f"/api/projects/{pair.beta}/artifacts/secret")
    assert summary_status == 200, summary
    provenance = json.loads(summary)["summary"]["provenance"]
    assert [(p["execution"], p["commit"], p["job"], p["how"]) for p in provenance] == [
        (beta_run["execution"], beta_run["commit"], job, "cached")]
    code, shown = await forge(world, capsys, monkeypatch, "bob", "artifact", "show",
                              pair.beta, "secret")
    assert code == 0, shown
    texts = [json.dumps(beta_run), summary, shown]
    assert not [(ident, text) for ident in foreign for text in texts if ident in text]

    # The copied record lets beta read its output; a later hit names beta's first run.
    code, output = await forge(world, capsys, monkeypatch, "bob", "artifact", "export",
                               pair.beta, "secret", str(tmp_path / "beta.json"))
    assert code == 0, output
    assert json.loads((tmp_path / "beta.json").read_text()) == pair.value
    again = await run(world, http, "bob", pair.beta, "secret")
    assert again["jobs"][job]["cached_from"] == beta_run["execution"]


async def test_an_execution_of_a_project_without_a_role_answers_like_an_unknown_id(
    world: World, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pair = await make_pair(world)
    alpha_run = await run(world, http, "alice", pair.alpha, "secret")
    known, unknown = alpha_run["execution"], "0badc0de"
    job = job_named(alpha_run, "Secret")
    routes = [("GET", ""), ("POST", "/cancel"), ("POST", "/rerun"),
              ("POST", f"/jobs/{job}/restart"), ("POST", f"/jobs/{job}/cancel"),
              ("GET", f"/jobs/{job}/images/pic"),
              ("GET", f"/artifacts/{alpha_run['artifacts']['secret']}")]
    for user in ("bob", "nora"):  # a role elsewhere, no role at all
        for method, suffix in routes:
            answers = []
            for execution in (known, unknown):
                status, text = await call(world, http, user, method,
                                          f"/api/executions/{execution}{suffix}")
                answers.append((status, text.replace(execution, "ID")))
            assert answers[0] == answers[1], (user, method, suffix, answers)
            assert answers[0][0] == 404 and pair.alpha not in answers[0][1]
    for command in (("restart", known, job), ("rerun", known), ("cancel", known)):
        code, output = await forge(world, capsys, monkeypatch, "bob", *command)
        assert code != 0 and pair.alpha not in output and "no execution" in output, output
    status, _ = await call(world, http, "alice", "GET", f"/api/executions/{known}")
    assert status == 200


# The id-only routes by credential (as in test_auth_matrix): (GET the record, POST cancel).
ID_ROUTES: dict[str, tuple[int, int]] = {
    "none": (401, 401),
    "garbage": (401, 401),
    "no_role": (404, 404),  # nora: no role anywhere
    "elsewhere": (404, 404),  # bob: writer of another project
    "reader": (200, 403),  # rita
    "writer": (200, 409),  # walt: the execution is not running
    "owner": (200, 409),  # alice
}
USERS = {"no_role": "nora", "elsewhere": "bob", "reader": "rita", "writer": "walt",
         "owner": "alice"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def alpha_execution(world: World) -> AsyncIterator[str]:
    pair = await make_pair(world)
    world.store.grant("rita", pair.alpha, "reader")
    world.store.grant("walt", pair.alpha, "writer")
    async with aiohttp.ClientSession() as session:
        yield (await run(world, session, "alice", pair.alpha, "secret"))["execution"]


@pytest.mark.parametrize("cred", list(ID_ROUTES))
async def test_the_id_only_routes_by_credential(
    world: World, http: aiohttp.ClientSession, alpha_execution: str, cred: str
) -> None:
    token = {"none": None, "garbage": "forge_not-a-real-token"}.get(
        cred, world.tokens.get(USERS.get(cred, ""), ""))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answers = []
    for execution in (alpha_execution, "0badc0de"):
        statuses = []
        for method, suffix in (("GET", ""), ("POST", "/cancel")):
            async with http.request(method, f"{world.server.url}/api/executions/{execution}"
                                    f"{suffix}", headers=headers) as response:
                statuses.append(response.status)
        answers.append(tuple(statuses))
    assert answers[0] == ID_ROUTES[cred]
    # An unknown id: 401 without a valid token, else 404 whatever the role elsewhere.
    assert answers[1] == ((401, 401) if cred in ("none", "garbage") else (404, 404))


async def test_a_room_under_another_projects_execution_id_is_not_that_execution(
    world: World, http: aiohttp.ClientSession
) -> None:
    pair = await make_pair(world)
    alpha_run = await run(world, http, "alice", pair.alpha, "secret")
    execution = alpha_run["execution"]
    # bob cannot open a room under that execution id in beta: only the server makes them.
    base = world.server.url.replace("http", "ws", 1)
    refusal = await ws_refusal(
        http, f"{base}/sync/{pair.beta}/executions/{execution}",
        headers={"Authorization": f"Bearer {world.tokens['bob']}"},
    )
    assert refusal[0] == 4404
    # One left by an older server (found first in name order) is still not that execution.
    fake = ExecutionDoc(Doc())
    fake.meta["status"] = "succeeded"
    fake.add_job("Secret", "op", job_id="j")
    await world.server.app[ROOMS].create(f"{pair.beta}/executions/{execution}",
                                         fake.doc.get_update())
    status, text = await call(world, http, "alice", "GET", f"/api/executions/{execution}")
    assert status == 200, text
    assert json.loads(text)["project"] == pair.alpha
    for path in (f"/api/executions/{execution}",
                 f"/api/projects/{pair.beta}/executions/{execution}"):
        status, text = await call(world, http, "bob", "GET", path)
        assert status == 404, (path, text)
    status, text = await call(world, http, "alice", "POST", f"/api/executions/{execution}/rerun")
    assert status == 201, text
    rerun = json.loads(text)
    assert rerun["project"] == pair.alpha and rerun["rerun_of"] == execution
    await asyncio.wait_for(world.server.app[COORDINATOR].wait(rerun["execution"]), 120)


async def test_two_projects_never_share_an_execution_id(
    world: World, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = await make_pair(world)
    ids = iter(["0000c0de", "0000c0de", "0000c0de", "0001c0de"])
    monkeypatch.setattr("forge_server.coordinator._own_data.new_id", lambda: next(ids))
    alpha_run = await run(world, http, "alice", pair.alpha, "secret")
    beta_run = await run(world, http, "bob", pair.beta, "secret")
    assert (alpha_run["execution"], beta_run["execution"]) == ("0000c0de", "0001c0de")
    for user, project, execution in (("alice", pair.alpha, "0000c0de"),
                                     ("bob", pair.beta, "0001c0de")):
        status, text = await call(world, http, user, "GET", f"/api/executions/{execution}")
        assert status == 200 and json.loads(text)["project"] == project, text


async def test_executions_stored_before_the_records_existed_are_recorded_at_the_first_start(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """An upgraded server keeps serving what it ran before it kept project records: each
    execution room tagged ``run/{id}`` becomes its project's, with its outputs."""
    data_dir = tmp_path / "data"
    config = CoordinatorConfig(artifacts=str(data_dir / "artifacts"), executor="local",
                               local_workers=1)

    def setups() -> list[Any]:
        return [history_setup(HistoryConfig(debounce_s=30, max_interval_s=60)),
                coordinator_setup(config)]

    async with RelayServer(RelayConfig(data_dir=data_dir), setups=setups()) as server:
        await server.app[ROOMS].create("old/main", build("old", 5).doc.get_update())
        async with http.post(f"{server.url}/api/projects/old/runs",
                             json={"pipeline": "secret", "executor": "local"}) as response:
            execution = (await response.json())["execution"]
        await asyncio.wait_for(server.app[COORDINATOR].wait(execution), 120)
        # A room made under an execution URL by a client of an older server, never run.
        ghost = ExecutionDoc(Doc())
        ghost.meta["status"] = "succeeded"
        await server.app[ROOMS].create("old/executions/0f0f0f0f", ghost.doc.get_update())
    with sqlite3.connect(data_dir / "forge.db") as db:  # the server before the records
        for table in ("coordinator_executions", "coordinator_artifacts", "coordinator_meta"):
            db.execute(f"DROP TABLE {table}")

    async with RelayServer(RelayConfig(data_dir=data_dir), setups=setups()) as server:
        async with http.get(f"{server.url}/api/executions/{execution}") as response:
            assert response.status == 200
            assert (await response.json())["project"] == "old"
        async with http.get(f"{server.url}/api/projects/old/artifacts/secret/export") as response:
            assert response.status == 200
            assert json.loads(await response.read()) == 5
        async with http.get(f"{server.url}/api/executions/0f0f0f0f") as response:
            assert response.status == 404
