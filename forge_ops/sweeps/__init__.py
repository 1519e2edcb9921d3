"""Sweeps: searching a pipeline's attributes and references with Optuna (ask-and-tell).

``read_sweep(project, sweep_id)`` checks a sweep of the project document against its pipeline
(:class:`SweepError` lists every problem) and gives a :class:`SweepSpec`; ``trial_content``
sets a trial's values on the pipeline; ``sampler``/``pruner``/``suggest`` are the Optuna side;
``metric_value``/``graph_value`` score a finished trial.
"""

from ._parameters import Parameter as Parameter
from ._results import NoScore as NoScore
from ._results import graph_value as graph_value
from ._results import metric_value as metric_value
from ._search import direction as direction
from ._search import intermediate as intermediate
from ._search import optuna_module as optuna_module
from ._search import pruner as pruner
from ._search import sampler as sampler
from ._search import suggest as suggest
from ._spec import Budget as Budget
from ._spec import Goal as Goal
from ._spec import Objective as Objective
from ._spec import Pruner as Pruner
from ._spec import PruneRule as PruneRule
from ._spec import SamplerKind as SamplerKind
from ._spec import SweepError as SweepError
from ._spec import SweepSpec as SweepSpec
from ._spec import find_sweep as find_sweep
from ._spec import read_sweep as read_sweep
from ._spec import trial_content as trial_content

__all__ = [
    "Budget",
    "Goal",
    "NoScore",
    "Objective",
    "Parameter",
    "PruneRule",
    "Pruner",
    "SamplerKind",
    "SweepError",
    "SweepSpec",
    "direction",
    "find_sweep",
    "graph_value",
    "intermediate",
    "metric_value",
    "optuna_module",
    "pruner",
    "read_sweep",
    "sampler",
    "suggest",
    "trial_content",
]
