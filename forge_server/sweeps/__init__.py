"""Sweeps: searches over a pipeline's settings, each trial an ordinary execution.

``sweeps_setup()`` installs them in the relay (after ``coordinator_setup()``); ``app[SWEEPS]``
is the :class:`Sweeps` service. See ``_routes`` for the HTTP API.
"""

from ._errors import SweepConflict, SweepFailure, SweepNotFound
from ._routes import SWEEPS, sweeps_setup
from ._service import LATEST, Sweeps

__all__ = [
    "LATEST",
    "SWEEPS",
    "SweepConflict",
    "SweepFailure",
    "SweepNotFound",
    "Sweeps",
    "sweeps_setup",
]
