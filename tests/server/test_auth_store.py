"""The auth store and TokenAuthorizer on a real SQLite file (no relay needed)."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from forge_server.auth import (
    AuthStore,
    AuthStoreError,
    InvalidName,
    ProjectCreators,
    ProjectExists,
    TokenAuthorizer,
    TokenStatus,
    UnknownToken,
    UnknownUser,
    UserExists,
    ensure_initial_owner,
    parse_duration,
)
from forge_server.credentials import load_stored
from forge_server.principal import Forbidden, Role, Unauthenticated, UnknownProject, authorize


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[AuthStore]:
    s = AuthStore.open(tmp_path, clock=clock)
    yield s
    s.close()


class TestUsers:
    def test_add_list_remove(self, store: AuthStore) -> None:
        store.add_user("alice")
        store.add_user("bob", admin=True)
        assert [(u.name, u.admin) for u in store.list_users()] == [
            ("alice", False),
            ("bob", True),
        ]
        store.remove_user("alice")
        assert [u.name for u in store.list_users()] == ["bob"]

    def test_duplicate_and_invalid_names(self, store: AuthStore) -> None:
        store.add_user("alice")
        with pytest.raises(UserExists, match="already exists"):
            store.add_user("alice")
        for bad in ["", "-x", "a b", "a/b", "é", "x" * 65]:
            with pytest.raises(InvalidName, match="invalid user name"):
                store.add_user(bad)

    def test_unknown_user_errors_say_what_to_do(self, store: AuthStore) -> None:
        with pytest.raises(UnknownUser, match="forge user add"):
            store.grant("ghost", "p", "reader")
        with pytest.raises(UnknownUser):
            store.create_token("ghost")
        with pytest.raises(UnknownUser):
            store.remove_user("ghost")

    def test_removing_a_user_removes_their_tokens_and_roles(self, store: AuthStore) -> None:
        store.add_user("alice")
        token, _ = store.create_token("alice")
        store.grant("alice", "proj", "writer")
        store.remove_user("alice")
        assert store.check_token(token).status is TokenStatus.UNKNOWN
        assert store.members("proj") == []
        assert store.list_tokens() == []


class TestTokens:
    def test_token_is_long_random_and_stored_only_as_hash(
        self, store: AuthStore, tmp_path: Path
    ) -> None:
        store.add_user("alice")
        tokens = {store.create_token("alice")[0] for _ in range(20)}
        assert len(tokens) == 20
        for token in tokens:
            secret = token.split("_", 2)[2]
            assert len(secret) >= 43  # 256 bits in urlsafe base64
            assert store.check_token(token).user == "alice"
        raw = (tmp_path / "forge.db").read_bytes()
        wal = tmp_path / "forge.db-wal"
        if wal.exists():
            raw += wal.read_bytes()
        for token in tokens:
            assert token.split("_", 2)[2].encode() not in raw

    def test_wrong_secret_same_id_is_refused(self, store: AuthStore) -> None:
        store.add_user("alice")
        token, info = store.create_token("alice")
        secret = token.split("_", 2)[2]
        forged = token[: -len(secret)] + ("A" if secret[0] != "A" else "B") + secret[1:]
        assert store.check_token(forged).status is TokenStatus.UNKNOWN
        assert store.check_token(f"forge_{info.token_id}_").status is TokenStatus.MALFORMED
        assert store.check_token("garbage").status is TokenStatus.MALFORMED
        assert store.check_token(None).status is TokenStatus.MALFORMED
        assert store.check_token("").status is TokenStatus.MALFORMED

    def test_expiry(self, store: AuthStore, clock: Clock) -> None:
        store.add_user("alice")
        token, info = store.create_token("alice", expires_in=timedelta(days=30))
        assert info.expires == clock.now + 30 * 86400
        clock.now += 30 * 86400 - 1
        assert store.check_token(token).status is TokenStatus.OK
        clock.now += 1
        assert store.check_token(token).status is TokenStatus.EXPIRED
        assert store.list_tokens()[0].state(clock.now) == "expired"
        with pytest.raises(AuthStoreError, match="positive"):
            store.create_token("alice", expires_in=timedelta(0))

    def test_revoke_by_id_and_by_user(self, store: AuthStore) -> None:
        store.add_user("alice")
        t1, i1 = store.create_token("alice")
        t2, _ = store.create_token("alice")
        t3, _ = store.create_token("alice")
        assert store.revoke_token(i1.token_id).revoked is not None
        assert store.check_token(t1).status is TokenStatus.REVOKED
        assert store.check_token(t2).status is TokenStatus.OK
        assert store.revoke_user_tokens("alice") == 2
        assert {store.check_token(t).status for t in (t2, t3)} == {TokenStatus.REVOKED}
        with pytest.raises(UnknownToken, match="forge token list"):
            store.revoke_token("0123456789ab")

    def test_revocation_seen_by_a_second_connection(self, tmp_path: Path) -> None:
        """The CLI and the server use separate connections to the same file."""
        with AuthStore.open(tmp_path) as server, AuthStore.open(tmp_path) as cli:
            cli.add_user("alice")
            token, info = cli.create_token("alice")
            assert server.check_token(token).status is TokenStatus.OK
            cli.revoke_token(info.token_id)
            assert server.check_token(token).status is TokenStatus.REVOKED


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 14 * 86400), ("1d12h", 129600)],
    )
    def test_valid(self, text: str, seconds: int) -> None:
        assert parse_duration(text).total_seconds() == seconds

    @pytest.mark.parametrize("text", ["", "30", "d", "0d", "-1d", "3x", "1d 2"])
    def test_invalid(self, text: str) -> None:
        with pytest.raises(AuthStoreError, match="invalid duration"):
            parse_duration(text)


class TestRoles:
    def test_grant_replace_revoke(self, store: AuthStore) -> None:
        store.add_user("alice")
        store.grant("alice", "proj", "reader")
        assert store.role("alice", "proj") is Role.READER
        store.grant("alice", "proj", Role.WRITER)
        assert store.role("alice", "proj") is Role.WRITER
        assert store.role("alice", "other") is None
        assert store.revoke_role("alice", "proj") is True
        assert store.revoke_role("alice", "proj") is False
        assert store.role("alice", "proj") is None
        with pytest.raises(AuthStoreError, match="owner, writer, reader"):
            store.grant("alice", "proj", "admin")
        with pytest.raises(InvalidName, match="project"):
            store.grant("alice", "a/b", "reader")

    def test_admin_owns_everything(self, store: AuthStore) -> None:
        store.add_user("root", admin=True)
        assert store.role("root", "anything") is Role.OWNER
        assert store.role("nobody", "anything") is None

    def test_creating_a_project_makes_the_creator_owner(self, store: AuthStore) -> None:
        store.add_user("alice")
        store.add_user("bob")
        store.create_project("proj", "alice")
        assert store.role("alice", "proj") is Role.OWNER
        with pytest.raises(ProjectExists, match="ask one of its owners"):
            store.create_project("proj", "bob")
        assert store.role("bob", "proj") is None


class TestTokenAuthorizer:
    async def test_outcomes(self, store: AuthStore, clock: Clock) -> None:
        auth = TokenAuthorizer(store)
        store.add_user("alice")
        store.add_user("bob")
        store.create_project("proj", "alice")
        store.grant("bob", "proj", "reader")
        alice, _ = store.create_token("alice")
        bob, _ = store.create_token("bob", expires_in=timedelta(hours=1))
        assert await authorize(auth, alice, "proj") == authorize_result("alice", Role.OWNER)
        assert (await authorize(auth, bob, "proj")).role is Role.READER
        for token, reason in [
            (None, "missing"),
            ("nope", "malformed"),
            ("forge_" + "0" * 12 + "_" + "A" * 43, "unknown"),
        ]:
            with pytest.raises(Unauthenticated, match=reason):
                await authorize(auth, token, "proj")
        clock.now += 3600
        with pytest.raises(Unauthenticated, match="expired"):
            await authorize(auth, bob, "proj")
        store.revoke_user_tokens("alice")
        with pytest.raises(Unauthenticated, match="revoked"):
            await authorize(auth, alice, "proj")
        assert auth.refused == 5

    async def test_checks_run_on_the_store_thread_off_the_loop(self, store: AuthStore) -> None:
        seen: list[str] = []
        check_token = store.check_token

        def spy(token: str | None) -> object:
            seen.append(threading.current_thread().name)
            return check_token(token)

        store.check_token = spy  # type: ignore[method-assign]
        with pytest.raises(Unauthenticated):
            await TokenAuthorizer(store).authenticate("nope")
        assert seen and seen[0].startswith("forge-auth")

    async def test_no_role_on_existing_project_is_forbidden(self, store: AuthStore) -> None:
        auth = TokenAuthorizer(store)
        store.add_user("alice")
        store.add_user("eve")
        store.create_project("proj", "alice")
        eve, _ = store.create_token("eve")
        with pytest.raises(Forbidden, match="no role"):
            await authorize(auth, eve, "proj")

    async def test_asking_about_an_unknown_project_claims_nothing(self, store: AuthStore) -> None:
        """Reads never create state: an unknown project is 404 for every user, the
        administrator included, and asking leaves the auth tables unchanged."""
        auth = TokenAuthorizer(store)
        store.add_user("alice")
        store.add_user("root", admin=True)
        alice, _ = store.create_token("alice")
        admin, _ = store.create_token("root")
        for token in (alice, admin):
            with pytest.raises(UnknownProject, match="no project 'fresh'"):
                await authorize(auth, token, "fresh")
        assert not store.project_exists("fresh") and store.members("fresh") == []
        store.create_project("Vision", "alice")
        with pytest.raises(UnknownProject, match="did you mean 'Vision'"):
            await authorize(auth, alice, "vision")

    async def test_creator_rule(self, store: AuthStore) -> None:
        store.add_user("alice")
        store.add_user("carol", creator=True)
        store.add_user("root", admin=True)
        admins_only = TokenAuthorizer(store)
        assert [await admins_only.may_create_projects(u) for u in ("alice", "carol", "root")] == [
            False, True, True]
        store.set_creator("carol", False)
        store.set_creator("alice", True)
        assert await admins_only.may_create_projects("alice")
        assert not await admins_only.may_create_projects("carol")
        everyone = TokenAuthorizer(store, project_creators=ProjectCreators.EVERYONE)
        assert await everyone.may_create_projects("carol")
        with pytest.raises(UnknownUser):
            store.set_creator("nobody", True)

    async def test_tokens_never_logged(
        self, store: AuthStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        auth = TokenAuthorizer(store)
        store.add_user("alice")
        token, _ = store.create_token("alice")
        store.revoke_user_tokens("alice")
        caplog.set_level("DEBUG")
        with pytest.raises(Unauthenticated):
            await auth.authenticate(token)
        with pytest.raises(Unauthenticated):
            await auth.authenticate("forge_secretgarbage")
        assert "revoked" in caplog.text
        assert token.split("_", 2)[2] not in caplog.text
        assert "secretgarbage" not in caplog.text


def authorize_result(user: str, role: Role) -> object:
    from forge_server.principal import Principal

    return Principal(user=user, role=role)


class TestInitialOwner:
    def test_first_start_creates_admin_with_private_credentials(self, tmp_path: Path) -> None:
        with AuthStore.open(tmp_path) as store:
            path = ensure_initial_owner(store, tmp_path / "owner.json", "http://127.0.0.1:8700")
            assert path is not None
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            creds = load_stored(path)
            assert creds is not None and creds.server == "http://127.0.0.1:8700"
            check = store.check_token(creds.token)
            assert check.status is TokenStatus.OK and check.user == "owner"
            assert store.role("owner", "any-project") is Role.OWNER
            # second start: nothing new
            assert ensure_initial_owner(store, tmp_path / "o2.json", "http://x:1") is None
            assert len(store.list_users()) == 1


def test_concurrent_writers_do_not_fail(tmp_path: Path) -> None:
    """Two connections writing at once (server + CLI) wait for each other instead of erroring."""
    import threading

    errors: list[BaseException] = []

    def work(prefix: str) -> None:
        try:
            with AuthStore.open(tmp_path) as s:
                for i in range(30):
                    s.add_user(f"{prefix}{i}")
                    s.create_token(f"{prefix}{i}")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    AuthStore.open(tmp_path).close()
    threads = [threading.Thread(target=work, args=(p,)) for p in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with AuthStore.open(tmp_path) as s:
        assert len(s.list_users()) == 60
