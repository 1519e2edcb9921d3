"""Benchmark the terminal client: diagram layout + render time, and edit → visible latency.

    .venv/bin/python scripts/bench_tui.py                 # 10/100/300 nodes, 100 edits
    .venv/bin/python scripts/bench_tui.py --sizes 10 100 --edits 30
    .venv/bin/python scripts/bench_tui.py --architecture 100 300 500 --skip-latency
    .venv/bin/python scripts/bench_tui.py --only monitor list   # parts 3 and 4

1. Layout + render (``forge_tui.render.render_graph``: ranks, ordering, placement, routing and
   drawing into the character grid) of random layered DAGs, median of several runs. Baseline in
   the same run: grandalf's Sugiyama layout of the same graph (positions only: no routing, no
   drawing). Target: 100 nodes ≤ 50 ms.
   ``--architecture N ...``: an imported transformer's diagram instead (pre-norm blocks of
   attention and MLP with residual adds, size nodes and Parameter-free layers, as ``forge
   import`` makes of a ViT), from the project snapshot to the grid (``architecture_spec`` +
   ``render_graph``), median wall and CPU time. Target: 500 nodes ≤ 100 ms.
2. Edit → visible: two headless Forge apps on one real relay (loopback); client A renames a node,
   the time until client B's document has it and until B's diagram shows it; p50 / p95. Both
   apps share this process's event loop (each also redraws its own screen), which real users on
   separate processes do not. Baseline in the same run:
   the same edit between two bare sync clients (document to document, no UI). Target p95 ≤ 100 ms.
3. A job streaming 1,000 console lines and 1,000 plot points per second (a real job on a real
   ``forge serve --executor local`` in its own process) while the monitor is open at 80×24 in
   this process: frame time (the app's work for one screen update: the document change handled,
   then layout, widgets drawn and the update turned into terminal output) p50 / p95, and how old
   the newest console line on screen is when a frame is drawn (print in the job → on screen).
   Targets: frame p95 ≤ 50 ms, newest line on screen within 200 ms.
4. The executions list with 1,000 executions: from opening it to its first frame with every
   row. Baseline in the same run: a bare Textual DataTable given the same rows. Target ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from forge_tui.render import EdgeSpec, GraphSpec, NodeSpec, render_graph


def random_dag(n: int, seed: int = 1) -> GraphSpec:
    """Nodes with two inputs and two outputs, each fed from one of the 12 nodes before it."""
    rng = random.Random(seed)
    nodes, edges = [], []
    for i in range(n):
        nodes.append(
            NodeSpec(
                f"n{i}",
                f"Node{i}",
                "op",
                lines=(f"k={rng.randint(0, 99)}",) if rng.random() < 0.5 else (),
                inputs=("a", "b") if i else (),
                outputs=("x", "y"),
            )
        )
    for i in range(1, n):
        for port in ("a", "b"):
            if port == "a" or rng.random() < 0.4:
                j = rng.randrange(max(0, i - 12), i)
                edges.append(EdgeSpec(f"n{j}", rng.choice(("x", "y")), f"n{i}", port))
    return GraphSpec(tuple(nodes), tuple(edges))


def grandalf_layout(spec: GraphSpec) -> None:
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    class View:
        w, h = 20, 5

    vertices = {n.id: Vertex(n.id) for n in spec.nodes}
    for v in vertices.values():
        v.view = View()
    graph = Graph(
        list(vertices.values()), [Edge(vertices[e.src], vertices[e.dst]) for e in spec.edges]
    )
    for component in graph.C:
        layout = SugiyamaLayout(component)
        layout.init_all()
        layout.draw()


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def bench_render(sizes: list[int]) -> None:
    print("layout + render (median ms)      forge render_graph   grandalf Sugiyama (layout only)")
    for n in sizes:
        spec = random_dag(n)
        repeat = 7 if n <= 100 else 3
        ours = timed(lambda spec=spec: render_graph(spec), repeat)
        theirs = timed(lambda spec=spec: grandalf_layout(spec), repeat)
        rendered = render_graph(spec)
        print(
            f"  {n:4d} nodes ({len(spec.edges):4d} edges, {rendered.width}×{rendered.height} cells)"
            f"   {ours:8.1f}            {theirs:8.1f}"
        )


def transformer_architecture(n: int) -> dict[str, object]:
    """An architecture of about ``n`` layers shaped like an imported ViT."""
    layers: dict[str, dict[str, object]] = {}
    edges: dict[str, dict[str, object]] = {}

    def add(kind: str, name: str, *sources: str, **attributes: object) -> str:
        layer_id = f"l{len(layers):04d}"
        layers[layer_id] = {"type": kind, "name": name, "attributes": attributes}
        for index, source in enumerate(sources):
            edges[f"e{len(edges):05d}"] = {"src": source, "dst": layer_id, "index": index}
        return layer_id

    x = add("Input", "x")
    block = 0
    while len(layers) < n - 1:
        p = f"blocks.{block}."
        norm = add("LayerNorm", p + "norm1", x, normalized_shape=192, eps=1e-6)
        batch, tokens = add("size", "size", norm, dim=0), add("size", "size", norm, dim=1)
        qkv = add("Linear", p + "attn.qkv", norm, in_features=192, out_features=576)
        shape = [{"input": 1}, {"input": 2}, 3, 3, 64]
        heads = add("permute", "permute", add("reshape", "reshape", qkv, batch, tokens,
                                             shape=shape), dims=[2, 0, 3, 1, 4])
        parts = add("unbind", "unbind", heads)
        q, k, v = (add("getitem", "getitem", parts, index=i) for i in range(3))
        attention = add("scaled_dot_product_attention", "sdpa", q, k, v)
        merged = add("reshape", "reshape", add("transpose", "transpose", attention, dim0=1,
                                               dim1=2), batch, tokens,
                     shape=[{"input": 1}, {"input": 2}, 192])
        projected = add("Linear", p + "attn.proj", merged, in_features=192, out_features=192)
        x = add("add", "add", x, add("stochastic_depth", "stochastic_depth", projected, p=0.1))
        hidden = add("Linear", p + "mlp.fc1", add("LayerNorm", p + "norm2", x,
                                                  normalized_shape=192),
                     in_features=192, out_features=768)
        out = add("Linear", p + "mlp.fc2", add("GELU", p + "mlp.act", hidden),
                  in_features=768, out_features=192)
        x = add("add", "add", x, out)
        block += 1
    add("Output", "output", x)
    return {"name": "ViT", "input_shape": None, "layers": layers, "edges": edges}


def bench_architecture(sizes: list[int]) -> None:
    from forge_tui.app._graphs import architecture_spec

    print("architecture diagram (median ms)   wall    CPU   grid")
    for n in sizes:
        project = {"architectures": {"a": transformer_architecture(n)}, "layers": {}}
        walls, cpus = [], []
        for _ in range(7):
            wall, cpu = time.perf_counter(), time.process_time()
            rendered = render_graph(architecture_spec(project, "a"))  # type: ignore[arg-type]
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        print(
            f"  {len(project['architectures']['a']['layers']):4d} layers"  # type: ignore[index]
            f"   {statistics.median(walls):6.1f} {statistics.median(cpus):6.1f}"
            f"   {rendered.width}×{rendered.height}"
        )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench_latency(edits: int) -> None:
    from forge_server.client import SyncClient, room_url
    from forge_server.projects import projects_setup
    from forge_server.relay.config import RelayConfig
    from forge_server.relay.server import RelayServer
    from forge_tui.app import ForgeApp, LinkState, ServerBackend
    from forge_tui.app.screens.project import ProjectScreen
    from forge_tui.app.widgets.graph_editor import GraphEditor

    async def wait(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError("the edit never arrived")
            await asyncio.sleep(0.0005)

    with tempfile.TemporaryDirectory() as data:
        async with RelayServer(RelayConfig(data_dir=Path(data)), setups=[projects_setup]) as relay:
            # Baseline: two bare sync clients.
            from pycrdt import Map

            a = SyncClient(room_url(relay.url, "bench-raw/main"))
            b = SyncClient(room_url(relay.url, "bench-raw/main"))
            await a.start()
            await b.start()
            await a.synced(5)
            await b.synced(5)
            ma, mb = a.doc.get("m", type=Map), b.doc.get("m", type=Map)
            raw = []
            for i in range(edits):
                start = time.perf_counter()
                ma["k"] = i
                await wait(lambda i=i: mb.get("k") == i)
                raw.append((time.perf_counter() - start) * 1000)
            await a.stop()
            await b.stop()

            # The apps: A renames a node, B's diagram shows it.
            ada = ServerBackend(relay.url, None, "Ada")
            bob = ServerBackend(relay.url, None, "Bob")
            await ada.create_project("bench")
            app_a, app_b = ForgeApp(ada, "bench"), ForgeApp(bob, "bench")
            async with app_a.run_test(size=(120, 40)) as pa, app_b.run_test(size=(120, 40)) as pb:
                await wait(
                    lambda: all(
                        isinstance(x.screen, ProjectScreen)
                        and x.workspace is not None
                        and x.workspace.link.state is LinkState.CONNECTED
                        for x in (app_a, app_b)
                    )
                )
                ws_a = app_a.workspace
                assert ws_a is not None
                with ws_a.edit() as doc:
                    op = doc.add_operation("Op", "def op(x: Tensor) -> Tensor:\n    return x\n")
                    pid = doc.add_pipeline("p")
                    nodes = [doc.add_node(pid, op, f"node{i}") for i in range(20)]
                    for u, v in itertools.pairwise(nodes):
                        doc.connect(pid, u, "out", v, "x")
                screen_b = app_b.screen
                assert isinstance(screen_b, ProjectScreen)
                await wait(
                    lambda: (
                        app_b.workspace is not None
                        and app_b.workspace.project.find("pipelines", "p") is not None
                    )
                )
                await screen_b.open_now("pipeline", pid)
                editor_b = screen_b.query_one(GraphEditor)
                await pb.pause()
                ws_b = app_b.workspace
                assert ws_b is not None
                ui, doc_only = [], []
                for i in range(edits):
                    name = f"renamed{i}"
                    node_b = ws_b.project.pipelines[pid]["nodes"][nodes[i % len(nodes)]]
                    start = time.perf_counter()
                    with ws_a.edit() as doc:
                        doc.rename_node(pid, nodes[i % len(nodes)], name)
                    await wait(lambda name=name, node_b=node_b: node_b.get("name") == name)
                    doc_only.append((time.perf_counter() - start) * 1000)
                    await wait(lambda name=name: name in editor_b.canvas.rendered.text())
                    ui.append((time.perf_counter() - start) * 1000)
                # The same edits from a bare sync client (as from another user's process).
                from forge_ops.schema import ProjectDoc

                peer = SyncClient(room_url(relay.url, "bench/main"))
                await peer.start()
                await peer.synced(5)
                peer_doc = ProjectDoc(peer.doc)
                solo = []
                for i in range(edits):
                    name = f"peer{i}"
                    start = time.perf_counter()
                    peer_doc.rename_node(pid, nodes[i % len(nodes)], name)
                    await wait(lambda name=name: name in editor_b.canvas.rendered.text())
                    solo.append((time.perf_counter() - start) * 1000)
                await peer.stop()
                del pa
    print(f"edit → visible over {edits} edits (ms)   p50      p95")
    for label, samples in (
        ("sync clients, doc to doc (baseline)", raw),
        ("app A → app B's document          ", doc_only),
        ("app A → app B's diagram           ", ui),
        ("bare client → app B's diagram     ", solo),
    ):
        print(f"  {label}  {percentile(samples, 0.5):6.1f}   {percentile(samples, 0.95):6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--architecture", type=int, nargs="*", default=None, metavar="N")
    parser.add_argument(
        "--only", nargs="+", choices=["render", "latency", "monitor", "list"],
        help="run only these parts (default: all)",
    )
    parser.add_argument("--stream-seconds", type=float, default=10.0)
    parser.add_argument("--executions", type=int, default=1000)
    args = parser.parse_args()
    if args.architecture is not None:
        bench_architecture(args.architecture or [100, 300, 500])
        return
    parts = set(args.only or ["render", "latency", "monitor", "list"])
    if args.skip_latency:
        parts.discard("latency")
    if "render" in parts:
        bench_render(args.sizes)
    if "latency" in parts:
        asyncio.run(bench_latency(args.edits))
    if "monitor" in parts:
        from bench_tui_monitor import bench_monitor

        asyncio.run(bench_monitor(args.stream_seconds))
    if "list" in parts:
        from bench_tui_monitor import bench_list

        asyncio.run(bench_list(args.executions))


if __name__ == "__main__":
    main()
