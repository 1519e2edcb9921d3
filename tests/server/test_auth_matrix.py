"""Who may do what, on a real relay with token auth, over real sockets.

Credentials {none, garbage, expired, revoked, no role, reader, writer, owner} × actions
{WebSocket sync, document update, awareness, HTTP API}; the table below is the expectation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from pycrdt import Doc, Text

from forge_server.auth import AuthStore, ProjectCreators, TokenAuthorizer
from forge_server.auth.routes import setup_auth_routes
from forge_server.projects import projects_setup
from forge_server.relay.app import AUTHORIZER, ROOMS, STATS
from forge_server.relay.config import RelayConfig
from forge_server.relay.protocol import (
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    Message,
    SyncMessage,
    SyncType,
    decode_awareness,
    decode_message,
    encode_awareness,
    encode_message,
)
from forge_server.relay.server import RelayServer
from tests.conftest import ws_refusal

PROJECT = "matrix"
SEED_TEXT = "seeded by the owner"

# What each credential may do: an HTTP status for refusals, else the role.
EXPECTED: dict[str, int | str] = {
    "none": 401,
    "garbage": 401,
    "expired": 401,
    "revoked": 401,
    "no_role": 403,
    "reader": "reader",
    "writer": "writer",
    "owner": "owner",
}
CREDENTIALS = list(EXPECTED)


@dataclass
class World:
    server: RelayServer
    store: AuthStore
    tokens: dict[str, str | None]

    def ws_url(self, branch: str) -> str:
        return self.server.ws_url(f"{PROJECT}/{branch}")

    def headers(self, cred: str) -> dict[str, str]:
        token = self.tokens[cred]
        return {"Authorization": f"Bearer {token}"} if token else {}

    def server_text(self, branch: str) -> str:
        room = self.server.app[ROOMS].loaded(f"{PROJECT}/{branch}")
        assert room is not None
        return str(room.doc.get("text", type=Text))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("auth-matrix")
    store = AuthStore.open(data_dir)
    for name in ("alice", "rita", "walt", "nora"):
        store.add_user(name)
    store.add_user("root", admin=True)
    store.add_user("carol", creator=True)
    store.create_project(PROJECT, "alice")
    store.grant("rita", PROJECT, "reader")
    store.grant("walt", PROJECT, "writer")
    revoked, info = store.create_token("walt")
    store.revoke_token(info.token_id)
    # A token that expired an hour ago: issued by a store whose clock runs two hours behind.
    with AuthStore.open(data_dir, clock=lambda: time.time() - 7200) as past:
        expired, _ = past.create_token("walt", expires_in=timedelta(hours=1))
    tokens: dict[str, str | None] = {
        "none": None,
        "garbage": "forge_not-a-real-token",
        "expired": expired,
        "revoked": revoked,
        "no_role": store.create_token("nora")[0],
        "reader": store.create_token("rita")[0],
        "writer": store.create_token("walt")[0],
        "owner": store.create_token("alice")[0],
        # Not in the role matrix: the two kinds of user who may create projects.
        "admin": store.create_token("root")[0],
        "creator": store.create_token("carol")[0],
    }
    config = RelayConfig(data_dir=data_dir)
    async with RelayServer(
        config, authorizer=TokenAuthorizer(store), setups=[setup_auth_routes, projects_setup]
    ) as server:
        yield World(server, store, tokens)
    store.close()


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def recv_until(
    ws: aiohttp.ClientWebSocketResponse, want: Callable[[Message], bool], timeout: float = 5.0
) -> Message:
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, (msg.type, msg.data, msg.extra)
            message = decode_message(msg.data)
            if want(message):
                return message


def is_sync(kind: SyncType) -> Callable[[Message], bool]:
    return lambda m: isinstance(m, SyncMessage) and m.kind == kind


async def seed(world: World, http: aiohttp.ClientSession, branch: str) -> None:
    """The owner writes SEED_TEXT into a fresh branch room."""
    doc = Doc()
    doc.get("text", type=Text).insert(0, SEED_TEXT)
    async with http.ws_connect(world.ws_url(branch), headers=world.headers("owner")) as ws:
        await ws.send_bytes(encode_message(SyncMessage(SyncType.UPDATE, doc.get_update())))
        await ws.send_bytes(encode_message(SyncMessage(SyncType.STEP1, b"\x00")))
        await recv_until(ws, is_sync(SyncType.STEP2))  # answered once the update is stored


async def refused(
    world: World, http: aiohttp.ClientSession, cred: str, branch: str, status: int
) -> None:
    code, _ = await ws_refusal(http, world.ws_url(branch), headers=world.headers(cred))
    assert code == 4000 + status  # 4401 / 4403: final, y-websocket clients stop retrying
    # The same refusal with a plain request shows the reason, and says what to do.
    response = await http.get(
        world.ws_url(branch).replace("ws", "http", 1), headers=world.headers(cred)
    )
    assert response.status == status
    reason = (await response.json())["error"]
    assert ("forge token create" in reason) if status == 401 else ("no role" in reason)


@pytest.mark.parametrize("cred", CREDENTIALS)
class TestAuthMatrix:
    async def test_websocket_sync(
        self, world: World, http: aiohttp.ClientSession, cred: str
    ) -> None:
        branch = f"sync-{cred}"
        await seed(world, http, branch)
        expected = EXPECTED[cred]
        if isinstance(expected, int):
            await refused(world, http, cred, branch, expected)
            return
        async with http.ws_connect(world.ws_url(branch), headers=world.headers(cred)) as ws:
            await ws.send_bytes(encode_message(SyncMessage(SyncType.STEP1, b"\x00")))
            step2 = await recv_until(ws, is_sync(SyncType.STEP2))
            assert isinstance(step2, SyncMessage)
            doc = Doc()
            doc.apply_update(step2.payload)
            assert str(doc.get("text", type=Text)) == SEED_TEXT

    async def test_document_update(
        self, world: World, http: aiohttp.ClientSession, cred: str
    ) -> None:
        branch = f"update-{cred}"
        await seed(world, http, branch)
        expected = EXPECTED[cred]
        if isinstance(expected, int):
            await refused(world, http, cred, branch, expected)
            assert world.server_text(branch) == SEED_TEXT
            return
        stats = world.server.app[STATS]
        refused_before = stats.refused_updates
        async with (
            http.ws_connect(world.ws_url(branch), headers=world.headers("owner")) as watcher,
            http.ws_connect(world.ws_url(branch), headers=world.headers(cred)) as ws,
        ):
            await ws.send_bytes(encode_message(SyncMessage(SyncType.STEP1, b"\x00")))
            step2 = await recv_until(ws, is_sync(SyncType.STEP2))
            assert isinstance(step2, SyncMessage)
            doc = Doc()
            doc.apply_update(step2.payload)
            before = doc.get_state()
            doc.get("text", type=Text).insert(0, f"{cred} was here; ")
            edit = doc.get_update(before)
            # both ways a client sends edits: an update, and a sync step 2
            await ws.send_bytes(encode_message(SyncMessage(SyncType.UPDATE, edit)))
            await ws.send_bytes(encode_message(SyncMessage(SyncType.STEP2, edit)))
            if expected == "reader":
                for _ in range(2):
                    denied = await recv_until(ws, lambda m: isinstance(m, AuthMessage))
                    assert isinstance(denied, AuthMessage)
                    assert "permission denied" in denied.reason
                assert stats.refused_updates == refused_before + 2
                await ws.send_bytes(encode_message(SyncMessage(SyncType.STEP1, b"\x00")))
                await recv_until(ws, is_sync(SyncType.STEP2))
                assert world.server_text(branch) == SEED_TEXT
                with pytest.raises(TimeoutError):  # nobody else saw anything
                    await recv_until(watcher, is_sync(SyncType.UPDATE), timeout=0.3)
            else:
                seen = await recv_until(watcher, is_sync(SyncType.UPDATE))
                assert isinstance(seen, SyncMessage) and seen.payload == edit
                assert world.server_text(branch) == f"{cred} was here; {SEED_TEXT}"
                assert stats.refused_updates == refused_before

    async def test_awareness(self, world: World, http: aiohttp.ClientSession, cred: str) -> None:
        branch = f"awareness-{cred}"
        expected = EXPECTED[cred]
        if isinstance(expected, int):
            await refused(world, http, cred, branch, expected)
            return
        client_id = 1000 + CREDENTIALS.index(cred)
        state = json.dumps({"user": {"name": cred}})
        async with (
            http.ws_connect(world.ws_url(branch), headers=world.headers("owner")) as watcher,
            http.ws_connect(world.ws_url(branch), headers=world.headers(cred)) as ws,
        ):
            # the watcher is surely joined once its step 1 is answered
            await watcher.send_bytes(encode_message(SyncMessage(SyncType.STEP1, b"\x00")))
            await recv_until(watcher, is_sync(SyncType.STEP2))
            entry = AwarenessEntry(client_id, 1, state)
            await ws.send_bytes(encode_message(AwarenessMessage(encode_awareness([entry]))))
            seen = await recv_until(watcher, lambda m: isinstance(m, AwarenessMessage))
            assert isinstance(seen, AwarenessMessage)
            # relayed under the token's account, whatever name the client gave
            account = {"reader": "rita", "writer": "walt", "owner": "alice"}[cred]
            bound = json.dumps({"user": {"name": account}}, separators=(",", ":"))
            assert decode_awareness(seen.payload) == [AwarenessEntry(client_id, 1, bound)]
            # and a reader sees others' presence too
            other = AwarenessEntry(999, 1, json.dumps({"user": {"name": "owner"}}))
            await watcher.send_bytes(encode_message(AwarenessMessage(encode_awareness([other]))))
            got = await recv_until(
                ws,
                lambda m: (
                    isinstance(m, AwarenessMessage)
                    and any(e.client_id == 999 for e in decode_awareness(m.payload))
                ),
            )
            assert isinstance(got, AwarenessMessage)

    async def test_http_api(self, world: World, http: aiohttp.ClientSession, cred: str) -> None:
        expected = EXPECTED[cred]
        headers = world.headers(cred)
        base = world.server.url
        members = f"{base}/api/auth/projects/{PROJECT}/members"
        r_members = await http.get(members, headers=headers)
        r_change = await http.put(f"{members}/nora", json={"role": "reader"}, headers=headers)
        r_projects = await http.get(f"{base}/api/projects", headers=headers)
        if isinstance(expected, int):
            assert r_members.status == expected
            assert r_change.status == expected
            assert r_projects.status == (401 if expected == 401 else 200)
            if expected == 403:
                names = [p["name"] for p in (await r_projects.json())["projects"]]
                assert PROJECT not in names
            assert world.store.role("nora", PROJECT) is None
            return
        assert r_members.status == 200
        assert (await r_members.json())["you"]["role"] == expected
        listed = {p["name"]: p["role"] for p in (await r_projects.json())["projects"]}
        assert listed.get(PROJECT) == expected
        if expected == "owner":
            assert r_change.status == 200
            assert world.store.role("nora", PROJECT) is not None
            world.store.revoke_role("nora", PROJECT)  # back to "no role" for the other tests
        else:
            assert r_change.status == 403
            assert world.store.role("nora", PROJECT) is None


async def test_token_in_query_parameter(world: World, http: aiohttp.ClientSession) -> None:
    """Clients that cannot set headers pass ?token=; the access log never shows it."""
    url = world.ws_url("query") + f"?token={world.tokens['writer']}"
    async with http.ws_connect(url) as ws:
        await ws.send_bytes(encode_message(SyncMessage(SyncType.STEP1, b"\x00")))
        await recv_until(ws, is_sync(SyncType.STEP2))
    bad = world.ws_url("query") + f"?token={world.tokens['revoked']}"
    assert (await ws_refusal(http, bad))[0] == 4401


async def test_revocation_applies_to_the_next_connection(
    world: World, http: aiohttp.ClientSession
) -> None:
    world.store.add_user("temp")
    world.store.grant("temp", PROJECT, "writer")
    token, info = world.store.create_token("temp")
    headers = {"Authorization": f"Bearer {token}"}
    async with http.ws_connect(world.ws_url("revoke"), headers=headers):
        pass
    world.store.revoke_token(info.token_id)
    assert (await ws_refusal(http, world.ws_url("revoke"), headers=headers))[0] == 4401


# Who may create a project under `--project-creators admins` (the default): an HTTP status.
CREATE_EXPECTED: dict[str, int] = {
    "none": 401, "garbage": 401, "expired": 401, "revoked": 401,
    "no_role": 403, "reader": 403, "writer": 403, "owner": 403,  # roles elsewhere grant nothing
    "admin": 201, "creator": 201,
}


@pytest.mark.parametrize("route", ["/api/projects", "/api/auth/projects"])
@pytest.mark.parametrize("cred", list(CREATE_EXPECTED))
async def test_who_may_create_projects(
    world: World, http: aiohttp.ClientSession, cred: str, route: str
) -> None:
    name = f"new-{cred}-{route.count('/')}"
    response = await http.post(
        world.server.url + route, json={"name": name}, headers=world.headers(cred)
    )
    assert response.status == CREATE_EXPECTED[cred], await response.text()
    if response.status == 403:
        assert "may not create projects" in (await response.json())["error"]
    created = response.status == 201
    assert world.store.project_exists(name) is created
    has_rooms = bool(world.server.app[ROOMS].project_rooms(name))
    assert has_rooms is (created and route == "/api/projects")


async def test_everyone_may_create_projects_when_the_server_says_so(
    world: World, http: aiohttp.ClientSession
) -> None:
    authorizer = world.server.app[AUTHORIZER]
    assert isinstance(authorizer, TokenAuthorizer)
    authorizer.project_creators = ProjectCreators.EVERYONE
    try:
        response = await http.post(f"{world.server.url}/api/projects",
                                   json={"name": "readers-own"}, headers=world.headers("reader"))
    finally:
        authorizer.project_creators = ProjectCreators.ADMINS
    assert response.status == 201
    assert world.store.role("rita", "readers-own") == "owner"


@pytest.mark.parametrize("cred", ["no_role", "reader", "admin"])
async def test_reads_of_an_unknown_project_are_404_and_write_nothing(
    world: World, http: aiohttp.ClientSession, cred: str
) -> None:
    """Opening or reading a name never claims it, whoever asks."""
    headers = world.headers(cred)
    before = _auth_tables(world)
    code, reason = await ws_refusal(http, world.server.ws_url("ghost/main"), headers=headers)
    assert code == 4404 and "no project 'ghost'" in reason
    for path in ("auth/projects/ghost/members",):  # history and executions: test_projects.py
        response = await http.get(f"{world.server.url}/api/{path}", headers=headers)
        assert response.status == 404, path
        assert "no project 'ghost'" in (await response.json())["error"]
    assert _auth_tables(world) == before
    assert world.server.app[ROOMS].project_rooms("ghost") == []
    names = [p["name"] for p in (await (await http.get(
        f"{world.server.url}/api/projects", headers=headers)).json())["projects"]]
    assert "ghost" not in names


def _auth_tables(world: World) -> tuple[object, ...]:
    return (world.store.project_exists("ghost"), world.store.members("ghost"),
            [(u.name, u.roles) for u in world.store.list_users()])


async def test_a_project_with_rooms_but_no_roles_is_not_claimed(
    world: World, http: aiohttp.ClientSession
) -> None:
    """Rooms written before auth was on belong to no one: only administrators may open them
    until someone is granted a role."""
    doc = Doc()
    doc.get("text", type=Text).insert(0, "old work")
    await world.server.app[ROOMS].create("legacy/main", doc.get_update())
    async with http.ws_connect(world.server.ws_url("legacy/main"),
                               headers=world.headers("admin")) as ws:
        await ws.send_bytes(encode_message(SyncMessage(SyncType.STEP1, b"\x00")))
        await recv_until(ws, is_sync(SyncType.STEP2))
    refusal = await ws_refusal(http, world.server.ws_url("legacy/main"),
                               headers=world.headers("no_role"))
    assert refusal[0] == 4403
    assert world.store.role("nora", "legacy") is None


async def test_an_encoded_newline_in_a_path_cannot_forge_a_log_line(
    world: World, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    await http.get(f"{world.server.url}/api/executions/x%0Aforged%20line%00",
                   headers=world.headers("owner"))
    logged = [r.getMessage() for r in caplog.records if "x%0Aforged" in r.getMessage()]
    assert len(logged) == 1 and "\n" not in logged[0] and "\0" not in logged[0]


async def test_tokens_never_reach_the_logs(
    world: World, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    secrets_used = [t for t in world.tokens.values() if t]
    for cred in CREDENTIALS:
        token = world.tokens[cred]
        for url in (world.ws_url("logs"), world.ws_url("logs") + f"?token={token}"):
            with contextlib.suppress(aiohttp.WSServerHandshakeError):
                ws = await http.ws_connect(url, headers=world.headers(cred))
                await ws.send_bytes(b"\xff\xff")  # malformed: logged with a warning
                await ws.receive()
                await ws.close()
        await http.get(f"{world.server.url}/api/projects?token={token}")
    assert "refused token" in caplog.text and "malformed" in caplog.text  # it did log
    for token in secrets_used:
        secret = token.split("_", 2)[-1]
        assert secret not in caplog.text
