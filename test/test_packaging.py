"""`pip install .` (no ROS): the wheel carries the package, its config and the shipped model, and the commands."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_has_data_files_and_console_scripts(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(REPO),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("cliport_ros-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for required in (
        "cliport_ros/__init__.py",
        "cliport_ros/cli.py",
        "cliport_ros/sim/environment.py",
        "cliport_ros/_data/config/cameras_sim.yaml",
        "cliport_ros/_data/config/cliport_node.yaml",
        "cliport_ros/_data/checkpoints/tiny-put-block-in-bowl-seen-colors/model.safetensors",
        "cliport_ros/_data/checkpoints/tiny-put-block-in-bowl-seen-colors/config.json",
    ):
        assert required in names, required
    for script in (
        "cliport = cliport_ros.cli:main",
        "cliport_node = cliport_ros.ros.cliport_node:main",
        "sim_node = cliport_ros.ros.sim_node:main",
    ):
        assert script in entry_points
    # Generated interfaces are not in it: they come from the ROS build (colcon) or `make`.
    assert not any(n.startswith("cliport_ros/msg/") for n in names)
