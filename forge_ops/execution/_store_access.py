"""How jobs reach the artifact store, wherever they run: its fsspec options (an S3 endpoint,
timeouts), the environment variables forwarded to workers, checks that the store answers, and
short reasons for store failures.

The options travel as fsspec's own configuration variable ``FSSPEC_<PROTOCOL>`` (a JSON object
of storage options, read by fsspec when it is imported): set in the server's environment, it
reaches the local executor's children and the artifact inspectors; put in a Ray
``runtime_env``, it reaches every Ray worker. So one setting configures every process that
opens the store, and nothing else needs to know about it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: S3 defaults where the user set none: fail within seconds when the store does not answer
#: instead of botocore's 60 s timeouts; transient errors (connection, timeout, SlowDown) are
#: retried by s3fs, with backoff (``S3FileSystem.retries`` tries, about 2 s of waits in all),
#: so botocore's own retries, which would multiply them, are off.
S3_DEFAULTS: dict[str, Any] = {"config_kwargs": {
    "connect_timeout": 3, "read_timeout": 30, "retries": {"max_attempts": 1}}}
#: How long a probe of the store (write, read, delete one small object) may take.
PROBE_SECONDS = 15.0
_T = TypeVar("_T")


class StoreUnreachable(RuntimeError):
    """The artifact store does not answer, or refuses; the message is one line that says
    which store and what to check."""


def store_protocol(location: str) -> str | None:
    """The fsspec protocol of an object-store location (``s3``), None for a local folder."""
    if "://" not in location:
        return None
    return location.split("://", 1)[0].lower()


def parse_option(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` of ``--artifacts-option``: the value as JSON if it parses (numbers,
    booleans, objects), else as text."""
    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not name.isidentifier():
        raise ValueError(f"--artifacts-option takes NAME=VALUE, such as "
                         f"endpoint_url=http://minio:9000; got {text!r}")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


@dataclass(frozen=True)
class StoreAccess:
    """What every process that opens the artifact store needs: ``options`` are fsspec storage
    options of the store's protocol; ``forward_env`` names (shell patterns such as ``AWS_*``)
    variables of the server's environment handed to Ray workers as they are (credentials are
    forwarded only when named)."""

    location: str
    options: Mapping[str, Any] = field(default_factory=dict)
    forward_env: Sequence[str] = ()

    @property
    def protocol(self) -> str | None:
        return store_protocol(self.location)

    def storage_options(self) -> dict[str, Any]:
        """The options with Forge's defaults for the protocol underneath."""
        merged: dict[str, Any] = {}
        if self.protocol in ("s3", "s3a"):
            merged.update(json.loads(json.dumps(S3_DEFAULTS)))
        merged.update(self.options)
        return merged

    def environment(self) -> dict[str, str]:
        """The variables a worker needs: ``FSSPEC_<PROTOCOL>`` (see the module docstring; an
        existing one of the server's environment is merged underneath) and the forwarded
        ones."""
        env = {name: value for name, value in os.environ.items()
               if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.forward_env)}
        if self.protocol is not None:
            variable = f"FSSPEC_{self.protocol.upper()}"
            try:
                existing = json.loads(os.environ.get(variable) or "{}")
            except ValueError:
                existing = {}
            merged = {**(existing if isinstance(existing, dict) else {}),
                      **self.storage_options()}
            env[variable] = json.dumps(merged, sort_keys=True)
        return env

    def runtime_env(self) -> dict[str, Any]:
        """The Ray ``runtime_env`` that gives every task and actor this access."""
        return {"env_vars": self.environment()}

    def apply(self) -> None:
        """Give this process and the processes it starts from now on this access."""
        env = self.environment()
        os.environ.update(env)
        if self.protocol is not None:
            import fsspec.config

            fsspec.config.conf.setdefault(self.protocol, {}).update(self.storage_options())


def _within(seconds: float, what: Callable[[], _T], location: str) -> _T:
    """``what()``, or StoreUnreachable once it took ``seconds`` (it goes on in a thread)."""
    done: list[Any] = []

    def call() -> None:
        try:
            done.append((what(), None))
        except BaseException as exc:  # handed to the caller
            done.append((None, exc))

    thread = threading.Thread(target=call, daemon=True, name="forge-store-probe")
    thread.start()
    thread.join(seconds)
    if not done:
        raise StoreUnreachable(f"artifact store {location} did not answer within "
                               f"{seconds:g} s; check that it is up and reachable from here")
    value, error = done[0]
    if error is not None:
        raise error
    return value  # type: ignore[no-any-return]


def probe_store(location: str, seconds: float = PROBE_SECONDS) -> str:
    """Write, read back and delete a small probe object under ``probes/`` of the store;
    returns the probe's path (deleted). Raises StoreUnreachable with one line on failure."""
    from forge_ops.artifacts import ArtifactStore

    def probe() -> str:
        store = ArtifactStore(location)
        path = store.path("probes", f"{uuid.uuid4().hex}.json")
        payload = {"probe": path}
        store.write_json(path, payload)
        if json.loads(store.read_bytes(path)) != payload:
            raise StoreUnreachable(f"artifact store {location} returned other bytes than "
                                   "were written to it; check the store's settings")
        store.fs.rm_file(path)
        return path

    try:
        return _within(seconds, probe, location)
    except StoreUnreachable:
        raise
    except Exception as exc:
        raise StoreUnreachable(store_failure(exc, location) or (
            f"artifact store {location} cannot be used: {one_line(exc)}")) from None


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


#: Exception class names (any module) that mean the store did not answer.
_UNREACHABLE = ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
                "ConnectionClosedError", "ClientConnectorError", "ServerDisconnectedError",
                "ClientConnectionError", "ConnectionError", "ConnectionRefusedError",
                "TimeoutError", "gaierror")
#: Exception class names that mean the store answered with a refusal.
_REFUSED = ("ClientError", "NoCredentialsError", "PartialCredentialsError", "PermissionError")


def store_failure(exc: BaseException, location: str) -> str | None:
    """A one-line reason if ``exc`` (or what caused it) is the store failing to answer or
    refusing ("artifact store s3://… unreachable: …; retried N times"), else None."""
    from forge_ops.artifacts import ArtifactError

    for link in _chain(exc):
        if isinstance(link, StoreUnreachable):
            return str(link)
        if isinstance(link, ArtifactError):
            return None  # the store answered: the artifact itself is the problem
        names = {cls.__name__ for cls in type(link).__mro__}
        if names & set(_UNREACHABLE):
            return (f"artifact store {location} unreachable: {one_line(link)}"
                    f"{_retried(location)}; check that it is up and reachable from the "
                    "workers (--artifacts-option endpoint_url=…)")
        if names & set(_REFUSED):
            check = ("the folder's permissions" if store_protocol(location) is None else
                     "the bucket and the credentials the workers have (--forward-env AWS_*)")
            return f"artifact store {location} refused: {one_line(link)}; check {check}"
    return None


def _retried(location: str) -> str:
    if store_protocol(location) not in ("s3", "s3a"):
        return ""
    try:
        import s3fs

        tries = int(s3fs.S3FileSystem.retries)
    except (ImportError, AttributeError, TypeError, ValueError):
        return ""
    return f"; retried {tries - 1} time(s) with backoff" if tries > 1 else ""
