"""Sweep runs kept as Optuna studies in one SQLite file (``sweeps.db`` in the data dir).

A run is a study named ``{project}/{run id}``. What Forge knows about it beyond Optuna's own
trials lives in user attributes: the study's ``run`` (project, branch, sweep, the tagged commit,
the definition as it ran, …) and ``state`` (status, note, time spent); each trial's ``forge``
(its execution, status, reason, times). Optuna's storage is used from one thread, in order.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from forge_ops.sqlite_db import use_wal
from forge_server.store_thread import StoreThread

if TYPE_CHECKING:
    import optuna

P = ParamSpec("P")
T = TypeVar("T")

RUN = "run"
STATE = "state"
TRIAL = "forge"


def study_name(project: str, run: str) -> str:
    return f"{project}/{run}"


class Studies:
    """The sweeps database; its methods block, callers on the event loop use :meth:`run`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._storage: Any = None
        self._thread = StoreThread("forge-sweeps")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the sweeps thread (every Optuna call goes there)."""
        return await self._thread.run(fn, *args, **kwargs)

    def close(self) -> None:
        self._thread.close()
        if self._storage is not None:
            with contextlib.suppress(Exception):
                self._storage.remove_session()
                self._storage.engine.dispose()

    @property
    def storage(self) -> optuna.storages.RDBStorage:
        if self._storage is None:
            from forge_ops.sweeps import optuna_module

            optuna = optuna_module()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            path = self.path

            def connect() -> sqlite3.Connection:
                # WAL with synchronous=NORMAL, as Forge's other databases: a commit without
                # an fsync (3× faster asks and tells), lost only by a power cut.
                connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
                use_wal(connection)
                return connection

            self._storage = optuna.storages.RDBStorage(
                f"sqlite:///{self.path}", engine_kwargs={"creator": connect})
        return self._storage

    # ----- studies ------------------------------------------------------------------------

    def create(self, name: str, direction: str, *, sampler: Any, pruner: Any,
               run: dict[str, Any], state: dict[str, Any]) -> optuna.Study:
        from forge_ops.sweeps import optuna_module

        study = optuna_module().create_study(storage=self.storage, study_name=name,
                                             direction=direction, sampler=sampler,
                                             pruner=pruner)
        study.set_user_attr(RUN, run)
        study.set_user_attr(STATE, state)
        return study

    def load(self, name: str, sampler: Any, pruner: Any) -> optuna.Study:
        from forge_ops.sweeps import optuna_module

        study: optuna.Study = optuna_module().load_study(
            study_name=name, storage=self.storage, sampler=sampler, pruner=pruner)
        return study

    def runs(self, project: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(study name, run, state)`` of every run of ``project``, oldest first."""
        if not self.path.exists():
            return []
        found = []
        for study in self.storage.get_all_studies():
            run = study.user_attrs.get(RUN)
            if isinstance(run, dict) and run.get("project") == project:
                found.append((study.study_name, run, dict(study.user_attrs.get(STATE) or {})))
        return sorted(found, key=lambda item: (str(item[1].get("created")), item[0]))

    def active_runs(self) -> list[tuple[str, dict[str, Any]]]:
        """``(study name, run)`` of every run a previous server left running."""
        if not self.path.exists():
            return []
        return [(study.study_name, study.user_attrs[RUN])
                for study in self.storage.get_all_studies()
                if isinstance(study.user_attrs.get(RUN), dict)
                and (study.user_attrs.get(STATE) or {}).get("status") == "running"]

    def snapshot(self, name: str) -> tuple[dict[str, Any], dict[str, Any],
                                           list[optuna.trial.FrozenTrial]]:
        """A run's ``run`` and ``state`` attributes and its trials (KeyError if unknown)."""
        storage = self.storage
        study_id = storage.get_study_id_from_name(name)
        attrs = storage.get_study_user_attrs(study_id)
        return (dict(attrs.get(RUN) or {}), dict(attrs.get(STATE) or {}),
                storage.get_all_trials(study_id, deepcopy=False))

    def exists(self, name: str) -> bool:
        if not self.path.exists():
            return False
        try:
            self.storage.get_study_id_from_name(name)
        except KeyError:
            return False
        return True

    def set_state(self, name: str, **changes: Any) -> dict[str, Any]:
        """Update a run's ``state`` attribute; the new state."""
        storage = self.storage
        study_id = storage.get_study_id_from_name(name)
        state = dict(storage.get_study_user_attrs(study_id).get(STATE) or {})
        state.update(changes)
        storage.set_study_user_attr(study_id, STATE, state)
        return state

    def set_trial(self, trial_id: int, **changes: Any) -> dict[str, Any]:
        """Update a trial's ``forge`` attribute (it may have finished: Optuna refuses to
        change a finished trial's attributes, so this is written before ``tell``)."""
        storage = self.storage
        info = dict(storage.get_trial(trial_id).user_attrs.get(TRIAL) or {})
        info.update(changes)
        storage.set_trial_user_attr(trial_id, TRIAL, info)
        return info
