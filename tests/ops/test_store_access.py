"""How jobs reach the artifact store: options, forwarded variables, and one-line reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forge_ops.execution import StoreAccess, StoreUnreachable, parse_option, probe_store
from forge_ops.execution import store_failure as describe


def test_options_parse_as_json_where_they_can() -> None:
    assert parse_option("endpoint_url=http://minio:9000") == (
        "endpoint_url", "http://minio:9000")
    assert parse_option("anon=true") == ("anon", True)
    assert parse_option('config_kwargs={"read_timeout": 60}') == (
        "config_kwargs", {"read_timeout": 60})
    for bad in ("endpoint_url", "=x", "two words=1"):
        with pytest.raises(ValueError, match="NAME=VALUE"):
            parse_option(bad)


def test_workers_get_the_options_and_only_the_variables_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("HOME_SECRET", "never")
    monkeypatch.setenv("FSSPEC_S3", json.dumps({"anon": False, "endpoint_url": "old"}))
    access = StoreAccess("s3://bucket/forge", {"endpoint_url": "http://minio:9000"},
                         ("AWS_*",))
    env = access.runtime_env()["env_vars"]
    assert env["AWS_ACCESS_KEY_ID"] == "key" and env["AWS_SECRET_ACCESS_KEY"] == "secret"
    assert "HOME_SECRET" not in env
    options = json.loads(env["FSSPEC_S3"])
    assert options["endpoint_url"] == "http://minio:9000"  # the flag wins over the old value
    assert options["anon"] is False  # the server's own FSSPEC_S3 stays underneath
    assert options["config_kwargs"]["connect_timeout"] == 3  # short timeouts by default
    # The user's own config_kwargs replace the defaults.
    custom = StoreAccess("s3://b/f", {"config_kwargs": {"read_timeout": 60}})
    assert custom.storage_options()["config_kwargs"] == {"read_timeout": 60}
    # A local folder needs nothing but what is forwarded.
    assert StoreAccess("/data/artifacts").environment() == {}


def test_a_local_store_is_probed_and_left_clean(tmp_path: Path) -> None:
    probe = probe_store(str(tmp_path / "store"))
    assert not Path(probe).exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreUnreachable, match="cannot be used"):
        probe_store(str(tmp_path / "file" / "store"))  # a file where the folder should be


def test_store_failures_are_told_apart_from_other_errors() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    wrapped = RuntimeError("zarr could not write")
    wrapped.__cause__ = refused
    reason = describe(wrapped, "s3://bucket/forge")
    assert reason is not None and reason.startswith(
        "artifact store s3://bucket/forge unreachable: ConnectionRefusedError")
    assert describe(ValueError("bad value"), "s3://bucket/forge") is None
    assert describe(PermissionError("denied"), "/data") == (
        "artifact store /data refused: PermissionError: denied; check the folder's permissions")
