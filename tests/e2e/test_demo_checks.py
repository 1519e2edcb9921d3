"""The demo's own checks, quickly: the download check against a real local HTTP server, the
choice of pipeline (never silently offline), and one demo per data folder."""

from __future__ import annotations

import argparse
import fcntl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

import forge_tui.demo._network as network
from forge_tui.cli.commands import demo as demo_command
from forge_tui.demo import DemoServer, DemoServerError, DownloadCheck, check_cifar10_download


@pytest_asyncio.fixture(loop_scope="session")
async def mirror() -> AsyncIterator[str]:
    """A local HTTP server: /archive.tar.gz exists, everything else is 404."""

    async def archive(request: web.Request) -> web.Response:
        return web.Response(body=b"not really an archive")

    app = web.Application()
    app.router.add_route("*", "/archive.tar.gz", archive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def point_at(monkeypatch: pytest.MonkeyPatch, url: str, archive: Path) -> None:
    monkeypatch.setattr(network, "cifar10_defaults", lambda: (url, archive))


class TestDownloadCheck:
    def test_defaults_come_from_the_operation(self) -> None:
        url, archive = network.cifar10_defaults()
        assert url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
        assert archive.name == "cifar-10-python.tar.gz"

    async def test_reachable_url_is_available(
        self, mirror: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        point_at(monkeypatch, f"{mirror}/archive.tar.gz", tmp_path / "none.tar.gz")
        check = await _in_thread(check_cifar10_download)
        assert check.available and "answered 200" in check.reason

    async def test_missing_file_is_unavailable(
        self, mirror: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        point_at(monkeypatch, f"{mirror}/gone.tar.gz", tmp_path / "none.tar.gz")
        check = await _in_thread(check_cifar10_download)
        assert not check.available and "answered 404" in check.reason

    def test_unreachable_host_is_unavailable(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        point_at(monkeypatch, "http://127.0.0.1:9/archive.tar.gz", tmp_path / "none.tar.gz")
        check = check_cifar10_download(timeout=2)
        assert not check.available and "cannot reach http://127.0.0.1:9" in check.reason

    def test_cached_archive_needs_no_network(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        archive = tmp_path / "cifar-10-python.tar.gz"
        archive.write_bytes(b"cached")
        point_at(monkeypatch, "http://127.0.0.1:9/archive.tar.gz", archive)
        check = check_cifar10_download()
        assert check.available and "cached" in check.reason


class TestPipelineChoice:
    @pytest.mark.parametrize(("available", "offline"), [(True, False), (False, True)])
    def test_twin_only_when_the_download_is_unavailable(
        self,
        available: bool,
        offline: bool,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        import forge_tui.demo

        monkeypatch.setattr(
            forge_tui.demo,
            "check_cifar10_download",
            lambda: DownloadCheck(available, "the test says so"),
        )
        assert demo_command._offline(argparse.Namespace(offline=False)) is offline
        out = capsys.readouterr().out
        if offline:
            assert "CIFAR-10 download unavailable (the test says so)" in out
            assert "Using the offline twin train-synthetic instead" in out
        else:
            assert "using train-cifar10, the paper's pipeline" in out
            assert "VGG16 trains slowly on a CPU" in out

    def test_offline_flag_skips_the_check_but_says_so(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        import forge_tui.demo

        def fail() -> DownloadCheck:
            raise AssertionError("--offline must not touch the network")

        monkeypatch.setattr(forge_tui.demo, "check_cifar10_download", fail)
        assert demo_command._offline(argparse.Namespace(offline=True)) is True
        assert "--offline: using train-synthetic" in capsys.readouterr().out


class TestOneDemoPerDataFolder:
    def test_second_demo_on_the_same_folder_is_refused(self, tmp_path: Path) -> None:
        with (tmp_path / "demo.lock").open("w") as held:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(DemoServerError, match="another forge demo is using"):
                DemoServer(tmp_path).start()
            result = subprocess.run(
                [sys.executable, "-m", "forge_tui", "demo", "--headless", "--offline",
                 "--data-dir", str(tmp_path)],
                capture_output=True, text=True, timeout=60, check=False,
            )
        assert result.returncode == 1
        assert "another forge demo is using" in result.stderr
        assert not (tmp_path / "server.log").exists()  # no server was started

    def test_server_that_cannot_start_is_reported_with_its_log(self, tmp_path: Path) -> None:
        (tmp_path / "forge.db").write_text("this is not a SQLite database")
        server = DemoServer(tmp_path, executor="local", startup_timeout=60)
        with pytest.raises(DemoServerError, match="the demo server exited with status") as info:
            server.start()
        assert str(server.log_path) in str(info.value)
        assert not server.running
        # The folder is free again.
        with (tmp_path / "demo.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


async def _in_thread(function):  # type: ignore[no-untyped-def]
    import asyncio

    return await asyncio.to_thread(function)


def test_interactive_demo_without_a_terminal_points_to_headless(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "forge_tui", "demo", "--offline", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert "needs a terminal" in result.stderr and "--headless" in result.stderr
    assert not (tmp_path / "server.log").exists()


@pytest.mark.parametrize("options, expected", [
    (["--timeout", "0"], "--timeout must be a number of seconds above 0"),
    (["--timeout", "nan"], "--timeout must be a number of seconds above 0"),
    (["--gpus", "inf"], "--gpus must be a number of GPUs, 0 or more"),
    (["--executor", "local", "--ray-address", "127.0.0.1:6379"], "--ray-address needs Ray"),
])
def test_bad_options_are_refused_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str],
        expected: str) -> None:
    from forge_tui.cli import main

    assert main(["demo", "--headless", "--offline", "--data-dir", str(tmp_path), *options]) == 1
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "server.log").exists()


def test_a_data_dir_that_cannot_be_a_folder_or_a_taken_port_is_a_clear_error(
        tmp_path: Path) -> None:
    import socket

    (tmp_path / "a-file").write_text("")
    with pytest.raises(DemoServerError, match=r"cannot use .*a-file/sub as the demo's data "
                                              r"folder: Not a directory; pass --data-dir DIR"):
        DemoServer(tmp_path / "a-file" / "sub").start()
    with socket.socket() as taken:  # another server on the port the demo was told to use
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(DemoServerError, match=f"port {port} is in use; pass another --port"):
            DemoServer(tmp_path / "demo", port=port).start()
    assert not (tmp_path / "demo" / "server.log").exists()
