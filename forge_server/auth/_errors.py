"""Errors of the auth store; each message says what to do about it."""

from __future__ import annotations


class AuthStoreError(ValueError):
    """Bad input to the auth store (unknown user, duplicate name, malformed token...)."""


class InvalidName(AuthStoreError):
    pass


class UserExists(AuthStoreError):
    pass


class UnknownUser(AuthStoreError):
    pass


class UnknownToken(AuthStoreError):
    pass


class ProjectExists(AuthStoreError):
    pass
