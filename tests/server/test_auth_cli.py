"""`forge user`, `forge token`, `forge login` as a user runs them (through the CLI entry)."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forge_server.auth import AuthStore, TokenAuthorizer, TokenStatus
from forge_server.auth.routes import setup_auth_routes
from forge_server.relay.config import RelayConfig
from forge_server.relay.server import RelayServer
from forge_tui.cli import main
from forge_tui.cli.options import EXPOSED_OPTION_WARNING


def forge(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


class TestUserCommands:
    def test_add_grant_list_revoke(
        self, capsys: pytest.CaptureFixture[str], data_dir: Path
    ) -> None:
        dd = ("--data-dir", str(data_dir))
        assert forge(capsys, "user", "add", "alice", *dd)[0] == 0
        assert forge(capsys, "user", "add", "root", "--admin", *dd)[0] == 0
        code, out, _ = forge(capsys, "user", "grant", "alice", "proj", "writer", *dd)
        assert code == 0 and "alice is now writer of proj" in out
        code, out, _ = forge(capsys, "user", "list", *dd)
        assert "proj:writer" in out and "all projects (admin)" in out
        assert forge(capsys, "user", "revoke", "alice", "proj", *dd)[0] == 0
        with AuthStore.open(data_dir) as store:
            assert store.role("alice", "proj") is None
        code, _, err = forge(capsys, "user", "revoke", "alice", "proj", *dd)
        assert code == 1 and "no role on proj" in err

    def test_project_creators(self, capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
        dd = ("--data-dir", str(data_dir))
        code, out, _ = forge(capsys, "user", "add", "carol", "--creator", *dd)
        assert code == 0 and "created project creator carol" in out
        forge(capsys, "user", "add", "dave", *dd)
        assert "(may create projects)" in forge(capsys, "user", "list", *dd)[1]
        assert forge(capsys, "user", "creator", "dave", *dd)[0] == 0
        code, out, _ = forge(capsys, "user", "creator", "carol", "--off", *dd)
        assert code == 0 and "may no longer create projects" in out
        with AuthStore.open(data_dir) as store:
            assert store.may_create_projects("dave") and not store.may_create_projects("carol")
        code, _, err = forge(capsys, "user", "creator", "ghost", *dd)
        assert code == 1 and "no user named 'ghost'" in err

    def test_user_errors_are_one_line(
        self, capsys: pytest.CaptureFixture[str], data_dir: Path
    ) -> None:
        dd = ("--data-dir", str(data_dir))
        forge(capsys, "user", "add", "alice", *dd)
        code, _, err = forge(capsys, "user", "add", "alice", *dd)
        assert code == 1 and err.startswith("forge: error: user 'alice' already exists")
        code, _, err = forge(capsys, "user", "grant", "ghost", "proj", "reader", *dd)
        assert code == 1 and "forge user add" in err
        code, _, err = forge(capsys, "user", "add", "bad name", *dd)
        assert code == 1 and "invalid user name" in err
        code, _, err = forge(capsys, "user", "list", "--data-dir", str(data_dir / "missing"))
        assert code == 1 and "does not exist" in err
        assert not (data_dir / "missing").exists()

    def test_data_dir_from_environment(
        self, capsys: pytest.CaptureFixture[str], data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FORGE_DATA_DIR", str(data_dir))
        assert forge(capsys, "user", "add", "alice")[0] == 0
        with AuthStore.open(data_dir) as store:
            assert store.user_exists("alice")


class TestTokenCommands:
    def test_create_prints_token_once_list_never_shows_it(
        self, capsys: pytest.CaptureFixture[str], data_dir: Path
    ) -> None:
        dd = ("--data-dir", str(data_dir))
        forge(capsys, "user", "add", "alice", *dd)
        code, out, err = forge(capsys, "token", "create", "alice", "--expires", "30d", *dd)
        assert code == 0
        token = out.strip()
        assert "shown only this once" in err and "expires" in err
        with AuthStore.open(data_dir) as store:
            check = store.check_token(token)
            assert check.status is TokenStatus.OK and check.user == "alice"
            (info,) = store.list_tokens("alice")
            assert info.expires is not None
            assert abs(info.expires - info.created - 30 * 86400) < 1
        code, out, _ = forge(capsys, "token", "list", *dd)
        assert info.token_id in out and "active" in out
        assert token.split("_", 2)[2] not in out
        code, out, _ = forge(capsys, "token", "revoke", info.token_id, *dd)
        assert code == 0 and "revoked" in out
        code, out, _ = forge(capsys, "token", "list", "alice", *dd)
        assert "revoked" in out
        with AuthStore.open(data_dir) as store:
            assert store.check_token(token).status is TokenStatus.REVOKED

    def test_revoke_all_of_a_user_and_bad_input(
        self, capsys: pytest.CaptureFixture[str], data_dir: Path
    ) -> None:
        dd = ("--data-dir", str(data_dir))
        forge(capsys, "user", "add", "alice", *dd)
        forge(capsys, "token", "create", "alice", *dd)
        forge(capsys, "token", "create", "alice", *dd)
        code, out, _ = forge(capsys, "token", "revoke", "--user", "alice", *dd)
        assert code == 0 and "revoked 2 token(s)" in out
        code, _, err = forge(capsys, "token", "create", "alice", "--expires", "soon", *dd)
        assert code == 1 and "invalid duration" in err
        code, _, err = forge(capsys, "token", "revoke", "ffffffffffff", *dd)
        assert code == 1 and "forge token list" in err
        code, _, err = forge(capsys, "token", "create", "ghost", *dd)
        assert code == 1 and "no user named 'ghost'" in err


@pytest.fixture
async def auth_server(data_dir: Path) -> AsyncIterator[tuple[str, AuthStore]]:
    """A real relay on a free port with token auth and the membership API."""
    store = AuthStore.open(data_dir)
    async with RelayServer(
        RelayConfig(data_dir=data_dir),
        authorizer=TokenAuthorizer(store),
        setups=[setup_auth_routes],
    ) as server:
        yield server.url, store
    store.close()


class TestLogin:
    async def test_login_verifies_and_stores_0600(
        self,
        capsys: pytest.CaptureFixture[str],
        auth_server: tuple[str, AuthStore],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        url, store = auth_server
        monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
        store.add_user("alice")
        token, _ = store.create_token("alice")
        code = await asyncio.to_thread(main, ["login", url + "/", token])
        out, _ = capsys.readouterr()
        assert code == 0 and "as alice" in out
        path = tmp_path / "config" / "credentials.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(path.read_text()) == {"server": url, "token": token}
        from forge_server.credentials import resolve

        monkeypatch.delenv("FORGE_SERVER", raising=False)
        monkeypatch.delenv("FORGE_TOKEN", raising=False)
        assert resolve().token == token and resolve().server == url
        assert await asyncio.to_thread(main, ["logout"]) == 0
        assert json.loads(path.read_text()) == {"server": url, "token": None}

    async def test_login_refuses_bad_token_and_stores_nothing(
        self,
        capsys: pytest.CaptureFixture[str],
        auth_server: tuple[str, AuthStore],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        url, store = auth_server
        monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
        store.add_user("alice")
        token, info = store.create_token("alice")
        store.revoke_token(info.token_id)
        code = await asyncio.to_thread(main, ["login", url, token])
        _, err = capsys.readouterr()
        assert code == 1 and "refused the token: token revoked" in err
        assert not (tmp_path / "config" / "credentials.json").exists()
        code = await asyncio.to_thread(main, ["login", "ftp://x", token])
        assert code == 1
        # unreachable server: clear error, but --no-verify stores anyway
        code = await asyncio.to_thread(main, ["login", "http://127.0.0.1:9", token])
        _, err = capsys.readouterr()
        assert code == 1 and "--no-verify" in err
        code = await asyncio.to_thread(main, ["login", "http://127.0.0.1:9", token, "--no-verify"])
        assert code == 0


class TestMembershipApi:
    async def test_owner_manages_members_others_cannot(
        self, auth_server: tuple[str, AuthStore]
    ) -> None:
        import aiohttp

        url, store = auth_server
        for name in ("alice", "bob", "carol"):
            store.add_user(name, creator=name != "bob")
        alice = {"Authorization": f"Bearer {store.create_token('alice')[0]}"}
        bob_token = store.create_token("bob")[0]
        carol = {"Authorization": f"Bearer {store.create_token('carol')[0]}"}
        async with aiohttp.ClientSession() as http:
            r = await http.post(f"{url}/api/auth/projects", json={"name": "proj"}, headers=alice)
            assert r.status == 201 and (await r.json())["role"] == "owner"
            r = await http.post(f"{url}/api/auth/projects", json={"name": "proj"}, headers=carol)
            assert r.status == 409
            members = f"{url}/api/auth/projects/proj/members"
            r = await http.put(f"{members}/bob", json={"role": "writer"}, headers=alice)
            assert r.status == 200
            # bob via query parameter (clients that cannot set headers)
            r = await http.get(members, params={"token": bob_token})
            body = await r.json()
            assert r.status == 200 and body["you"] == {"user": "bob", "role": "writer"}
            r = await http.put(
                f"{members}/carol", json={"role": "owner"}, params={"token": bob_token}
            )
            assert r.status == 403 and "only owners" in (await r.json())["error"]
            r = await http.get(members, headers=carol)
            assert r.status == 403
            r = await http.get(members)
            assert r.status == 401
            r = await http.put(f"{members}/bob", data=b"not json", headers=alice)
            assert r.status == 400 and "JSON body" in (await r.json())["error"]
            r = await http.delete(f"{members}/alice", headers=alice)
            assert r.status == 400 and "last owner" in (await r.json())["error"]
            r = await http.delete(f"{members}/bob", headers=alice)
            assert r.status == 200 and store.role("bob", "proj") is None
            r = await http.get(f"{url}/api/auth/projects", headers=alice)
            assert (await r.json())["projects"] == [{"name": "proj", "role": "owner"}]
            r = await http.get(f"{url}/api/auth/whoami", headers=carol)
            assert (await r.json()) == {"user": "carol", "admin": False}


async def test_login_to_a_server_without_accounts_says_so(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    async with RelayServer(RelayConfig(data_dir=tmp_path / "d"), setups=[setup_auth_routes]) as s:
        code = await asyncio.to_thread(main, ["login", s.url, "forge_" + "0" * 12 + "_" + "A" * 43])
    _, err = capsys.readouterr()
    assert code == 1 and "--no-auth" in err
    assert not (tmp_path / "config" / "credentials.json").exists()


async def test_a_refused_token_says_how_forge_commands_send_one(
    capsys: pytest.CaptureFixture[str],
    auth_server: tuple[str, AuthStore],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, _ = auth_server
    monkeypatch.setenv("FORGE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("FORGE_TOKEN", raising=False)
    code = await asyncio.to_thread(main, ["project", "list", "--server", url,
                                          "--token", "forge_nope_nope"])
    _, err = capsys.readouterr()
    assert code == 1
    # The secret was on the command line, where every user of the machine can read it.
    warning, _, err = err.partition("\n")
    assert warning == EXPOSED_OPTION_WARNING
    assert err.startswith("forge: error: ") and err.rstrip().endswith(
        "forge commands send --token TOKEN, else $FORGE_TOKEN, else the token saved by "
        "`forge login URL TOKEN`")
    monkeypatch.setenv("FORGE_TOKEN", "forge_nope_nope")
    assert await asyncio.to_thread(main, ["project", "list", "--server", url]) == 1
    assert EXPOSED_OPTION_WARNING not in capsys.readouterr().err
