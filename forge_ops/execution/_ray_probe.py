"""Checks that each kind of node of a Ray cluster can run Forge's jobs: a probe task per node
type imports the job runtime and writes, reads and deletes an object in the artifact store, so
a missing package, endpoint or credential shows up as one line at start, not as a traceback in
the first job."""

from __future__ import annotations

from typing import Any

from ._store_access import one_line, store_failure

#: How long the probes of every node type may take together (a new worker imports torch).
PROBE_SECONDS = 120.0


def _probe(location: str) -> str:
    """On a node: what a job needs there."""
    import forge_ops.runtime  # noqa: F401 - the job runtime (torch and friends) imports
    from forge_ops.execution._store_access import probe_store

    probe_store(location)
    return "ok"


def node_type(node: dict[str, Any]) -> tuple[str, ...]:
    """What tells nodes apart for jobs: their custom resources and whether they have GPUs."""
    resources = node.get("Resources", {})
    kinds = sorted(name for name in resources
                   if not name.startswith("node:") and name not in
                   ("CPU", "memory", "object_store_memory", "GPU"))
    return ("gpu" if resources.get("GPU", 0) > 0 else "cpu", *kinds)


def probe_nodes(location: str, seconds: float = PROBE_SECONDS) -> list[str]:
    """One probe task on one node of each type; a line per type whose probe failed."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    types: dict[tuple[str, ...], dict[str, Any]] = {}
    for node in ray.nodes():
        if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0:
            types.setdefault(node_type(node), node)
    remote = ray.remote(num_cpus=0, max_retries=0)(_probe)
    refs = {kind: remote.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        name="forge:probe").remote(location) for kind, node in types.items()}
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=seconds)
    problems = []
    for kind, ref in refs.items():
        node = types[kind]
        where = f"node {node.get('NodeManagerAddress')} ({'+'.join(kind)})"
        if ref not in ready:
            problems.append(f"{where} did not answer a probe within {seconds:g} s")
            ray.cancel(ref, force=True)
            continue
        try:
            ray.get(ref)
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc
            reason = store_failure(cause, location) or one_line(cause)
            if isinstance(cause, ImportError):
                reason = (f"{one_line(cause)}; install Forge there with the store's extra "
                          "(pip install 'forge-workbench[s3]' for s3://)")
            problems.append(f"{where}: {reason}")
    return problems
