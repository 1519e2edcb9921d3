"""Coordinator errors: each has the HTTP status it maps to and a message saying what to do."""

from __future__ import annotations

from forge_server.http_api import RequestError


class CoordinatorError(RequestError):
    """A run, rerun, restart, cancel or artifact request that cannot be done."""


class NotFound(CoordinatorError):
    status = 404


class Conflict(CoordinatorError):
    status = 409


class PipelineRejected(CoordinatorError):
    """Validation found problems; ``details["problems"]`` lists each, naming its node."""

    status = 400
