"""POST /api/projects (create, optionally from an example) and `forge project`, on a real relay
with token auth and version history, over real sockets."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from forge_ops.examples import PIPELINE_CIFAR10, PIPELINE_CUSTOM, PIPELINE_SYNTHETIC
from forge_ops.schema import ProjectDoc
from forge_server.auth import AuthStore, TokenAuthorizer
from forge_server.auth.routes import setup_auth_routes
from forge_server.client import open_document
from forge_server.history import HISTORY, HistoryConfig, history_setup
from forge_server.principal import Role
from forge_server.projects import projects_setup
from forge_server.relay.app import ROOMS
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.cli import main as forge_main

EXAMPLE_PIPELINES = sorted([PIPELINE_CIFAR10, PIPELINE_CUSTOM, PIPELINE_SYNTHETIC])


@dataclass
class World:
    server: RelayServer
    store: AuthStore
    tokens: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data_dir = tmp_path_factory.mktemp("projects")
    store = AuthStore.open(data_dir)
    tokens = {}
    for user in ("alice", "bob"):
        store.add_user(user, creator=True)  # the default rule lets only creators create
        tokens[user] = store.create_token(user)[0]
    store.add_user("rita")  # a plain user
    tokens["rita"] = store.create_token("rita")[0]
    setups = [
        setup_auth_routes,
        history_setup(HistoryConfig(debounce_s=30, max_interval_s=60)),
        projects_setup,
    ]
    async with RelayServer(
        RelayConfig(data_dir=data_dir), authorizer=TokenAuthorizer(store), setups=setups
    ) as server:
        yield World(server, store, tokens)
    store.close()


def fresh(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def post(
    world: World, user: str | None, body: Any, path: str = "/api/projects"
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {world.tokens[user]}"} if user else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(world.server.url + path, data=json.dumps(body), headers=headers) as response,
    ):
        return response.status, await response.json()


async def listing(world: World, user: str) -> list[str]:
    headers = {"Authorization": f"Bearer {world.tokens[user]}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(world.server.url + "/api/projects", headers=headers) as response,
    ):
        assert response.status == 200
        return [p["name"] for p in (await response.json())["projects"]]


class TestCreate:
    async def test_example_project_is_created_owned_and_committed(self, world: World) -> None:
        name = fresh("cifar")
        status, body = await post(world, "alice", {"name": name, "example": "cifar10"})
        assert status == 201
        assert body == {
            "name": name,
            "role": "owner",
            "created": True,
            "example": "cifar10",
            "branch": "main",
            "pipelines": EXAMPLE_PIPELINES,
        }
        assert world.store.role("alice", name) is Role.OWNER
        assert world.store.role("bob", name) is None
        assert name in await listing(world, "alice")
        assert name not in await listing(world, "bob")
        # A client joining the branch gets the whole example.
        async with open_document(world.server.url, world.tokens["alice"], f"{name}/main") as c:
            plain = ProjectDoc(c.doc).to_plain()
        assert plain["meta"]["name"] == name
        assert sorted(p["name"] for p in plain["pipelines"].values()) == EXAMPLE_PIPELINES
        # History starts with the creation, authored by the creator.
        commits = await world.server.app[HISTORY].log_page(name)
        assert [c.message for c in commits] == [f"Created project {name} from example cifar10"]
        assert commits[0].authors == ("alice",)

    async def test_plain_project_has_only_its_meta(self, world: World) -> None:
        name = fresh("empty")
        status, body = await post(world, "bob", {"name": name})
        assert (status, body["pipelines"], body["example"]) == (201, [], None)
        async with open_document(world.server.url, world.tokens["bob"], f"{name}/main") as c:
            plain = ProjectDoc(c.doc).to_plain()
        assert plain["meta"]["name"] == name
        assert plain["operations"] == {} and plain["pipelines"] == {}

    async def test_existing_project_conflicts_unless_exist_ok(self, world: World) -> None:
        name = fresh("dup")
        assert (await post(world, "alice", {"name": name, "example": "cifar10"}))[0] == 201
        status, body = await post(world, "alice", {"name": name, "example": "cifar10"})
        assert status == 409 and "already exists" in body["error"]
        status, body = await post(
            world, "alice", {"name": name, "example": "cifar10", "exist_ok": True}
        )
        assert status == 200
        assert (body["created"], body["role"], body["pipelines"]) == (
            False,
            "owner",
            EXAMPLE_PIPELINES,
        )
        # exist_ok never lets someone without a role in.
        status, body = await post(world, "bob", {"name": name, "exist_ok": True})
        assert status == 403 and "no role" in body["error"]
        # The document was not filled twice.
        assert len(await world.server.app[HISTORY].log_page(name)) == 1

    async def test_project_registered_without_content_is_filled_by_its_owner(
        self, world: World
    ) -> None:
        name = fresh("registered")
        status, _ = await post(world, "alice", {"name": name}, path="/api/auth/projects")
        assert status == 201
        status, body = await post(world, "bob", {"name": name, "example": "cifar10"})
        assert status == 409 and "ask one of its owners" in body["error"]
        status, body = await post(world, "alice", {"name": name, "example": "cifar10"})
        assert (status, body["pipelines"]) == (201, EXAMPLE_PIPELINES)

    async def test_a_writer_fills_a_recorded_project_without_being_a_creator(
        self, world: World
    ) -> None:
        name = fresh("recorded")
        assert (await post(world, "alice", {"name": name}, path="/api/auth/projects"))[0] == 201
        world.store.grant("rita", name, "writer")
        status, body = await post(world, "rita", {"name": name})
        assert (status, body["role"]) == (201, "writer")
        assert world.store.owners(name) == ["alice"]

    async def test_a_plain_user_cannot_create_and_nothing_is_written(self, world: World) -> None:
        name = fresh("refused")
        for path in ("/api/projects", "/api/auth/projects"):
            status, body = await post(world, "rita", {"name": name, "example": "cifar10"}, path)
            assert status == 403 and "forge user creator rita" in body["error"]
        assert not world.store.project_exists(name)
        assert world.server.app[ROOMS].project_rooms(name) == []
        assert name not in await listing(world, "rita")

    async def test_history_reads_of_an_unknown_project_are_404_and_claim_nothing(
        self, world: World
    ) -> None:
        name = fresh("ghost")
        headers = {"Authorization": f"Bearer {world.tokens['rita']}"}
        async with aiohttp.ClientSession() as http:
            for path in ("log", "branches", "tags", "members"):
                route = f"auth/projects/{name}/members" if path == "members" else (
                    f"projects/{name}/{path}")
                async with http.get(f"{world.server.url}/api/{route}", headers=headers) as r:
                    assert r.status == 404, route
                    assert f"no project {name!r}" in (await r.json())["error"]
        assert not world.store.project_exists(name) and world.store.members(name) == []
        assert world.server.app[ROOMS].project_rooms(name) == []
        # Once an administrator creates it, nobody else turns out to own it.
        assert (await post(world, "alice", {"name": name}))[0] == 201
        assert world.store.owners(name) == ["alice"]

    async def test_concurrent_creates_make_one_project(self, world: World) -> None:
        name = fresh("race")
        results = await asyncio.gather(
            *(post(world, user, {"name": name, "example": "cifar10"}) for user in ("alice", "bob"))
        )
        assert sorted(status for status, _ in results) == [201, 409]
        owner = next(user for (status, _), user in zip(results, ("alice", "bob"), strict=True)
                     if status == 201)
        assert world.store.owners(name) == [owner]


    async def test_names_that_differ_only_in_case_are_one_project(self, world: World) -> None:
        name = fresh("Case")
        assert (await post(world, "alice", {"name": name}))[0] == 201
        for other, user in ((name.lower(), "bob"), (name.upper(), "alice")):
            status, body = await post(world, user, {"name": other})
            assert status == 409 and f"project {name!r} already exists" in body["error"]
            assert not world.store.project_exists(other)
        # The account store refuses it too (a project registered through the membership API).
        status, body = await post(world, "bob", {"name": name.swapcase()},
                                  path="/api/auth/projects")
        assert status == 409 and "differ only in case" in body["error"]


class TestRefusals:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"name": "has space"}, "invalid project name"),
            ({"name": "../etc"}, "invalid project name"),
            ({"name": "ok-name."}, "not ending with '.'"),  # reads as "ok-name" elsewhere
            ({"name": "ok-name", "example": "mnist"}, "no example project 'mnist'; examples: "
                                                      "cifar10"),
            ({"name": "ok-name", "exist_ok": "yes"}, "'exist_ok' must be true or false"),
            ({"title": "x"}, 'send a JSON body like {"name"'),
            (["x"], 'send a JSON body like {"name"'),
        ],
    )
    async def test_bad_input_is_400_and_creates_nothing(
        self, world: World, body: Any, message: str
    ) -> None:
        status, answer = await post(world, "alice", body)
        assert status == 400
        assert message in answer["error"]
        assert "ok-name" not in await listing(world, "alice")
        assert not world.store.project_exists("ok-name")

    async def test_no_or_bad_token_is_401(self, world: World) -> None:
        name = fresh("anon")
        assert (await post(world, None, {"name": name}))[0] == 401
        world.tokens["mallory"] = "forge_garbage"
        assert (await post(world, "mallory", {"name": name}))[0] == 401
        assert not world.store.project_exists(name)


class TestCli:
    async def test_project_create_and_list(
        self,
        world: World,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path))  # no stored credentials
        monkeypatch.setenv("FORGE_SERVER", world.server.url)
        monkeypatch.setenv("FORGE_TOKEN", world.tokens["bob"])
        name = fresh("cli")

        def forge(*args: str) -> int:
            return forge_main(list(args))

        assert await asyncio.to_thread(forge, "project", "create", name, "--example",
                                       "cifar10") == 0
        out = capsys.readouterr().out
        assert f"Created project {name} from example cifar10 (your role: owner)" in out
        assert "train-synthetic" in out

        assert await asyncio.to_thread(forge, "project", "create", name) == 1
        assert "already exists" in capsys.readouterr().err
        assert await asyncio.to_thread(forge, "project", "create", name, "--exist-ok") == 0
        assert f"Found existing project {name}" in capsys.readouterr().out

        assert await asyncio.to_thread(forge, "project", "list") == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(name))
        assert "owner" in line and "branches: main" in line
        assert await asyncio.to_thread(forge, "project", "list", "--json") == 0
        projects = json.loads(capsys.readouterr().out)
        assert {"name": name, "role": "owner"}.items() <= next(
            p for p in projects if p["name"] == name
        ).items()

    async def test_unreachable_server_says_what_to_do(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path))
        code = await asyncio.to_thread(
            forge_main, ["project", "list", "--server", "http://127.0.0.1:9", "--token", "x"]
        )
        assert code == 1
        assert "cannot reach the Forge server at http://127.0.0.1:9" in capsys.readouterr().err


class TestWithoutAccounts:
    async def test_no_auth_server_creates_projects_too(self, tmp_path: Path) -> None:
        """`forge serve --no-auth`: no auth tables; the project is still created and filled."""
        async with (
            RelayServer(RelayConfig(data_dir=tmp_path), setups=[projects_setup]) as server,
            aiohttp.ClientSession() as http,
        ):
            async with http.post(
                server.url + "/api/projects", json={"name": "solo", "example": "cifar10"}
            ) as response:
                assert response.status == 201
                assert (await response.json())["role"] == "owner"
            async with open_document(server.url, None, "solo/main") as client:
                pipelines = ProjectDoc(client.doc).to_plain()["pipelines"]
            assert sorted(p["name"] for p in pipelines.values()) == EXAMPLE_PIPELINES
