"""Jobs in a sandbox: what a job may see, and how its process is started confined.

A job runs user code. Confined, it sees the system read-only, a private ``/tmp``, its HOME,
the artifact store (read-write: it saves its outputs there) and the Python it runs on; it does
not see the server's data directory (``forge.db``, the owner's credentials), ``/home``,
``/root``, ``/run``, a few root-only system secrets, nor any process outside its sandbox (so no
``/proc/<server pid>/environ``). Its environment is a short allow-list, not the server's.

Two ways, chosen per machine (``confinement``):

- ``bubblewrap``: ``bwrap`` (Debian package ``bubblewrap``) builds the view above in new mount,
  PID and IPC namespaces, drops every capability, and cuts the network (``--unshare-net``) for
  jobs whose node sets ``network: false``. GPU device nodes are bound when present.
- ``user``: no bubblewrap, but the server runs as root: the sandbox's processes become a
  dedicated unprivileged user (``FORGE_JOBS_USER``, else ``forge-jobs`` where it exists, else
  ``nobody``), who cannot read the data directory's files; the server shares only the artifact
  store with that user's group (see ``share_store_with_jobs``).

Starting a sandbox costs a process start and the imports (a second or more with torch), so no
job pays it: the local executor keeps a fork server inside the sandbox (``_sandbox_fork``) and
each Ray worker a persistent job runner (``_sandbox_ray``); both start with the first job that
needs them. ``FORGE_BWRAP`` names the ``bwrap`` to use (a missing path: none installed).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import import_module, util
from pathlib import Path
from typing import Any

#: Names the ``bwrap`` executable (tests point it at a missing path: "not installed").
BWRAP_ENV = "FORGE_BWRAP"
#: Names the unprivileged user jobs run as where bubblewrap is missing (empty: none).
JOBS_USER_ENV = "FORGE_JOBS_USER"
DEFAULT_JOBS_USERS = ("forge-jobs", "nobody")

#: Folders no job sees (an empty tmpfs over each): other users' files and runtime sockets.
MASKED = ("/home", "/root", "/tmp", "/var/tmp", "/run")  # noqa: S108 - hidden, not used
#: Root-only secrets of the system, hidden too: a confined job of a root server is uid 0
#: without capabilities, which still reads files root owns.
SYSTEM_SECRETS = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh",
                  "/etc/ssl/private")
#: Files the network needs that may live in a masked folder (systemd-resolved's stub).
NETWORK_FILES = ("/etc/resolv.conf", "/etc/hosts")
#: The environment a job gets from the server's: names, then prefixes. Store credentials
#: (``AWS_*``, ``FSSPEC_*``) only where the store is an object store, which jobs write to.
KEPT_ENV = frozenset({
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONHASHSEED", "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS", "LD_LIBRARY_PATH", "HTTP_PROXY", "HTTPS_PROXY",
    "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"})
KEPT_PREFIXES = ("LC_", "CUDA_", "NVIDIA_", "TORCH_", "CUBLAS_", "NCCL_")
STORE_PREFIXES = ("AWS_", "FSSPEC_")

#: What the fork server imports before it forks any job. None of it may start CUDA (not even
#: ``torch.cuda.is_available()``): CUDA does not survive a fork, so every GPU job would fail.
FORK_SERVER_PRELOAD = ("torch", "numpy", "zarr", "fsspec", "cloudpickle", "forge_ops.arch",
                       "forge_ops.runtime", "forge_ops.artifacts", "forge_ops.execution._worker",
                       "forge_ops.execution._preload")

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1


class Confinement(StrEnum):
    """How this machine confines jobs."""

    BUBBLEWRAP = "bubblewrap"
    USER = "user"  # a dedicated unprivileged OS user (no bubblewrap, the server runs as root)
    NONE = "none"


class SandboxUnavailable(RuntimeError):
    """Jobs must be confined here and cannot be; the message says how to fix that."""


@dataclass(frozen=True)
class SandboxPolicy:
    """How an executor confines its jobs (the store and the network come with each job)."""

    #: Folders and files jobs must never see, wherever they are: the server's data directory,
    #: the administrator's first token.
    hidden: tuple[str, ...] = ()
    #: The jobs' HOME, kept between jobs (downloads such as CIFAR-10 land there); None: an
    #: empty folder in the sandbox's private /tmp.
    home: str | None = None
    #: Refuse to run jobs where they cannot be confined (a server with accounts).
    required: bool = False


@dataclass(frozen=True)
class SandboxKey:
    """What one running sandbox was built for: jobs that differ here need another."""

    store: str
    network: bool
    #: Ray sets a worker's GPUs per task; a sandbox keeps the ones it started with.
    gpus: str | None = None


def find_bwrap() -> str | None:
    """The ``bwrap`` to use: ``$FORGE_BWRAP`` if set (None if it does not exist), else PATH's."""
    configured = os.environ.get(BWRAP_ENV)
    if configured is not None:
        return configured if configured and os.access(configured, os.X_OK) else None
    return shutil.which("bwrap")


@cache
def _bwrap_problem(bwrap: str) -> str | None:
    """Why ``bwrap`` cannot build a sandbox here (None: it can), found by building one."""
    probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
             "--cap-drop", "ALL", "--die-with-parent", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{bwrap} failed: {exc}"
    if done.returncode != 0:
        return f"{bwrap} failed: {done.stderr.strip() or f'exit code {done.returncode}'}"
    return None


def jobs_user() -> pwd.struct_passwd | None:
    """The unprivileged user jobs run as without bubblewrap (None: none configured)."""
    names = os.environ.get(JOBS_USER_ENV)
    for name in DEFAULT_JOBS_USERS if names is None else [names] if names else []:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


@cache
def _user_problem(uid: int, gid: int) -> str | None:
    """Why the jobs user cannot run Forge's Python (None: it can)."""
    try:
        done = subprocess.run([sys.executable, "-c", "import forge_ops.execution"],
                              user=uid, group=gid, extra_groups=[], env=_python_env(),
                              capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    lines = done.stderr.strip().splitlines()
    return (lines[-1] if lines else f"exit code {done.returncode}") if done.returncode else None


def confinement(required: bool = False) -> tuple[Confinement, str]:
    """How jobs can be confined on this machine, and why not better (a sentence, or "").

    The dedicated user is only for servers that require confinement: it needs the store
    shared with that user, which ``share_store_with_jobs`` does at the server's start.
    """
    bwrap = find_bwrap()
    found = _bwrap_problem(bwrap) if bwrap else "bubblewrap (bwrap) is not installed"
    if found is None:
        return Confinement.BUBBLEWRAP, ""
    problem: str = found
    if required and os.geteuid() == 0:
        user = jobs_user()
        if user is None:
            return Confinement.NONE, (f"{problem}, and no unprivileged user for jobs is "
                                      f"configured (${JOBS_USER_ENV})")
        user_problem = _user_problem(user.pw_uid, user.pw_gid)
        if user_problem is None:
            return Confinement.USER, problem
        return Confinement.NONE, (f"{problem}, and user {user.pw_name} cannot run Forge's "
                                  f"Python ({user_problem})")
    return Confinement.NONE, problem


def unconfined_refusal(reason: str) -> str:
    """What a server with accounts says when it cannot confine jobs."""
    return (f"jobs cannot be confined on this machine: {reason}. Unconfined, any account that "
            "may run a pipeline could read this server's data directory (the owner token, "
            "forge.db) and every file of the server's user. Install bubblewrap (Debian/Ubuntu: "
            "`apt-get install bubblewrap`), or start the server with --unconfined-jobs if "
            "everyone with an account may read the server's files")


def require(policy: SandboxPolicy) -> Confinement:
    """The confinement for ``policy`` on this machine; raises SandboxUnavailable where the
    policy requires one and there is none."""
    method, reason = confinement(policy.required)
    if method is Confinement.NONE and policy.required:
        raise SandboxUnavailable(unconfined_refusal(reason))
    return method


def network_refusal(job_name: str) -> str:
    return (f"{job_name} sets network: false, which only a job in the sandbox can have; "
            "this executor runs jobs unconfined (install bubblewrap on the machines that run "
            "jobs), or remove the setting")


# -- the sandbox's view -----------------------------------------------------------------------
def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _python_paths() -> list[str]:
    """What the sandbox's Python needs to read: its installation, its virtual environment, the
    site-packages and zip files on sys.path and the packages it preloads (a source checkout's
    package folders only, not the checkout: it may hold other files)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    for entry in sys.path:
        if entry.endswith(("site-packages", "dist-packages", ".zip")):
            paths.add(entry)
    for name in {"forge_ops", *(module.split(".")[0] for module in FORK_SERVER_PRELOAD)}:
        spec = util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            paths.update(spec.submodule_search_locations)
        elif spec is not None and spec.origin:
            paths.add(spec.origin)
    return sorted(os.path.realpath(p) for p in paths if p and os.path.exists(p))


def _own_home() -> list[str]:
    """The server's own HOME where MASKED misses it (a service account's /var/lib/forge, say):
    it holds the user's credentials, Ray's ``~/.ray/auth_token`` among them."""
    home = os.path.realpath(os.path.expanduser("~"))
    return [home] if home.count("/") >= 2 and not any(_under(home, m) for m in MASKED) else []


def _is_local(store: str) -> bool:
    return "://" not in store or store.startswith("file://")


def bwrap_arguments(policy: SandboxPolicy, key: SandboxKey, home: str,
                    readable: Sequence[str] = (), writable: Sequence[str] = ()) -> list[str]:
    """bwrap's options for a sandbox (mounts apply in order: later ones land on top);
    ``readable`` and ``writable`` add folders of the caller's."""
    args = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc",
            "--cap-drop", "ALL", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if not key.network:
        args.append("--unshare-net")
    masked = [*MASKED, *_own_home(), *(os.path.realpath(p) for p in policy.hidden)]
    for folder in masked:
        if os.path.isdir(folder):
            args += ["--tmpfs", folder]
    for path in masked:  # a hidden file outside the masked folders reads as empty
        outside = not any(_under(path, f) and f != path for f in masked if os.path.isdir(f))
        if os.path.isfile(path) and outside:
            args += ["--ro-bind", "/dev/null", path]
    for secret in SYSTEM_SECRETS:
        if os.path.isdir(secret):
            args += ["--tmpfs", secret]
        elif os.path.exists(secret):
            args += ["--ro-bind", "/dev/null", secret]
    needed = [*_python_paths(), *(os.path.realpath(p) for p in [*NETWORK_FILES, *readable])]
    for path in needed:
        if any(_under(path, folder) for folder in masked) and os.path.exists(path):
            args += ["--ro-bind", path, path]
    writable = [os.path.realpath(p) for p in writable]
    if policy.home:
        writable.append(os.path.realpath(policy.home))
    if _is_local(key.store):
        writable.append(os.path.realpath(key.store.removeprefix("file://")))
    for path in writable:
        os.makedirs(path, mode=0o700, exist_ok=True)
        args += ["--bind", path, path]
    if not policy.home:
        args += ["--dir", home]  # in the private /tmp
    for folder in policy.hidden:  # a hidden folder inside a writable one stays hidden
        hidden = os.path.realpath(folder)
        if any(_under(hidden, path) and hidden != path for path in writable):
            args += ["--tmpfs", hidden]
    for device in [*sorted(glob.glob("/dev/nvidia*")), "/dev/dri"]:
        if os.path.exists(device):
            args += ["--dev-bind", device, device]
    return [*args, "--chdir", home]


def _python_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name in KEPT_ENV or name.startswith(KEPT_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(entry for entry in sys.path if entry)
    env["PYTHONNOUSERSITE"] = "1"  # a writable HOME must not add modules to every job
    return env


def sandbox_env(key: SandboxKey, home: str, method: Confinement) -> dict[str, str]:
    """The environment of a sandbox's processes: the allow-list, HOME, TMPDIR."""
    env = _python_env()
    if not _is_local(key.store):
        env.update((name, value) for name, value in os.environ.items()
                   if name.startswith(STORE_PREFIXES))
    if key.gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = key.gpus
    env.update(HOME=home, TMPDIR="/tmp", FORGE_SANDBOX=method.value)  # noqa: S108 - its own
    return env


def sandbox_command(policy: SandboxPolicy, key: SandboxKey, method: Confinement,
                    run: dict[str, Any], writable: Sequence[str] = ()
                    ) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run Python in a sandbox for ``key``: ``run`` says
    what, for ``boot`` (``entry`` and ``fd``: a function called with a channel's fd;
    ``module`` and ``argv``: ``python -m``); ``writable``: folders it may write too."""
    user = jobs_user() if method is Confinement.USER else None
    home = policy.home or ("/tmp/home" if method is Confinement.BUBBLEWRAP else "")  # noqa: S108
    if not home:  # the user way has no private /tmp: a private folder of its own
        import tempfile

        home = tempfile.mkdtemp(prefix="forge-job-home-")
    if user is not None:
        for folder in [home, *writable]:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            os.chown(folder, user.pw_uid, user.pw_gid)
    config = {**run, "network": key.network,
              "user": [user.pw_uid, user.pw_gid] if user is not None else None}
    python = [sys.executable, "-c", "import sys; from forge_ops.execution._sandbox import boot; "
              "boot(sys.argv[1])", json.dumps(config)]
    env = sandbox_env(key, home, method)
    if method is not Confinement.BUBBLEWRAP:
        return python, env
    bwrap = find_bwrap()
    assert bwrap is not None  # chosen because it exists
    readable = []
    if "module" in run:  # its package, where a masked folder would hide it
        spec = util.find_spec(run["module"].split(".")[0])
        readable = list(spec.submodule_search_locations or []) if spec is not None else []
    arguments = bwrap_arguments(policy, key, home, readable, writable)
    return [bwrap, *arguments, "--", *python], env


def confined_module(policy: SandboxPolicy, store: str, module: str, args: Sequence[str],
                    writable: Sequence[str] = ()) -> tuple[list[str], dict[str, str] | None]:
    """The command (and environment: None for the caller's) that runs ``python -m module
    ARGS`` as ``policy`` confines jobs, beside the artifact store at ``store``, without
    network unless the store is an object store it must reach: for children of the server
    that load artifacts, which may unpickle anything a job wrote. Raises SandboxUnavailable
    as ``require`` does."""
    method = require(policy)
    if method is Confinement.NONE:
        return [sys.executable, "-m", module, *args], None
    return sandbox_command(policy, SandboxKey(store, network=not _is_local(store)), method,
                           {"module": module, "argv": list(args)}, writable)


#: The thread that starts every sandbox. The kernel's parent-death signal (bwrap's
#: --die-with-parent) fires when the *thread* that started a process ends, and the local
#: executor's threads end with each job; this one lives as long as the process.
_launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forge-sandbox-launcher")


def start_sandbox(policy: SandboxPolicy, key: SandboxKey, method: Confinement, entry: str,
                  channel_fd: int) -> subprocess.Popen[bytes]:
    """Start ``entry`` in a sandbox; it gets only ``channel_fd`` (and stdout/stderr)."""
    command, env = sandbox_command(policy, key, method, {"entry": entry, "fd": channel_fd})
    return _launcher.submit(subprocess.Popen, command, env=env, pass_fds=[channel_fd],
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd="/").result()


# -- inside the sandbox -----------------------------------------------------------------------
def preload() -> None:
    """Import what every job would (FORK_SERVER_PRELOAD), once, in a sandbox's server."""
    for name in FORK_SERVER_PRELOAD:
        if util.find_spec(name.split(".")[0]) is not None:
            with contextlib.suppress(Exception):
                import_module(name)


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent goes (Linux)."""
    import signal

    if sys.platform.startswith("linux"):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _become_jobs_user(uid: int, gid: int, network: bool) -> None:
    """Root's last acts in a user-way sandbox: cut the network if asked, then become the jobs
    user for good (groups, gid, uid; the kernel then forgets the parent-death signal)."""
    if not network and _libc().unshare(_CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "cannot cut the network (unshare)")
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.umask(0o007)  # the store is shared through its group (share_store_with_jobs)


def boot(config_text: str) -> None:
    """The sandbox's first Python: become what it must be, then run its entry."""
    config = json.loads(config_text)
    if config["user"] is not None:
        uid, gid = config["user"]
        _become_jobs_user(uid, gid, network=config["network"])
    die_with_parent()
    if "module" in config:
        import runpy

        sys.argv = [config["module"], *config["argv"]]
        runpy.run_module(config["module"], run_name="__main__", alter_sys=True)
        return
    module, function = config["entry"].split(":")
    getattr(import_module(module), function)(config["fd"])


# -- sharing the store with the jobs user -----------------------------------------------------
def share_store_with_jobs(store: str, data_dir: Path) -> str | None:
    """Let the jobs user (user-way confinement) work in a local store, and nothing else of the
    data directory: the data directory becomes traversable (0710) by that user's group, the
    store that group's (setgid folders, group read-write), and files created from now on
    group-readable (umask 007). Returns a line for the server's log, None if nothing to do."""
    user = jobs_user()
    if user is None or not _is_local(store):
        return None
    gid = user.pw_gid
    root = Path(store.removeprefix("file://")).resolve()
    root.mkdir(parents=True, exist_ok=True, mode=0o770)
    data = data_dir.resolve()
    if root != data and _under(str(root), str(data)):
        inner = root.relative_to(data).parts
        for depth in range(len(inner)):  # the data directory and folders down to the store
            folder = data.joinpath(*inner[:depth])
            os.chown(folder, -1, gid)
            folder.chmod(0o710)
    for walked, _, files in os.walk(root):
        os.chown(walked, -1, gid)
        os.chmod(walked, 0o2770)  # noqa: S103 - setgid: what is created inside gets the group
        for name in files:
            path = os.path.join(walked, name)
            if not os.path.islink(path):
                os.chown(path, -1, gid)
                os.chmod(path, 0o660)
    os.umask(0o007)
    reach = [sys.executable, "-c", "import os, sys; sys.exit(not os.access(sys.argv[1], 7))",
             str(root)]
    if subprocess.run(reach, user=user.pw_uid, group=gid, extra_groups=[], env=_python_env(),
                      check=False, capture_output=True, timeout=60).returncode:
        raise PermissionError(
            f"jobs run as user {user.pw_name} (bubblewrap is missing), who cannot reach the "
            f"artifact store {root}: a folder above it is closed to that user; make the folders "
            "above the data directory traversable (chmod o+x), or install bubblewrap")
    return (f"jobs run as user {user.pw_name} (bubblewrap is missing); the artifact store "
            f"{root} is shared with its group ({gid})")
