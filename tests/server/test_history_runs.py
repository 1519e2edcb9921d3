"""What the history says about runs and code: a run adds at most one commit and its tag (the
server's bookkeeping of statuses and artifacts makes no commits of its own), and a code edit
that changes an operation's interface says so in its message."""

from __future__ import annotations

from forge_server.history import HISTORY, History
from forge_server.relay.server import RelayServer
from tests.server import test_history as history_tests
from tests.server.test_history import Connect, log, new_project, seeded, settle, wait_commits

# The history tests' relay and clients (fixtures), shared rather than started again.
server = history_tests.server
connect = history_tests.connect

FLIPS = "def random_flips(data: Dataset, p: float = 0.5) -> Dataset:\n    return data\n"
FLIPS_MASKED = (
    "def random_flips(data: Dataset, mask: Dataset, p: float = 0.5) -> Dataset:\n"
    "    return data\n"
)


async def test_a_run_adds_at_most_one_commit_and_its_tag(
    server: RelayServer, connect: Connect
) -> None:
    project = new_project()
    client, doc, ids = await seeded(connect, server.url, project)
    history: History = server.app[HISTORY]
    for number in (1, 2):  # the second run has no edits in between: it tags the same head
        execution = f"run-{number}"
        await history.commit_and_tag_run(project, "main", execution, by="alice")
        # What the coordinator writes while it runs, each write debounced like an edit.
        doc.record_execution(ids["pipe"], None, "alice", execution_id=execution)
        await client.flush(10)
        await settle()
        for status in ("running", "succeeded"):
            doc.set_execution_status(execution, status)
            await client.flush(10)
            await settle()
        doc.record_artifact(f"model-{number}", "ab" * 32, "model", produced_by=execution)
        await client.flush(10)
        await settle()
    commits = await log(server.url, project)
    assert len(commits) == 1, [c["message"] for c in commits]
    tags = {t.name: t.commit for t in await history.store.run(history.store.tags, project)}
    assert tags == {"run/run-1": commits[0]["id"], "run/run-2": commits[0]["id"]}
    # The next edit commits, named for the edit alone; the runs' records ride along.
    doc.set_attribute(ids["pipe"], ids["node"], "learning_rate", 0.003)
    await client.flush(10)
    commits = await wait_commits(server.url, project, 2)
    assert commits[0]["message"] == "Set Train.learning_rate 0.01 → 0.003 in pipeline cifar10"


async def test_code_commits_name_interface_changes(server: RelayServer, connect: Connect) -> None:
    project = new_project()
    client, doc, _ = await seeded(connect, server.url, project)
    flips = doc.add_operation("RandomFlips", FLIPS)
    await client.flush(10)
    await wait_commits(server.url, project, 2)
    doc.set_code(flips, FLIPS_MASKED)
    await client.flush(10)
    commits = await wait_commits(server.url, project, 3)
    assert commits[0]["message"] == (
        "Added input mask: Dataset to RandomFlips (code +1 −1 lines)"
    )
