"""The doctor's judgements on what it observed (ROS-free)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cliport_ros.execution import CellConfig
from cliport_ros.execution.preflight import (
    check_controllers,
    check_description,
    check_gripper,
    check_reach,
    check_stream,
    check_tf,
    connected,
    gripper_endpoints,
)

CONFIG = Path(__file__).resolve().parents[1] / "config"


def cell(name: str) -> CellConfig:
    return CellConfig.from_yaml_dict(yaml.safe_load((CONFIG / name).read_text()))


@pytest.mark.parametrize("name, robot", [("ur5.yaml", "ur5e"), ("ur5.yaml", "ur5"), ("franka.yaml", "fr3")])
def test_the_shipped_workspaces_are_within_reach(name, robot):
    check = check_reach(cell(name), robot)
    assert check.ok, check.detail


def test_a_workspace_out_of_reach_is_a_problem_with_its_fix():
    config = CellConfig.from_parameters({"workspace.x_min": 0.25, "workspace.x_max": 0.75})
    check = check_reach(config, "ur5")
    assert not check.ok
    assert check.detail == ("workspace corner (0.75, -0.5) is 0.901 m from the base axis; the ur5 reaches 0.85 m")
    assert "closer to the base" in check.fix
    assert not check_reach(config, "ur99").ok


def test_description_checks_name_what_is_missing():
    urdf = '<robot name="r"><link name="base_link"/><link name="tool0"/></robot>'
    srdf = '<robot name="r"><group name="manipulator"/></robot>'
    checks = check_description(urdf, srdf, CellConfig())
    assert [c.ok for c in checks] == [True, True, False]
    assert checks[2].fix == "set planning_group to one of manipulator"
    missing = check_description(None, None, CellConfig())
    assert [c.name for c in missing] == ["robot description", "planning group"] and not any(c.ok for c in missing)
    assert not check_description("<robot", srdf, CellConfig())[0].ok


def test_controllers_must_be_loaded_and_active():
    states = {"scaled_joint_trajectory_controller": "active", "joint_trajectory_controller": "inactive"}
    assert [c.ok for c in check_controllers(states, ["scaled_joint_trajectory_controller"])] == [True]
    inactive, missing = check_controllers(states, ["joint_trajectory_controller", "forward_position_controller"])
    assert (inactive.ok, inactive.detail) == (False, "inactive, not active")
    assert (missing.ok, missing.detail) == (False, "not loaded")
    assert not check_controllers(None, ["x"])[0].ok


def test_gripper_endpoints_and_their_types():
    franka = cell("franka.yaml")
    assert gripper_endpoints(franka) == [
        ("action", "/franka_gripper/grasp", "franka_msgs/action/Grasp"),
        ("action", "/franka_gripper/move", "franka_msgs/action/Move"),
    ]
    offered = {
        "/franka_gripper/grasp": ["franka_msgs/action/Grasp"],
        "/franka_gripper/move": ["control_msgs/action/GripperCommand"],
    }
    grasp, move = check_gripper(franka, offered)
    assert grasp.ok and not move.ok and "not franka_msgs/action/Move" in move.detail
    ur = cell("ur5.yaml")
    assert not check_gripper(ur, {})[0].ok


def test_streams_need_messages_a_rate_and_a_readable_encoding():
    assert check_stream("c", 30, 2.0, 5.0, {"rgb8"}, ["rgb8", "bgr8"]).ok
    assert check_stream("c", 0, 2.0, 5.0).detail == "no message in 2.0 s"
    assert check_stream("c", 6, 2.0, 5.0).detail == "3.0 Hz, below 5 Hz"
    assert check_stream("d", 30, 2.0, 5.0, {"32SC1"}, ["16UC1", "32FC1"]).detail == "encoding 32SC1"


def test_tf_frames_connect_through_any_parent():
    edges = {"camera_link": "base_link", "camera_color_optical_frame": "camera_link", "tool0": "base_link"}
    assert connected(edges, "base_link", "camera_color_optical_frame")
    assert connected(edges, "tool0", "camera_color_optical_frame")
    assert not connected(edges, "base_link", "other_camera_frame")
    assert not connected({"a": "b", "b": "a"}, "a", "c")  # a loop ends the walk
    checks = check_tf(edges, "base_link", {"front": "camera_color_optical_frame", "side": None, "top": "top_optical"})
    assert [c.ok for c in checks] == [True, False, False]
