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
        "cliport_ros/_data/checkpoints/tiny-stack-block-pyramid-seq-seen-colors/model.safetensors",
        "cliport_ros/_data/checkpoints/tiny-stack-block-pyramid-seq-seen-colors/config.json",
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


@pytest.mark.parametrize(
    "name, task",
    [
        ("tiny-put-block-in-bowl-seen-colors", "put-block-in-bowl-seen-colors"),
        ("tiny-stack-block-pyramid-seq-seen-colors", "stack-block-pyramid-seq-seen-colors"),
    ],
)
def test_each_shipped_model_loads_fits_in_25_mb_and_is_the_one_its_task_gets(name, task, monkeypatch):
    from cliport_ros.model import Policy
    from cliport_ros.resources import checkpoint_path, shipped_checkpoint_for

    monkeypatch.delenv("CLIPORT_ROS_CHECKPOINT_DIR", raising=False)
    folder = checkpoint_path(name)
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 25_000_000
    assert shipped_checkpoint_for(task) == (folder, True)
    policy = Policy.load(folder, device="cpu")
    # a model may also record the tasks of the demos it was fine-tuned on; its own task comes first
    assert policy.cfg.name == "tiny" and policy.metadata["tasks"][0] == task and policy.metadata["nets"] == "all"
