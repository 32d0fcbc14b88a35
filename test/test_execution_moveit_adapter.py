"""The moveit_py adapter's pure parts (no MoveIt here): which execute() signature a binding has, how MoveIt's
execution status maps to outcomes, the planning-scene boxes, and the clear error when moveit_py is missing."""

from __future__ import annotations

import pytest

from cliport_ros.execution import CellConfig, MotionStatus
from cliport_ros.execution.scene import collision_boxes
from cliport_ros.ros.moveit_backend import (
    EXECUTE_BLOCKING,
    EXECUTE_HUMBLE,
    EXECUTE_JAZZY,
    MoveItPyBackend,
    MoveItUnavailable,
    execute_style,
    execution_outcome,
)


@pytest.mark.parametrize("doc, style", [
    ("execute(self: moveit.planning.MoveItPy, robot_trajectory: RobotTrajectory, controllers: list[str]) "
     "-> ExecutionStatus\n\nExecute a trajectory (planning group is inferred)", EXECUTE_JAZZY),
    ("execute(self: MoveItPy, robot_trajectory: RobotTrajectory, blocking: bool = True, "
     "controllers: List[str]) -> bool", EXECUTE_BLOCKING),
    ("execute(self: MoveItPy, group_name: str, robot_trajectory: RobotTrajectory, blocking: bool = True) "
     "-> bool", EXECUTE_HUMBLE),
    (None, EXECUTE_JAZZY),
])
def test_execute_style_from_the_binding_docstring(doc, style):
    assert execute_style(doc) == style


class Status:
    def __init__(self, status: str):
        self.status = status


@pytest.mark.parametrize("value, status", [
    (True, MotionStatus.SUCCEEDED), (False, MotionStatus.EXECUTION_FAILED),
    (Status("SUCCEEDED"), MotionStatus.SUCCEEDED), (Status("PREEMPTED"), MotionStatus.STOPPED),
    (Status("TIMED_OUT"), MotionStatus.TIMEOUT), (Status("ABORTED"), MotionStatus.EXECUTION_FAILED),
])
def test_execution_status_mapping(value, status):
    assert execution_outcome(value).status is status


def test_aborted_message_names_the_status():
    assert execution_outcome(Status("ABORTED")).message == "trajectory execution ended with ABORTED"


def test_table_box_top_is_the_workspace_floor_and_ceiling_is_optional():
    (table,) = collision_boxes(CellConfig())
    assert table.id == "table"
    assert table.size == pytest.approx((0.9, 1.4, 0.05))
    assert table.center == pytest.approx((0.5, 0.0, -0.025))
    config = CellConfig.from_parameters({"scene.ceiling_height": 0.8, "scene.add_table": False})
    boxes = collision_boxes(config)
    assert [b.id for b in boxes] == ["ceiling"] and boxes[0].center[2] == pytest.approx(0.81)
    expected = r"'scene.ceiling_height' \(0.5\) must be 0 \(none\) or above 'max_height'"
    with pytest.raises(ValueError, match=expected):
        CellConfig.from_parameters({"scene.ceiling_height": 0.5})


def test_missing_moveit_py_is_a_clear_error():
    try:
        import moveit.planning  # noqa: F401 - only probing
        pytest.skip("moveit_py is installed here")
    except ImportError:
        pass
    with pytest.raises(MoveItUnavailable, match="moveit_py is not importable .*ros-jazzy-moveit-py"):
        MoveItPyBackend(CellConfig())
