"""A training process yields the CPU to the server's inference: every thread, and threads started
later, run at TRAIN_NICENESS; the server process itself is never reniced."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from monailabel_app.tasks.train import TRAIN_NICENESS
from tests.server import REPO_ROOT

PROBE = """
import json, os, sys, threading
if sys.argv[1] == "server":
    import monailabel.app  # what makes a process the MONAI Label server
from monailabel_app.tasks.train import yield_cpu_to_serving
stop = threading.Event()
before = threading.Thread(target=stop.wait)
before.start()
yield_cpu_to_serving()
after = threading.Thread(target=stop.wait)
after.start()
nice = {str(t): os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")}
stop.set()
print(json.dumps(nice))
"""


def _niceness(role: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, role], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_training_process_runs_every_thread_at_low_priority():
    nice = _niceness("training")
    assert len(nice) >= 3 and set(nice.values()) == {max(TRAIN_NICENESS, os.nice(0))}


def test_the_server_process_keeps_its_priority():
    assert set(_niceness("server").values()) == {os.nice(0)}  # as started
