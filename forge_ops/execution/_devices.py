"""The GPUs this machine offers jobs of the local executor, counted once, in a child process:
the executor's own process must not start CUDA (it would not survive the fork server's forks)
nor pay for importing torch when no job asks for a GPU."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

from ._plan import JobSpec

_log = logging.getLogger(__name__)
_COUNT = ("import torch\n"
          "print(torch.cuda.device_count() if torch.cuda.is_available() else 0)\n")
_counted: list[int] = []
_lock = threading.Lock()


def local_gpu_count() -> int:
    """CUDA devices torch sees here (0 if it cannot tell), asked once per process."""
    with _lock:
        if not _counted:
            try:
                done = subprocess.run([sys.executable, "-c", _COUNT], capture_output=True,
                                      text=True, timeout=120, check=True)
                _counted.append(int(done.stdout.strip().splitlines()[-1]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
                _log.warning("could not count this machine's GPUs (%s); GPU jobs of the "
                             "local executor will be refused", exc)
                _counted.append(0)
        return _counted[0]


def local_infeasible(job: JobSpec) -> str | None:
    """Why the local executor can never run ``job`` (it asks for more GPUs than this machine
    has), or None. A job that asks for a GPU must not train on the CPU without a word."""
    wanted = job.settings.num_gpus
    if wanted <= 0:
        return None
    have = local_gpu_count()
    if wanted <= have:
        return None
    return (f"infeasible: {job.name} asks for num_gpus={wanted:g} but this machine has "
            f"{have} GPU(s) that torch can use, so the local executor cannot run it; set the "
            "node's num_gpus to 0 to train on the CPU, or run it on a Ray cluster with GPUs")
