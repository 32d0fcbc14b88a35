"""The moveit_py adapter's pure parts (no MoveIt here): which execute() signature a binding has, how MoveIt's
execution status maps to outcomes, the planning-scene boxes, and the clear error when moveit_py is missing."""

from __future__ import annotations

import pytest

from cliport_ros.execution import CellConfig, MotionStatus
from cliport_ros.execution.scene import collision_boxes
from cliport_ros.ros.moveit_backend import (
    EXECUTE_BLOCKING,
    EXECUTE_JAZZY,
    MoveItPyBackend,
    MoveItUnavailable,
    execute_style,
    execution_outcome,
)


@pytest.mark.parametrize(
    "doc, style",
    [
        (
            "execute(self: moveit.planning.MoveItPy, robot_trajectory: RobotTrajectory, controllers: list[str]) "
            "-> ExecutionStatus\n\nExecute a trajectory (planning group is inferred)",
            EXECUTE_JAZZY,
        ),
        (
            "execute(self: MoveItPy, robot_trajectory: RobotTrajectory, blocking: bool = True, "
            "controllers: List[str]) -> bool",
            EXECUTE_BLOCKING,
        ),
        (None, EXECUTE_JAZZY),
    ],
)
def test_execute_style_from_the_binding_docstring(doc, style):
    assert execute_style(doc) == style


def test_humbles_moveit_py_is_refused_with_the_reason():
    with pytest.raises(MoveItUnavailable, match="Humble.*supports ROS 2 Jazzy"):
        execute_style(
            "execute(self: MoveItPy, group_name: str, robot_trajectory: RobotTrajectory, blocking: bool = True) -> bool"
        )


class Status:
    def __init__(self, status: str):
        self.status = status


@pytest.mark.parametrize(
    "value, status",
    [
        (True, MotionStatus.SUCCEEDED),
        (False, MotionStatus.EXECUTION_FAILED),
        (Status("SUCCEEDED"), MotionStatus.SUCCEEDED),
        (Status("PREEMPTED"), MotionStatus.STOPPED),
        (Status("TIMED_OUT"), MotionStatus.TIMEOUT),
        (Status("ABORTED"), MotionStatus.EXECUTION_FAILED),
    ],
)
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


# ----- MoveItPyBackend against a recording double of moveit_py's API (test/moveit_doubles.py) --------------
from moveit_doubles import PlanRequestParametersDouble, moveit_double  # noqa: E402


def test_linear_moves_plan_from_the_current_state_at_rest():
    """Pilz LIN refuses any start velocity above 1e-8; the noise of a still arm's joint_states would fail
    every straight move. Free moves keep the current state as it is."""
    from cliport_ros.types import Pose

    api = moveit_double()
    backend = MoveItPyBackend(CellConfig(), api=(api, PlanRequestParametersDouble), log=lambda m: None)
    robot = api.made[0]
    target = Pose((0.5, 0.0, 0.2), (1.0, 0.0, 0.0, 0.0))
    assert backend.plan_and_execute(target, linear=True).ok
    assert backend.plan_and_execute(target, linear=False).ok
    plans = [c for c in robot.arm.calls if c[0] == "plan"]
    assert plans == [
        ("plan", "pilz_industrial_motion_planner", "LIN", True),
        ("plan", "ompl", "RRTConnectkConfigDefault", True),
    ]
    # The scene's own state is untouched (the start state is a copy).
    assert robot.monitor.scene.current_state.joint_velocities["joint1"] == 3e-5
    assert robot.executed == [("trajectory", ["scaled_joint_trajectory_controller"])] * 2


def test_the_planning_scene_is_published_beside_move_groups():
    api = moveit_double()
    MoveItPyBackend(CellConfig(), node_name="moveit_py", api=(api, PlanRequestParametersDouble), log=lambda m: None)
    assert api.made[0].kwargs["remappings"] == {"monitored_planning_scene": "/moveit_py/monitored_planning_scene"}
    # A moveit_py from before MoveIt 2.12.3 has no remappings: built without, and the log says what follows.
    older = moveit_double(init_doc="__init__(self, node_name: str = 'moveit_py', config_dict: object = None)")
    logged: list[str] = []
    MoveItPyBackend(CellConfig(), api=(older, PlanRequestParametersDouble), log=logged.append)
    assert "remappings" not in older.made[0].kwargs
    assert "publishes /monitored_planning_scene over move_group's" in logged[0]
