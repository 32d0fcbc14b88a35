"""The EGL renderer and torch's triton in one process, in either order (a crash seen in `cliport sim`)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from cliport_ros.sim import SimEnvironment
env = SimEnvironment("put-block-in-bowl-seen-colors", renderer="auto")
env.reset(10001, "test")
import open_clip, torchvision  # pulls torch._dynamo and triton in after the simulator's renderer
print("renderer", env.renderer, "ok")
"""


def test_simulator_first_then_open_clip_does_not_crash():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-1500:]}"
    assert any(line.startswith("renderer ") and line.endswith(" ok") for line in done.stdout.splitlines())
