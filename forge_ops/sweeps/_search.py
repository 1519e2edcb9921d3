"""The search itself is Optuna's (ask-and-tell): the sampler and pruner of a sweep, the values
of a trial suggested parameter by parameter (so a conditional one is asked only when its
condition holds), and intermediate values in the study's direction. Optuna is imported here,
lazily, never by the document schema."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._spec import Goal, PruneRule, SamplerKind, SweepSpec

if TYPE_CHECKING:
    import optuna


def optuna_module() -> Any:
    """Optuna, with its INFO logging ("Trial 3 finished …") turned down: the server logs what
    matters itself."""
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    optuna.logging.disable_propagation()
    return optuna


def direction(spec: SweepSpec) -> str:
    return str(spec.objective.goal)


def sampler(spec: SweepSpec, asked: int = 0) -> optuna.samplers.BaseSampler:
    """The sweep's sampler. ``asked``: trials the study already has (a resumed study), so that
    a seeded sampler does not propose the first trials again."""
    optuna = optuna_module()
    seed = None if spec.seed is None else spec.seed + asked
    if spec.sampler is SamplerKind.GRID:
        grid = spec.grid()
        assert grid is not None
        # The grid's order is shuffled by its seed; a fixed one keeps it the same on resume.
        return _ask_and_tell_grid(optuna)(grid, seed=spec.seed or 0)
    if spec.sampler is SamplerKind.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    startup = max(2, min(10, spec.budget.trials // 2))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def _ask_and_tell_grid(optuna: Any) -> Any:
    class AskAndTellGrid(optuna.samplers.GridSampler):  # type: ignore[misc]
        """Optuna's grid sampler without its ``study.stop()`` once the grid is exhausted, which
        only works inside ``study.optimize``; a sweep stops at its own budget."""

        def after_trial(self, *args: Any) -> None:
            return None

    return AskAndTellGrid


def pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    optuna = optuna_module()
    rule = spec.pruner
    if rule is None:
        return optuna.pruners.NopPruner()
    if rule.rule is PruneRule.MEDIAN:
        return optuna.pruners.MedianPruner(n_startup_trials=rule.startup_trials,
                                           n_warmup_steps=rule.warmup_steps)
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=rule.min_resource or "auto", reduction_factor=rule.reduction_factor)


def suggest(trial: optuna.Trial, spec: SweepSpec) -> dict[str, Any]:
    """The trial's values, one parameter at a time (grids as choices, so that the grid sampler
    and enqueued retries agree on the distributions)."""
    values: dict[str, Any] = {}
    grid = spec.sampler is SamplerKind.GRID
    for parameter in spec.parameters:
        if parameter.when is not None and values.get(parameter.when[0]) != parameter.when[1]:
            continue
        choices = parameter.grid() if grid else (
            list(parameter.values) if parameter.values is not None else None)
        if choices is not None:
            values[parameter.name] = trial.suggest_categorical(parameter.name, choices)
            continue
        assert parameter.low is not None and parameter.high is not None
        if parameter.integer:
            values[parameter.name] = trial.suggest_int(
                parameter.name, int(parameter.low), int(parameter.high),
                step=int(parameter.step or 1), log=parameter.log)
        else:
            values[parameter.name] = trial.suggest_float(
                parameter.name, float(parameter.low), float(parameter.high),
                step=parameter.step, log=parameter.log)
    return values


def intermediate(spec: SweepSpec, value: float) -> float:
    """A watched line's value as the study compares it: the pruner ranks in the objective's
    direction, so a loss (minimised) watched for a sweep that maximises accuracy is negated."""
    assert spec.pruner is not None
    return value if spec.pruner.goal == spec.objective.goal else -value


__all__ = ["Goal", "direction", "intermediate", "optuna_module", "pruner", "sampler",
           "suggest"]
