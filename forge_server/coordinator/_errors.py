"""Coordinator errors: each has the HTTP status it maps to and a message saying what to do."""

from __future__ import annotations

from typing import Any


class CoordinatorError(Exception):
    """A run, rerun, restart, cancel or artifact request that cannot be done."""

    status = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, **self.details}


class NotFound(CoordinatorError):
    status = 404


class Conflict(CoordinatorError):
    status = 409


class PipelineRejected(CoordinatorError):
    """Validation found problems; ``details["problems"]`` lists each, naming its node."""

    status = 400
