"""A recording double of moveit_py's API as MoveIt 2.12.4 binds it (MoveItPy, PlanningComponent,
PlanRequestParameters, RobotState, the planning scene monitor), for MoveItPyBackend's tests, in this process or
in the motion process (``gil_holding_backend``). Its plan() fails a Pilz LIN request from a moving start state,
as Pilz does, and can hold the GIL for a while, as moveit_py's plan() does.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

JAZZY_INIT_DOC = (
    "__init__(self: moveit.planning.MoveItPy, node_name: str = 'moveit_py', name_space: str = '', "
    "launch_params_filepaths: list[str] = [], config_dict: object = None, "
    "provide_planning_service: bool = True, remappings: Optional[dict[str, str]] = None) -> None"
)
JAZZY_EXECUTE_DOC = (
    "execute(self: moveit.planning.MoveItPy, robot_trajectory: RobotTrajectory, "
    "controllers: list[str]) -> ExecutionStatus"
)
PILZ_VELOCITY_TOLERANCE = 1e-8  # pilz_industrial_motion_planner/trajectory_generator.hpp


class RobotStateDouble:
    """moveit.core.robot_state.RobotState: joint_velocities is a dict property; copies are independent."""

    def __init__(self, velocities: dict[str, float]) -> None:
        self._velocities = dict(velocities)

    @property
    def joint_velocities(self) -> dict[str, float]:
        return dict(self._velocities)

    @joint_velocities.setter
    def joint_velocities(self, values: dict[str, float]) -> None:
        self._velocities.update(values)

    def __deepcopy__(self, memo):
        return RobotStateDouble(self._velocities)


class SceneMonitorDouble:
    def __init__(self, state: RobotStateDouble) -> None:
        self.scene = type("Scene", (), {"current_state": state})()

    def read_only(self):
        from contextlib import nullcontext

        return nullcontext(self.scene)


class Plan:
    def __init__(self, ok: bool) -> None:
        self.ok, self.trajectory = ok, "trajectory"

    def __bool__(self) -> bool:
        return self.ok


class PlanningComponentDouble:
    """Plans as Pilz and OMPL would as far as the start state goes: LIN fails on a moving start state."""

    def __init__(self, robot: Any) -> None:  # a MoveItPyDouble (made by moveit_double)
        self.robot, self.start, self.calls = robot, None, []

    def set_start_state_to_current_state(self) -> None:
        self.start = self.robot.monitor.scene.current_state

    def set_start_state(self, configuration_name=None, robot_state=None) -> None:
        assert (configuration_name is None) != (robot_state is None)
        self.start = robot_state

    def set_goal_state(self, pose_stamped_msg=None, pose_link=None) -> None:
        assert pose_stamped_msg is not None and pose_link
        self.calls.append(("goal", pose_link, pose_stamped_msg.header.frame_id))

    def plan(self, single_plan_parameters=None, multi_plan_parameters=None):
        params = single_plan_parameters
        self.robot.record("plan_start")
        if self.robot.plan_hold:
            # A C call that keeps the GIL, as moveit_py's plan() does (PyDLL does not release it).
            ctypes.PyDLL(None).usleep(int(self.robot.plan_hold * 1e6))
        self.robot.record("plan_end")
        moving = any(abs(v) > PILZ_VELOCITY_TOLERANCE for v in self.start.joint_velocities.values())
        ok = not (params.planner_id == "LIN" and moving)
        self.calls.append(("plan", params.planning_pipeline, params.planner_id, ok))
        return Plan(ok)


class PlanRequestParametersDouble:
    def __init__(self, robot, namespace) -> None:  # both positional and required, as bound
        self.namespace = namespace
        self.planning_pipeline, self.planner_id = "ompl", "RRTConnectkConfigDefault"


def moveit_double(
    init_doc: str = JAZZY_INIT_DOC,
    execute_doc: str = JAZZY_EXECUTE_DOC,
    plan_hold: float = 0.0,
    log_path: str | None = None,
):
    class MoveItPyDouble:
        made: list = []

        def record(self, event: str) -> None:
            """Append "<event> <CLOCK_MONOTONIC>" to the log file (shared across processes)."""
            if log_path:
                with open(log_path, "a") as log:
                    log.write(f"{event} {time.monotonic()}\n")

        def __init__(self, node_name="moveit_py", **kwargs) -> None:
            if "remappings" in kwargs and "remappings" not in init_doc:
                raise TypeError("__init__(): incompatible constructor arguments")
            self.kwargs = dict(kwargs, node_name=node_name)
            # An arm standing still: joint_states velocities are noise around 0.
            self.monitor = SceneMonitorDouble(RobotStateDouble({"joint1": 3e-5, "joint2": -1e-6}))
            self.arm = PlanningComponentDouble(self)
            self.executed: list = []
            self.plan_hold = plan_hold
            self.stopped = 0
            MoveItPyDouble.made.append(self)

        def get_planning_component(self, group):
            return self.arm

        def get_planning_scene_monitor(self):
            return self.monitor

        def execute(self, robot_trajectory, controllers):
            self.record("execute")
            self.executed.append((robot_trajectory, controllers))
            return True

        def get_trajectory_execution_manager(self):
            robot = self

            class Manager:
                def stop_execution(self, auto_clear=True):
                    robot.stopped += 1
                    robot.record("stop_execution")

            return Manager()

    MoveItPyDouble.__init__.__doc__ = init_doc
    MoveItPyDouble.execute.__doc__ = execute_doc
    return MoveItPyDouble


def gil_holding_backend(config, node_name, stop_flag, log_path: str, hold: float):
    """The motion process's factory in tests: MoveItPyBackend over the double, its plan() holding the GIL."""
    from cliport_ros.ros.moveit_backend import MoveItPyBackend

    api = moveit_double(plan_hold=hold, log_path=log_path)
    return MoveItPyBackend(
        config, node_name, api=(api, PlanRequestParametersDouble), log=lambda m: None, stop_flag=stop_flag
    )
