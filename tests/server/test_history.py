"""Version history through a real relay on a real port: auto-commits, branches, merge, revert.

Debounce and max interval are shortened (0.3 s / 1.0 s) so the rules of issue 4 are tested in
seconds rather than by 3 s / 30 s waits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from forge_ops.schema import ProjectDoc
from forge_server.client import SyncClient, room_url
from forge_server.history import HISTORY, History, HistoryConfig, history_setup
from forge_server.principal import Role, Unauthenticated
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.cli import main as forge_main

DEBOUNCE = 0.3
MAX_INTERVAL = 1.0
TRAIN = "def train(model, data, learning_rate=0.01):\n    return model\n"


class TokenUsers:
    """Token = user name; "reader" may only read. Enough to attribute authors."""

    async def authenticate(self, token: str | None) -> str:
        if not token:
            raise Unauthenticated("a token is required")
        return token

    async def role(self, user: str, project: str) -> Role | None:
        return Role.READER if user == "reader" else Role.WRITER


def start_relay(data_dir: Path) -> RelayServer:
    config = HistoryConfig(debounce_s=DEBOUNCE, max_interval_s=MAX_INTERVAL)
    return RelayServer(
        RelayConfig(data_dir=data_dir), authorizer=TokenUsers(), setups=[history_setup(config)]
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RelayServer]:
    async with start_relay(tmp_path_factory.mktemp("history")) as relay:
        yield relay


Connect = Callable[..., Awaitable[SyncClient]]


@pytest_asyncio.fixture(loop_scope="session")
async def connect(server: RelayServer) -> AsyncIterator[Connect]:
    clients: list[SyncClient] = []

    async def make(room: str, user: str = "alice", url: str | None = None) -> SyncClient:
        client = SyncClient(room_url(url or server.url, room), token=user)
        clients.append(client)
        await client.start()
        await client.synced(10)
        return client

    yield make
    for client in clients:
        await client.stop()


def new_project() -> str:
    return f"h-{uuid.uuid4().hex[:8]}"


async def api(
    url: str, method: str, path: str, *, user: str = "alice", body: Any = None, **query: str
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            f"{url}/api/{path}",
            json=body,
            params=query,
            headers={"Authorization": f"Bearer {user}"},
        ) as response,
    ):
        return response.status, await response.json()


async def log(url: str, project: str, branch: str = "main") -> list[dict[str, Any]]:
    status, data = await api(url, "GET", f"projects/{project}/log", branch=branch, limit="100")
    assert status == 200, data
    return list(data["commits"])


async def wait_commits(url: str, project: str, count: int, branch: str = "main") -> list[Any]:
    async with asyncio.timeout(10):
        while True:
            commits = await log(url, project, branch)
            if len(commits) >= count:
                return commits
            await asyncio.sleep(0.05)


async def settle() -> None:
    """Longer than the debounce: any commit that was going to happen has happened."""
    await asyncio.sleep(DEBOUNCE * 3)


async def content(url: str, project: str, ref: str) -> dict[str, Any]:
    status, data = await api(url, "GET", f"projects/{project}/commits/{ref}", content="1")
    assert status == 200, data
    return dict(data["content"])


async def seeded(connect: Connect, url: str, project: str) -> tuple[SyncClient, ProjectDoc, dict]:
    """A project with operation Train in pipeline cifar10 (learning_rate 0.01), committed."""
    client = await connect(f"{project}/main")
    doc = ProjectDoc.create(project, client.doc)
    ids = {"train": doc.add_operation("Train", TRAIN), "pipe": doc.add_pipeline("cifar10")}
    ids["node"] = doc.add_node(ids["pipe"], ids["train"], attributes={"learning_rate": 0.01})
    await client.flush(10)
    await wait_commits(url, project, 1)
    return client, doc, ids


class TestAutomaticCommits:
    async def test_burst_makes_exactly_one_commit(self, server: RelayServer, connect: Connect):
        project = new_project()
        client, doc, ids = await seeded(connect, server.url, project)
        for lr in (0.005, 0.002, 0.001):
            doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", lr)
            await asyncio.sleep(0.05)
        await client.flush(10)
        commits = await wait_commits(server.url, project, 2)
        await settle()
        commits = await log(server.url, project)
        assert len(commits) == 2
        newest, first = commits
        assert newest["message"] == "Set Train.learning_rate 0.01 → 0.001 in pipeline cifar10"
        assert newest["authors"] == ["alice"]
        assert newest["parents"] == [first["id"]]
        assert first["parents"] == []

    async def test_continuous_edits_commit_at_least_every_interval(
        self, server: RelayServer, connect: Connect
    ):
        project = new_project()
        client, doc, ids = await seeded(connect, server.url, project)
        history: History = server.app[HISTORY]
        loop = asyncio.get_running_loop()
        start = loop.time()
        step = 0
        while loop.time() - start < 2.6:  # never quiet for a whole debounce
            step += 1
            doc.set_attribute(ids["pipe"], ids["node"], "epochs", step)
            await asyncio.sleep(0.1)
        await client.flush(10)
        await settle()
        head = history.store.head(project, "main")
        assert head is not None
        commits = list(history.store.ancestors(project, head.id))
        times = sorted(c.created for c in commits[:-1])  # those made during the edits
        assert len(times) >= 3
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) <= MAX_INTERVAL + 1.0, gaps  # slack for a busy machine
        final = await content(server.url, project, "main")
        assert final["pipelines"][ids["pipe"]]["nodes"][ids["node"]]["attributes"]["epochs"] == step

    async def test_no_change_no_commit(self, server: RelayServer, connect: Connect):
        project = new_project()
        client, doc, ids = await seeded(connect, server.url, project)
        await settle()
        doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.5)
        doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.01)  # back again
        await client.flush(10)
        await settle()
        await settle()
        assert len(await log(server.url, project)) == 1

    async def test_authors_of_two_users(self, server: RelayServer, connect: Connect):
        project = new_project()
        alice, doc_a, ids = await seeded(connect, server.url, project)
        bob = await connect(f"{project}/main", user="bob")
        doc_b = ProjectDoc(bob.doc)
        doc_a.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.1)
        doc_b.add_operation("Evaluate", "def evaluate(model):\n    pass\n")
        await alice.flush(10)
        await bob.flush(10)
        commits = await wait_commits(server.url, project, 2)
        assert commits[0]["authors"] == ["alice", "bob"]
        assert commits[1]["authors"] == ["alice"]
        doc_b.rename(ids["train"], "TrainModel")
        await bob.flush(10)
        commits = await wait_commits(server.url, project, 3)
        assert commits[0]["authors"] == ["bob"]
        assert commits[0]["message"] == "Renamed operation Train → TrainModel"


class TestBranchesAndMerge:
    async def test_branch_edit_both_sides_merge(self, server: RelayServer, connect: Connect):
        project = new_project()
        main_client, main_doc, ids = await seeded(connect, server.url, project)
        status, data = await api(
            server.url, "POST", f"projects/{project}/branches", body={"name": "exp"}
        )
        assert status == 201, data
        base = data["branch"]["from"]
        exp_client = await connect(f"{project}/exp", user="bob")
        exp_doc = ProjectDoc(exp_client.doc)
        assert exp_doc.to_plain() == main_doc.to_plain()  # same state as the commit
        exp_doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.001)
        main_doc.set_attribute(ids["pipe"], ids["node"], "epochs", 10)
        new_op = main_doc.add_operation("Test", "def test(model):\n    pass\n")
        await exp_client.flush(10)
        await main_client.flush(10)
        await wait_commits(server.url, project, 2, branch="exp")
        await wait_commits(server.url, project, 2)

        status, data = await api(
            server.url, "POST", f"projects/{project}/merge", user="carol", body={"branch": "exp"}
        )
        assert status == 200, data
        merge = data["commit"]
        assert len(merge["parents"]) == 2
        exp_head = (await log(server.url, project, "exp"))[0]["id"]
        assert merge["parents"][1] == exp_head
        assert merge["message"].startswith("Merged branch exp into main")
        assert "Set Train.learning_rate 0.01 → 0.001" in merge["message"]
        assert "carol" in merge["authors"]
        merged = await content(server.url, project, merge["id"])
        attributes = merged["pipelines"][ids["pipe"]]["nodes"][ids["node"]]["attributes"]
        assert attributes == {"learning_rate": 0.001, "epochs": 10}
        assert new_op in merged["operations"]
        # Live clients of main receive the merge too.
        async with asyncio.timeout(5):
            while main_doc.to_plain() != merged:
                await asyncio.sleep(0.05)
        # The log of main now reaches the branch's commits through the merge.
        ids_in_log = {c["id"] for c in await log(server.url, project)}
        assert {exp_head, base} <= ids_in_log
        await settle()
        assert (await log(server.url, project))[0]["id"] == merge["id"]

    async def test_revert_restores_exactly(self, server: RelayServer, connect: Connect):
        project = new_project()
        client, doc, ids = await seeded(connect, server.url, project)
        first = (await log(server.url, project))[0]
        old = await content(server.url, project, first["id"])
        doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.5)
        doc.set_code(ids["train"], TRAIN.replace("return model", "return None"))
        doc.add_operation("Stray", "pass\n")
        doc.remove_node(ids["pipe"], ids["node"])
        await client.flush(10)
        second = (await wait_commits(server.url, project, 2))[0]
        status, data = await api(
            server.url, "POST", f"projects/{project}/revert", body={"commit": first["short"]}
        )
        assert status == 200, data
        revert = data["commit"]
        assert revert["parents"] == [second["id"]]
        assert revert["message"].startswith(f"Reverted to {first['short']}")
        assert await content(server.url, project, revert["id"]) == old
        assert await content(server.url, project, second["id"]) != old  # nothing rewritten
        async with asyncio.timeout(5):
            while doc.to_plain() != old:
                await asyncio.sleep(0.05)
        await settle()
        assert len(await log(server.url, project)) == 3
        status, data = await api(
            server.url, "POST", f"projects/{project}/revert", body={"commit": first["id"]}
        )
        assert status == 409 and "already has the content" in data["error"]

    async def test_diff_between_any_two_commits(self, server: RelayServer, connect: Connect):
        project = new_project()
        client, doc, ids = await seeded(connect, server.url, project)
        norm = doc.add_operation("NormalizeData", "def normalize(data):\n    return data\n")
        n_norm = doc.add_node(ids["pipe"], norm)
        doc.connect(ids["pipe"], n_norm, "train", ids["node"], "data")
        await client.flush(10)
        await wait_commits(server.url, project, 2)
        doc.rename(ids["pipe"], "cifar10-v2")
        await client.flush(10)
        commits = await wait_commits(server.url, project, 3)
        status, data = await api(
            server.url,
            "GET",
            f"projects/{project}/diff",
            a=commits[2]["id"],
            b=commits[0]["short"],
        )
        assert status == 200, data
        assert [c["text"] for c in data["changes"]] == [
            "Added operation NormalizeData",
            "Renamed pipeline cifar10 → cifar10-v2",
            "Added operation NormalizeData to pipeline cifar10-v2",
            "Connected NormalizeData.train → Train.data",
        ]
        status, data = await api(server.url, "GET", f"projects/{project}/commits/main")
        assert [c["text"] for c in data["changes"]] == ["Renamed pipeline cifar10 → cifar10-v2"]


class TestTagsAndRuns:
    async def test_commit_and_tag_run(self, server: RelayServer, connect: Connect):
        project = new_project()
        client, doc, ids = await seeded(connect, server.url, project)
        doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.2)
        await client.flush(10)
        history: History = server.app[HISTORY]
        cid = await history.commit_and_tag_run(project, "main", "ex42", by="alice")
        assert history.store.resolve(project, "run/ex42").id == cid
        assert history.store.content(cid) == doc.to_plain()  # exactly the state that runs
        # Unchanged state: the same commit is tagged again, no empty commit.
        again = await history.commit_and_tag_run(project, "main", "ex43")
        assert again == cid
        await settle()
        assert len(await log(server.url, project)) == 2
        status, data = await api(server.url, "GET", f"projects/{project}/commits/run/ex42")
        assert status == 200 and data["commit"]["id"] == cid
        assert set(data["commit"]["tags"]) == {"run/ex42", "run/ex43"}

    async def test_tag_and_errors(self, server: RelayServer, connect: Connect):
        project = new_project()
        await seeded(connect, server.url, project)
        path = f"projects/{project}"
        status, data = await api(server.url, "POST", f"{path}/tags", body={"name": "v1"})
        assert status == 201
        status, data = await api(
            server.url, "POST", f"{path}/tags", body={"name": "v1", "commit": "zzzz"}
        )
        assert status == 404 and "unknown commit, branch or tag 'zzzz'" in data["error"]
        status, _ = await api(server.url, "POST", f"{path}/tags", body={"name": "v1"})
        assert status == 201  # same commit: idempotent
        status, data = await api(server.url, "POST", f"{path}/branches", body={"name": "exp"})
        assert status == 201
        await connect(f"{project}/exp")  # the branch room opens like any other
        status, data = await api(
            server.url, "POST", f"{path}/tags", body={"name": "v1", "commit": "exp"}
        )
        assert status == 201  # exp's head is the commit v1 names until exp is edited
        status, data = await api(server.url, "GET", f"{path}/log", branch="mian")
        assert status == 404 and "did you mean 'main'" in data["error"]
        status, data = await api(server.url, "POST", f"{path}/merge", body={"branch": "main"})
        assert status == 400 and "into itself" in data["error"]
        status, data = await api(server.url, "POST", f"{path}/branches", body={"name": "exp"})
        assert status == 409 and "already exists" in data["error"]
        status, data = await api(server.url, "POST", f"{path}/branches", body={"name": "a b"})
        assert status == 400 and "invalid branch name" in data["error"]
        status, data = await api(server.url, "GET", f"{path}/commits/v2")
        assert status == 404 and "did you mean 'v1'" in data["error"]
        status, data = await api(
            server.url, "POST", f"{path}/tags", user="reader", body={"name": "v9"}
        )
        assert status == 403
        status, data = await api(server.url, "GET", f"{path}/tags")
        assert [t["name"] for t in data["tags"]] == ["v1"]

    async def test_tag_name_taken_by_other_commit(self, server: RelayServer, connect: Connect):
        project = new_project()
        client, doc, ids = await seeded(connect, server.url, project)
        path = f"projects/{project}"
        first = (await log(server.url, project))[0]["id"]
        assert (await api(server.url, "POST", f"{path}/tags", body={"name": "best"}))[0] == 201
        doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.3)
        await client.flush(10)
        await wait_commits(server.url, project, 2)
        status, data = await api(server.url, "POST", f"{path}/tags", body={"name": "best"})
        assert status == 409
        assert f"already names commit {first[:10]}" in data["error"]


class TestPersistence:
    async def test_history_and_branches_survive_restart(self, tmp_path: Path):
        project = new_project()
        async with start_relay(tmp_path) as relay:
            client = SyncClient(room_url(relay.url, f"{project}/main"), token="alice")
            async with client:
                await client.synced(10)
                doc = ProjectDoc.create(project, client.doc)
                op = doc.add_operation("Train", TRAIN)
                await client.flush(10)
                await wait_commits(relay.url, project, 1)
                path = f"projects/{project}"
                assert (await api(relay.url, "POST", f"{path}/branches", body={"name": "exp"}))[
                    0
                ] == 201
                assert (await api(relay.url, "POST", f"{path}/tags", body={"name": "v1"}))[0] == 201
                first = (await log(relay.url, project))[0]
                doc.rename(op, "Fit")
                await client.flush(10)
            # Stopped before the debounce ran out: shutdown commits what is pending.
        async with start_relay(tmp_path) as relay:
            after = await log(relay.url, project)
            assert [c["message"] for c in after] == [
                "Renamed operation Train → Fit",
                "Added operation Train",
            ]
            assert after[1] == first
            branches = (await api(relay.url, "GET", f"{path}/branches"))[1]["branches"]
            assert {b["name"]: b["head"] for b in branches} == {
                "exp": first["id"],
                "main": after[0]["id"],
            }
            tags = (await api(relay.url, "GET", f"{path}/tags"))[1]["tags"]
            assert [t["name"] for t in tags] == ["v1"]
            assert (await content(relay.url, project, "exp"))["operations"][op]["name"] == "Train"


    async def test_a_commit_that_fails_to_read_the_head_keeps_the_edits_pending(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        project = new_project()
        async with start_relay(tmp_path) as relay:
            history: History = relay.app[HISTORY]
            real_head = history.store.head
            failures = iter([True])

            def head_failing_once(*args: Any) -> Any:
                if next(failures, False):
                    raise sqlite3.OperationalError("database is locked")
                return real_head(*args)

            monkeypatch.setattr(history.store, "head", head_failing_once)
            client = SyncClient(room_url(relay.url, f"{project}/main"), token="alice")
            async with client:
                await client.synced(10)
                ProjectDoc.create(project, client.doc).add_operation("Train", TRAIN)
                await client.flush(10)
                with pytest.raises(sqlite3.OperationalError):  # before the debounce commits
                    await history.commit(project)
                # Still pending, with its author: the debounce commits it after all.
                commits = await wait_commits(relay.url, project, 1)
                assert commits[0]["authors"] == ["alice"]


class TestCli:
    async def test_log_show_tags_and_errors(
        self, server: RelayServer, connect: Connect, capsys: pytest.CaptureFixture[str]
    ):
        project = new_project()
        client, doc, ids = await seeded(connect, server.url, project)
        doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.001)
        await client.flush(10)
        await wait_commits(server.url, project, 2)
        opts = ["--server", server.url, "--token", "alice"]

        async def forge(*argv: str) -> tuple[int, str, str]:
            capsys.readouterr()
            code = await asyncio.to_thread(forge_main, [*argv, *opts])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, _ = await forge("log", project, "--json")
        assert code == 0
        listed = json.loads(out)
        assert listed[0]["message"] == ("Set Train.learning_rate 0.01 → 0.001 in pipeline cifar10")
        code, out, _ = await forge("log", project, "-n", "1")
        assert code == 0 and len(out.splitlines()) == 1 and "alice" in out
        code, out, _ = await forge("show", project, listed[0]["short"])
        assert code == 0 and "Set Train.learning_rate 0.01 → 0.001" in out and "alice" in out
        code, out, _ = await forge("tag", project, "v1")
        assert code == 0 and "as v1" in out
        code, out, _ = await forge("tags", project, "--json")
        assert [t["name"] for t in json.loads(out)] == ["v1"]
        code, out, _ = await forge("branch", project, "exp", "--from", "v1")
        assert code == 0 and "created branch exp" in out
        code, out, _ = await forge("branches", project)
        assert code == 0 and "exp" in out and "main" in out
        code, out, _ = await forge("diff", project, listed[1]["id"], "v1")
        assert code == 0 and "Set Train.learning_rate 0.01 → 0.001" in out
        code, out, _ = await forge("revert", project, listed[1]["short"])
        assert code == 0 and "Reverted to" in out
        code, _, err = await forge("show", project, "nosuch")
        assert code == 1 and "unknown commit, branch or tag 'nosuch'" in err
        code, _, err = await forge("merge", project, "exp", "--into", "exp")
        assert code == 1 and "into itself" in err
