"""Plain matplotlib code in an operation: line plots become graph series, others images."""

from __future__ import annotations

import pytest

from forge_ops.runtime import MemorySink, execute_operation

pytest.importorskip("matplotlib")


def run(code: str) -> MemorySink:
    sink = MemorySink()
    execute_operation(code, {}, {}, {}, sink, name="Plot")
    return sink


class TestLinePlots:
    def test_shown_line_plot_becomes_series(self) -> None:
        sink = run("import matplotlib.pyplot as plt\n"
                   "def f():\n"
                   "    plt.plot([0, 1, 2], [3.0, 2.0, 1.0], label='loss')\n"
                   "    plt.plot([0, 1, 2], [1.0, 2.0, 4.0])\n"
                   "    plt.title('Training')\n"
                   "    plt.show()\n")
        assert sink.graphs["Training"]["loss"] == [(0.0, 3.0), (1.0, 2.0), (2.0, 1.0)]
        assert sink.graphs["Training"]["line 2"] == [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]
        assert sink.images == {}

    def test_reshowing_sends_only_new_points(self) -> None:
        sink = run("import matplotlib.pyplot as plt\n"
                   "def f():\n"
                   "    fig, ax = plt.subplots()\n"
                   "    line, = ax.plot([0], [1.0], label='acc')\n"
                   "    ax.set_title('Live')\n"
                   "    fig.canvas.draw()\n"
                   "    plt.close(fig)\n"
                   "    fig2, ax2 = plt.subplots()\n"
                   "    ax2.plot([0, 1], [1.0, float('nan')], label='acc')\n"
                   "    ax2.set_title('Gaps')\n")
        assert sink.graphs["Live"]["acc"] == [(0.0, 1.0)]
        # left open at the end: routed when the operation returns; NaN points are gaps
        assert sink.graphs["Gaps"]["acc"] == [(0.0, 1.0)]

    def test_subplots_without_titles_get_numbered_graphs(self) -> None:
        sink = run("import matplotlib.pyplot as plt\n"
                   "def f():\n"
                   "    fig, (a, b) = plt.subplots(1, 2)\n"
                   "    fig.suptitle('Curves')\n"
                   "    a.plot([1, 2]); b.plot([3, 4])\n"
                   "    plt.show()\n")
        assert sink.graphs["Curves (1)"]["line 1"] == [(0.0, 1.0), (1.0, 2.0)]
        assert sink.graphs["Curves (2)"]["line 1"] == [(0.0, 3.0), (1.0, 4.0)]

    def test_incremental_updates_of_one_figure(self) -> None:
        import matplotlib

        from forge_ops.runtime._plots import FigureRouter

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sink = MemorySink()
        router = FigureRouter(sink)
        fig, ax = plt.subplots()
        (line,) = ax.plot([0, 1], [5.0, 4.0], label="err")
        router.route(fig)
        line.set_data([0, 1, 2], [5.0, 4.0, 3.0])
        router.route(fig)
        plt.close(fig)
        assert sink.graphs["Figure 1"]["err"] == [
            (0.0, 5.0), (1.0, 4.0), (2.0, 3.0)]


    def test_figures_from_helper_modules_are_routed(self) -> None:
        import matplotlib.pyplot as plt

        # the code never names matplotlib: a library it calls does the plotting
        code = "def f(draw: Any) -> None:\n    draw()\n"
        sink = MemorySink()
        execute_operation(code, {}, {}, {"draw": lambda: plt.plot([1.0, 3.0])}, sink)
        assert sink.graphs["Figure 1"]["line 1"] == [(0.0, 1.0), (1.0, 3.0)]


class TestImages:
    def test_other_figures_become_images(self) -> None:
        sink = run("import matplotlib.pyplot as plt\n"
                   "import numpy as np\n"
                   "def f():\n"
                   "    plt.figure(figsize=(2, 1), dpi=50)\n"
                   "    plt.imshow(np.eye(4))\n"
                   "    plt.title('Confusion')\n"
                   "    plt.show()\n"
                   "    plt.figure(figsize=(2, 2), dpi=50)\n"
                   "    plt.scatter([1, 2], [3, 4])\n"
                   "    plt.close()\n"
                   "    plt.bar([1, 2], [3, 4])\n")
        # untitled figures get distinct names although pyplot reuses their numbers
        assert set(sink.images) == {"Confusion", "Figure 1", "Figure 2"}
        confusion = sink.images["Confusion"]
        assert confusion.shape == (50, 100, 3) and confusion.dtype.name == "uint8"
        assert confusion.min() < confusion.max()  # something was drawn
        assert sink.graphs == {}

    def test_pyplot_is_restored_and_figures_closed(self) -> None:
        import matplotlib.pyplot as plt

        show, close = plt.show, plt.close
        run("import matplotlib.pyplot as plt\ndef f():\n    plt.plot([1, 2])\n")
        assert plt.show is show and plt.close is close
        assert plt.get_fignums() == []


class TestLivePlotHabits:
    def test_redrawing_the_history_each_epoch_sends_each_point_once(self) -> None:
        sink = run("import matplotlib.pyplot as plt\n"
                   "def f():\n"
                   "    history = []\n"
                   "    for epoch in range(4):\n"
                   "        history.append(1.0 / (epoch + 1))\n"
                   "        plt.figure()\n"
                   "        plt.plot(history, label='loss')\n"
                   "        plt.title('Live loss')\n"
                   "        plt.show()\n")
        assert sink.graphs["Live loss"]["loss"] == [(0.0, 1.0), (1.0, 0.5), (2.0, 1 / 3),
                                                    (3.0, 0.25)]

    def test_set_data_then_show_again_sends_the_new_points(self) -> None:
        import matplotlib

        from forge_ops.runtime._plots import FigureRouter

        matplotlib.use("Agg")
        from matplotlib import pyplot

        sink = MemorySink()
        router = FigureRouter(sink)
        figure, axes = pyplot.subplots()
        axes.set_title("Live")
        (line,) = axes.plot([0], [1.0], label="acc")
        router.route(figure)
        line.set_data([0, 1, 2], [1.0, 2.0, 3.0])
        router.route(figure)
        pyplot.close(figure)
        assert sink.graphs["Live"]["acc"] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]

    def test_a_new_curve_under_the_same_name_is_sent_whole(self) -> None:
        sink = run("import matplotlib.pyplot as plt\n"
                   "def f():\n"
                   "    for epoch in range(2):\n"
                   "        plt.plot([0, 1], [epoch, epoch + 1], label='batch loss')\n"
                   "        plt.title('Epoch')\n"
                   "        plt.show()\n")
        assert sink.graphs["Epoch"]["batch loss"] == [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0),
                                                      (1.0, 2.0)]

    def test_reference_lines_are_left_out_and_pylab_is_routed(self) -> None:
        sink = run("import pylab\n"
                   "def f():\n"
                   "    pylab.plot([0, 1], [2.0, 3.0], label='loss')\n"
                   "    pylab.axhline(2.5, label='target')\n"
                   "    pylab.title('With a target')\n"
                   "    pylab.show()\n")
        assert sink.graphs["With a target"] == {"loss": [(0.0, 2.0), (1.0, 3.0)]}

    def test_a_line_updated_between_pauses_sends_every_update(self) -> None:
        sink = run("import matplotlib.pyplot as plt\n"
                   "def f():\n"
                   "    plt.ion()\n"
                   "    fig, ax = plt.subplots()\n"
                   "    ax.set_title('Live')\n"
                   "    line, = ax.plot([], [], label='acc')\n"
                   "    xs, ys = [], []\n"
                   "    for step in range(3):\n"
                   "        xs.append(step); ys.append(step * 10.0)\n"
                   "        line.set_data(xs, ys)\n"
                   "        plt.pause(0.001)\n")
        assert sink.graphs["Live"]["acc"] == [(0.0, 0.0), (1.0, 10.0), (2.0, 20.0)]
