"""The history tables on their own: ids, references, ancestry, tags (real SQLite on disk)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from forge_server.history import Conflict, HistoryError, HistoryStore, NotFound


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    s = HistoryStore(tmp_path / "forge.db")
    yield s
    s.close()


def add(store: HistoryStore, branch: str, parents: tuple[str, ...], n: int, project: str = "p"):
    return store.add_commit(
        project,
        branch,
        parents=parents,
        authors=("alice",),
        message=f"change {n}",
        state=n.to_bytes(4, "big"),
        content={"n": n},
        created=1000.0 + n,
    )


class TestCommits:
    def test_id_is_a_content_hash(self, store: HistoryStore, tmp_path: Path) -> None:
        first = add(store, "main", (), 1)
        other = HistoryStore(tmp_path / "other.db")
        same = add(other, "main", (), 1)
        other.close()
        assert first.id == same.id and len(first.id) == 40
        assert add(store, "main", (first.id,), 2).id != first.id

    def test_head_content_and_state(self, store: HistoryStore) -> None:
        first = add(store, "main", (), 1)
        second = add(store, "main", (first.id,), 2)
        head = store.head("p", "main")
        assert head == second
        assert store.content(first.id) == {"n": 1}
        assert store.state(second.id) == (2).to_bytes(4, "big")

    def test_ancestors_follow_both_parents_newest_first(self, store: HistoryStore) -> None:
        base = add(store, "main", (), 1)
        side = add(store, "exp", (base.id,), 2)
        main = add(store, "main", (base.id,), 3)
        merge = add(store, "main", (main.id, side.id), 4)
        order = [c.message for c in store.ancestors("p", merge.id)]
        assert order == ["change 4", "change 3", "change 2", "change 1"]
        assert store.is_ancestor("p", side.id, merge.id)
        assert not store.is_ancestor("p", merge.id, side.id)

    def test_projects_are_separate(self, store: HistoryStore) -> None:
        commit = add(store, "main", (), 1, project="p")
        assert store.get("q", commit.id) is None
        with pytest.raises(NotFound):
            store.resolve("q", commit.id)


class TestReferences:
    def test_prefix_branch_and_tag(self, store: HistoryStore) -> None:
        first = add(store, "main", (), 1)
        second = add(store, "main", (first.id,), 2)
        store.add_tag("p", "run/ex1", first.id, "alice")
        assert store.resolve("p", first.id[:6]) == first
        assert store.resolve("p", "main") == second
        assert store.resolve("p", "run/ex1") == first

    def test_ambiguous_prefix_says_so(self, store: HistoryStore) -> None:
        seen: dict[str, str] = {}
        n = 0
        while True:  # deterministic ids; two share 4 hex digits after a few hundred
            n += 1
            commit = add(store, "main", (), n)
            if commit.id[:4] in seen:
                break
            seen[commit.id[:4]] = commit.id
        with pytest.raises(HistoryError, match="ambiguous"):
            store.resolve("p", commit.id[:4])
        assert store.resolve("p", commit.id[:12]) == commit

    def test_unknown_names_suggest_the_nearest(self, store: HistoryStore) -> None:
        first = add(store, "main", (), 1)
        store.add_tag("p", "baseline", first.id, None)
        with pytest.raises(NotFound, match="did you mean 'baseline'"):
            store.resolve("p", "baselin")
        with pytest.raises(NotFound, match="forge log p"):
            store.resolve("p", "zzzzzzzz")

    def test_tags_are_never_moved(self, store: HistoryStore) -> None:
        first = add(store, "main", (), 1)
        second = add(store, "main", (first.id,), 2)
        store.add_tag("p", "v1", first.id, "alice")
        assert store.add_tag("p", "v1", first.id, "bob").by == "alice"
        with pytest.raises(Conflict, match="already names commit"):
            store.add_tag("p", "v1", second.id, "bob")
        with pytest.raises(HistoryError, match="invalid tag name"):
            store.add_tag("p", "../x", first.id, None)
        assert store.resolve("p", "v1") == first

    def test_branch_names_are_unique(self, store: HistoryStore) -> None:
        first = add(store, "main", (), 1)
        store.add_branch("p", "exp", first.id)
        with pytest.raises(Conflict, match="already exists"):
            store.add_branch("p", "exp", first.id)
        assert [b.name for b in store.branches("p")] == ["exp", "main"]


class TestStoreThread:
    async def test_run_works_on_the_store_thread_off_the_loop(self, store: HistoryStore) -> None:
        first = add(store, "main", (), 1)
        thread = await store.run(lambda: threading.current_thread().name)
        assert thread.startswith("forge-history") and thread != threading.current_thread().name
        assert await store.run(store.head, "p", "main") == first
        with pytest.raises(NotFound):
            await store.run(store.resolve, "p", "zzzz")
