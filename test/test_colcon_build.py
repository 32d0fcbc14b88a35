"""`colcon build` (colcon from PyPI, the venv as the ROS underlay) builds and installs the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_colcon_build_installs_interfaces_package_nodes_and_data(tmp_path):
    ws = tmp_path / "ws"
    env = dict(os.environ, COLCON_WS=str(ws), VIRTUAL_ENV=str(Path(sys.prefix)))
    done = subprocess.run(
        ["bash", str(REPO / "test" / "colcon_build.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    prefix = ws / "install" / "cliport_ros"
    for node in (
        "cliport_node",
        "sim_node",
        "moveit_executor",
        "fake_franka_hand",
        "fake_suction",
        "doctor",
        "cliport",
    ):
        script = prefix / "lib" / "cliport_ros" / node
        assert script.is_file() and os.access(script, os.X_OK), f"{node} not installed for ros2 run"
    share = prefix / "share" / "cliport_ros"
    assert (share / "package.xml").is_file()
    assert (share / "config" / "cameras_sim.yaml").is_file()
    assert (share / "msg" / "PickPlace.msg").is_file() and (share / "action" / "FollowInstruction.action").is_file()
    site = next((prefix / "lib").glob("python3*/site-packages"))

    # In the install, the Python package and the generated interfaces are one package.
    probe = (
        "import cliport_ros, cliport_ros.msg, cliport_ros.action, cliport_ros.geometry;"
        "print(cliport_ros.__file__);"
        "print(cliport_ros.msg.PickPlace().PRIMITIVE_PICK_PLACE, cliport_ros.action.ExecutePickPlace.Result.CANCELED)"
    )
    run_env = dict(
        os.environ,
        PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        LD_LIBRARY_PATH=f"{prefix / 'lib'}{os.pathsep}{os.environ.get('LD_LIBRARY_PATH', '')}",
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=run_env, cwd=str(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == str(site / "cliport_ros" / "__init__.py")
    assert lines[1:] == ["pick_place", "8"]

    # `ros2 run cliport_ros moveit_executor`: its motion process (multiprocessing spawn) imports the installed
    # script again; without a __main__ guard the child would start a second node instead of MoveIt.
    executor = subprocess.run(
        [
            sys.executable,
            str(prefix / "lib" / "cliport_ros" / "moveit_executor"),
            "--ros-args",
            "--params-file",
            str(share / "config" / "ur5.yaml"),
        ],
        env=run_env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert executor.returncode == 2, executor.stdout + executor.stderr
    assert "the motion process did not start: MoveItUnavailable: moveit_py is not importable" in executor.stderr
