"""Sweep errors: each has the HTTP status it maps to and a message saying what to do."""

from __future__ import annotations

from forge_server.http_api import RequestError


class SweepFailure(RequestError):
    """A sweep request that cannot be done (400)."""


class SweepNotFound(SweepFailure):
    status = 404


class SweepConflict(SweepFailure):
    status = 409
