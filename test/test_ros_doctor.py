"""cliport doctor against a fake cell on a real ROS graph (test/fake_cell.py, with ur_msgs,
controller_manager_msgs and tf2_msgs generated here from their released definitions): a healthy cell passes
every item; a broken one gets each problem named with its fix, and exit code 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from upstream_interfaces import build_all

HERE = Path(__file__).resolve().parent

PROBE = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
import rclpy
from rclpy.executors import MultiThreadedExecutor
from fake_cell import FakeCell
from cliport_ros.cli import main

context = rclpy.Context()
rclpy.init(context=context, args=[])
cell = FakeCell(context, broken=sys.argv[2] == "broken")
executor = MultiThreadedExecutor(num_threads=2, context=context)
executor.add_node(cell)
spinner = threading.Thread(target=executor.spin, daemon=True)
spinner.start()
code = main(["doctor", "ur5", *sys.argv[3:], "--window", "2", "--distro", "jazzy"])
executor.shutdown()
spinner.join(10)
cell.destroy_node()
rclpy.try_shutdown(context=context)
print(f"exit {code}")
"""


def doctor(state: str, *arguments: str) -> tuple[int, list[str]]:
    env = build_all("ur_msgs", "controller_manager_msgs", "tf2_msgs")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(HERE), state, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines and lines[-1].startswith("exit "), done.stderr[-3000:]
    return int(lines[-1].split()[1]), lines[:-1]


def test_a_healthy_cell_passes_every_item():
    code, lines = doctor("healthy")
    assert code == 0, "\n".join(lines)
    assert not [line for line in lines if line.startswith("PROBLEM")]
    text = "\n".join(lines)
    for item in (
        "ROS distribution: jazzy",
        "base frame: link base_link",
        "TCP link: link tool0",
        "planning group: ur_manipulator is in the SRDF",
        "controller scaled_joint_trajectory_controller: active",
        "gripper service: /io_and_status_controller/set_io (ur_msgs/srv/SetIO) is served",
        "camera camera color /camera/camera/color/image_raw:",
        "rgb8",
        "camera camera depth /camera/camera/aligned_depth_to_color/image_raw:",
        "16UC1",
        "TF camera: base_link -> camera_color_optical_frame",
        "reach: farthest workspace corner 0.844 m",
        "checkpoint: the shipped model loads",
    ):
        assert item in text, item
    assert lines[-1].endswith("0 problem(s)")


def test_a_broken_cell_gets_each_problem_with_its_fix():
    code, lines = doctor(
        "broken", "joint_controller:=joint_trajectory_controller", "checkpoint:=/nonexistent", "ee_link:=flange"
    )
    assert code == 2, "an unknown launch argument is a usage error"
    code, lines = doctor(
        "broken",
        "joint_controller:=joint_trajectory_controller",
        "checkpoint:=/nonexistent",
        f"cell_config:={HERE / 'data' / 'far_cell.yaml'}",
    )
    text = "\n".join(lines)
    assert code == 1, text
    problems = [line for line in lines if line.startswith("PROBLEM")]
    expected = [
        "controller joint_trajectory_controller: inactive, not active",
        "camera camera depth /camera/camera/aligned_depth_to_color/image_raw: no message",
        "TF camera: no TF between base_link and camera_color_optical_frame",
        "reach: workspace corner (0.75, -0.5) is 0.901 m from the base axis; the ur5e reaches 0.85 m",
        "checkpoint: /nonexistent:",
    ]
    for item in expected:
        assert any(item in line for line in problems), f"{item!r} not in:\n{text}"
    fixes = [line.strip() for line in lines if line.strip().startswith("fix:")]
    assert len(fixes) == len(problems)
    assert "ros2 control switch_controllers --activate joint_trajectory_controller" in text
