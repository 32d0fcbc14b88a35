"""The waypoint plan: heights, orientations and frames for both shipped cells, and the safety rejections."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from cliport_ros.execution import CellConfig, ErrorCode, PlanRejected, Stage, plan_pick_place
from cliport_ros.geometry import quaternion_to_matrix
from cliport_ros.types import PickPlace, Pose

CONFIG = Path(__file__).resolve().parents[1] / "config"


def cell(name: str) -> CellConfig:
    return CellConfig.from_yaml_dict(yaml.safe_load((CONFIG / name).read_text()))


def decision(
    frame: str,
    pick=(0.4, -0.2, 0.04),
    pick_yaw=0.0,
    place=(0.6, 0.25, 0.03),
    place_yaw=math.pi / 4,
    primitive="pick_place",
) -> PickPlace:
    return PickPlace(
        Pose.from_xyz_yaw(pick, pick_yaw), Pose.from_xyz_yaw(place, place_yaw), frame_id=frame, primitive=primitive
    )


def axes(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """The tool's x and z axes in the base frame."""
    m = quaternion_to_matrix(pose.orientation)
    return m[:, 0], m[:, 2]


def test_ur5_pick_place_sequence_heights_frames_and_link_offset():
    config = cell("ur5.yaml")
    waypoints = plan_pick_place(decision("base_link"), config)
    assert [(w.stage, w.motion, w.gripper) for w in waypoints] == [
        (Stage.APPROACH, "free", "none"),
        (Stage.GRASP, "linear", "grasp"),
        (Stage.LIFT, "linear", "none"),
        (Stage.MOVE, "free", "none"),
        (Stage.RELEASE, "linear", "release"),
        (Stage.RETREAT, "linear", "none"),
    ]
    assert {w.frame_id for w in waypoints} == {"base_link"}
    # Suction: TCP on the surface (z 0.04); the object (0.04 tall) lands 0.01 above the place surface.
    tcp_z = [w.tcp_pose.position[2] for w in waypoints]
    assert tcp_z == pytest.approx([0.14, 0.04, 0.14, 0.18, 0.08, 0.18])
    expected_xy = [(0.4, -0.2)] * 3 + [(0.6, 0.25)] * 3
    assert [w.tcp_pose.position[:2] for w in waypoints] == [pytest.approx(xy) for xy in expected_xy]
    for w in waypoints:
        x_axis, z_axis = axes(w.tcp_pose)
        assert z_axis == pytest.approx([0.0, 0.0, -1.0], abs=1e-9)
        # tool0 sits 0.1 m up the tool axis from the suction tip.
        assert np.subtract(w.link_pose.position, w.tcp_pose.position) == pytest.approx([0.0, 0.0, 0.1])
        assert w.link_pose.orientation == pytest.approx(w.tcp_pose.orientation)
    # Pick at yaw 0: tool x along base x; place turns the object by +45 degrees.
    assert axes(waypoints[0].tcp_pose)[0] == pytest.approx([1.0, 0.0, 0.0], abs=1e-9)
    s = math.sqrt(0.5)
    assert axes(waypoints[4].tcp_pose)[0] == pytest.approx([s, s, 0.0], abs=1e-9)


def test_franka_pick_place_grasps_below_the_top_and_composes_yaws():
    config = cell("franka.yaml")
    waypoints = plan_pick_place(decision("fr3_link0", pick_yaw=math.pi / 6, place_yaw=math.pi / 3), config)
    assert {w.frame_id for w in waypoints} == {"fr3_link0"}
    # Fingers close 0.02 below the 0.04 top; release: 0.03 + (0.02 - 0.0) + 0.01.
    assert [w.tcp_pose.position[2] for w in waypoints] == pytest.approx([0.12, 0.02, 0.12, 0.16, 0.06, 0.16])
    for w in waypoints:
        assert w.link_pose == w.tcp_pose  # fr3_hand_tcp is the TCP
        assert axes(w.tcp_pose)[1] == pytest.approx([0.0, 0.0, -1.0], abs=1e-9)
    pick_x = axes(waypoints[1].tcp_pose)[0]
    place_x = axes(waypoints[4].tcp_pose)[0]
    assert math.atan2(pick_x[1], pick_x[0]) == pytest.approx(math.pi / 6)
    assert math.atan2(place_x[1], place_x[0]) == pytest.approx(math.pi / 6 + math.pi / 3)


def test_grasp_depth_is_cut_short_at_min_height_for_thin_objects():
    waypoints = plan_pick_place(decision("fr3_link0", pick=(0.4, 0.0, 0.01)), cell("franka.yaml"))
    assert waypoints[1].tcp_pose.position[2] == pytest.approx(0.005)


def test_push_sweeps_at_push_height_facing_the_push():
    config = cell("ur5.yaml")
    waypoints = plan_pick_place(
        decision("base_link", pick=(0.4, -0.2, 0.0), place=(0.4, 0.1, 0.0), primitive="push"), config
    )
    assert [(w.stage, w.motion, w.gripper) for w in waypoints] == [
        (Stage.APPROACH, "free", "none"),
        (Stage.GRASP, "linear", "none"),
        (Stage.MOVE, "linear", "none"),
        (Stage.RETREAT, "linear", "none"),
    ]
    assert [w.tcp_pose.position for w in waypoints] == [
        pytest.approx(p) for p in [(0.4, -0.2, 0.11), (0.4, -0.2, 0.01), (0.4, 0.1, 0.01), (0.4, 0.1, 0.11)]
    ]
    assert axes(waypoints[2].tcp_pose)[0] == pytest.approx([0.0, 1.0, 0.0], abs=1e-9)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(pick=(0.8, 0.0, 0.04)), "above pick target rejected in base_link: x=0.800 outside [0.18, 0.68]"),
        (dict(place=(0.5, -0.55, 0.04)), "above place target rejected in base_link: y=-0.550 outside [-0.5, 0.5]"),
        (dict(pick=(0.5, 0.0, 0.002)), "pick surface z=0.002 is below min_height 0.005"),
        (dict(place=(0.5, 0.0, -0.05)), "place z=-0.050 outside the workspace heights [0.0, 0.28]"),
        (dict(pick=(0.5, 0.0, 0.4)), "pick z=0.400 outside the workspace heights [0.0, 0.28]"),
    ],
)
def test_out_of_bounds_targets_are_rejected_with_a_message(kwargs, expected):
    with pytest.raises(PlanRejected) as error:
        plan_pick_place(decision("base_link", **kwargs), cell("ur5.yaml"))
    assert error.value.code == ErrorCode.OUT_OF_WORKSPACE
    assert expected in error.value.message and "nothing moved" in error.value.message


def test_targets_above_max_height_are_rejected():
    config = CellConfig.from_parameters({"max_height": 0.15})
    with pytest.raises(PlanRejected, match=r"above place target rejected .*z=0.180 above max_height 0.15"):
        plan_pick_place(decision("base_link"), config)


def test_wrong_frame_is_an_invalid_goal():
    with pytest.raises(PlanRejected) as error:
        plan_pick_place(decision("camera_link"), cell("ur5.yaml"))
    assert error.value.code == ErrorCode.INVALID_GOAL
    assert "'camera_link' is not the cell's base frame 'base_link'" in error.value.message
