"""CellConfig: the shipped cell files load, defaults are conservative, and every error names its parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cliport_ros.execution import CellConfig, ErrorCode, Stage
from cliport_ros.geometry import Workspace

CONFIG = Path(__file__).resolve().parents[1] / "config"


def load(name: str) -> CellConfig:
    return CellConfig.from_yaml_dict(yaml.safe_load((CONFIG / name).read_text()))


def test_shipped_cells_load_with_their_robot_names():
    ur5, franka = load("ur5.yaml"), load("franka.yaml")
    assert (ur5.planning_group, ur5.ee_link, ur5.base_frame) == ("ur_manipulator", "tool0", "base_link")
    assert ur5.controllers == ("scaled_joint_trajectory_controller",)
    assert (ur5.gripper.type, ur5.gripper.io_pin, ur5.tcp_offset) == ("suction_ur_io", 16, (0.0, 0.0, 0.1))
    assert (franka.planning_group, franka.ee_link) == ("fr3_arm", "fr3_hand_tcp")
    assert franka.base_frame == "fr3_link0"
    assert franka.controllers == ("fr3_arm_controller",)
    # franka_gripper (franka_ros2 >= 2.0) is /franka_gripper; its Grasp takes widths between the fingers.
    assert (franka.gripper.type, franka.gripper.action) == ("franka_hand", "/franka_gripper")
    assert (franka.gripper.open_position, franka.gripper.closed_position) == (0.08, 0.0)
    assert franka.workspace.frame_id == "fr3_link0"
    for cell in (ur5, franka):
        # Conservative speeds on real hardware.
        assert max(cell.velocity_scaling, cell.acceleration_scaling) <= 0.1
        assert max(cell.linear_velocity_scaling, cell.linear_acceleration_scaling) <= 0.05


def test_default_workspace_is_the_single_source():
    assert CellConfig().workspace == Workspace()
    # The real cells shift the workspace towards the base (its far corners in the arm's reach) and keep its
    # extent: the shipped model's image size.
    default = Workspace()
    for name in ("ur5.yaml", "franka.yaml"):
        ws = load(name).workspace
        assert (ws.x_max - ws.x_min, ws.y_max - ws.y_min) == pytest.approx(
            (default.x_max - default.x_min, default.y_max - default.y_min)
        )
        assert (ws.z_min, ws.z_max, ws.pixel_size) == (default.z_min, default.z_max, default.pixel_size)


def test_parameters_round_trip_and_ints_become_floats():
    params = CellConfig().to_parameters()
    assert params["workspace.x_min"] == 0.25 and params["gripper.type"] == "suction_service"
    assert isinstance(params["tool_orientation"], list)
    assert CellConfig.from_parameters(params) == CellConfig()
    config = CellConfig.from_parameters({"approach_height": 1 / 5, "workspace.z_min": 0, "min_height": 0})
    assert config.min_height == 0.0 and isinstance(config.workspace.z_min, float)


@pytest.mark.parametrize(
    "params, named",
    [
        ({"velocity_scaling": 0.0}, "'velocity_scaling' must be in (0.0, 1.0]"),
        ({"linear_acceleration_scaling": 1.5}, "'linear_acceleration_scaling' must be in (0.0, 1.0]"),
        ({"planning_group": ""}, "'planning_group'"),
        ({"tool_orientation": [0.0, 0.0, 0.0, 2.0]}, "'tool_orientation' must be a unit quaternion"),
        ({"tool_orientation": [1.0, 0.0]}, "'tool_orientation' must be a list of 4 numbers"),
        ({"tcp_offset": [0.0, 0.0, "a"]}, "'tcp_offset[2]' must be a finite number"),
        ({"min_height": -0.1}, "'min_height' (-0.1) must not be below 'workspace.z_min'"),
        ({"max_height": 0.001}, "'max_height' (0.001) must be above 'min_height'"),
        ({"approach_height": 0.0}, "'approach_height' must be in (0.0, 0.5]"),
        (
            {"gripper.type": "magnet"},
            "'gripper.type' must be one of suction_service, suction_ur_io, parallel_jaw, franka_hand",
        ),
        (
            {"gripper.type": "franka_hand", "gripper.open_position": 0.1, "gripper.closed_position": 0.0},
            "'gripper.open_position' must be in (0.0, 0.08]",
        ),
        (
            {"gripper.type": "franka_hand", "gripper.open_position": 0.08, "gripper.closed_position": -0.01},
            "'gripper.closed_position' must be a width in [0, open_position)",
        ),
        ({"gripper.io_pin": 40}, "'gripper.io_pin' must be an integer in [0, 17]"),
        ({"gripper.timeout": 0.0}, "'gripper.timeout'"),
        ({"scene.table_thickness": -1.0}, "'scene.table_thickness'"),
        ({"retreat_on_failure": 1}, "'retreat_on_failure' must be true or false"),
        ({"controllers": "scaled_joint_trajectory_controller"}, "'controllers' must be a list"),
        ({"workspace.x_max": 0.1}, "'workspace.*' invalid: Workspace.x_min (0.25) must be below Workspace.x_max"),
        ({"velocity": 0.5}, "unknown cell parameter(s) ['velocity']"),
    ],
)
def test_validation_errors_name_the_parameter(params, named):
    with pytest.raises(ValueError) as error:
        CellConfig.from_parameters(params)
    assert named in str(error.value)


def test_yaml_typo_is_an_error_not_a_silent_default():
    document = yaml.safe_load((CONFIG / "ur5.yaml").read_text())
    document["moveit_executor"]["ros__parameters"]["velocity_scalling"] = 0.5
    expected = r"unknown parameter\(s\) \['velocity_scalling'\] for moveit_executor"
    with pytest.raises(ValueError, match=expected):
        CellConfig.from_yaml_dict(document)


def test_codes_mirror_the_generated_action_constants():
    action = pytest.importorskip("cliport_ros.action")
    result, feedback = action.ExecutePickPlace.Result, action.ExecutePickPlace.Feedback
    for code in ErrorCode:
        assert getattr(result, code.name) == code.value
    for stage in Stage:
        assert getattr(feedback, stage.name) == stage.value
    assert [s.label for s in Stage] == ["approach", "grasp", "lift", "move", "release", "retreat"]
