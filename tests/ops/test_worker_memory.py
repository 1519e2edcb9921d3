"""How a long-lived worker treats the memory its jobs free (glibc's malloc), in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = '''
import json
from forge_ops.execution._worker_tuning import hold_freed_memory, release_freed_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

def churn():
    """Free 200 MB of 1 MB blocks, as a training iteration frees its activations."""
    blocks = [bytearray(1 << 20) for _ in range(200)]
    full = rss_mb()
    del blocks
    return full, rss_mb()

seen = {}
hold_freed_memory(True)  # a CPU job
full, after = churn()
release_freed_memory()  # the job ended
seen["cpu"] = {"full": full, "after_free": after, "after_release": rss_mb()}
hold_freed_memory(False)  # a GPU job next, on the same worker
full, after = churn()
seen["gpu"] = {"full": full, "after_free": after}
print(json.dumps(seen))
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_cpu_jobs_keep_freed_memory_until_they_end_and_gpu_jobs_do_not() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    seen = json.loads(out)
    cpu, gpu = seen["cpu"], seen["gpu"]
    assert cpu["after_free"] > cpu["full"] - 20  # kept while the job runs: no fault-in again
    assert cpu["after_release"] < cpu["full"] - 150  # given back when it ends
    assert gpu["after_free"] < gpu["full"] - 150  # a GPU job runs with glibc's own thresholds
