"""The MotionBackend over moveit_py (MoveIt 2's Python API).

moveit_py is imported only when a MoveItPyBackend is built, so this module imports (and its pure helpers are
tested) where MoveIt is absent. MoveItPy starts its own rclcpp node and executor thread; it reads its
parameters (robot description, kinematics, planning pipelines, the moveit_cpp YAML) from the --params-file
arguments the launch file gives this process (see launch/ur5_bringup.launch.py).

Not run against a live MoveIt on the machines this was written on: the calls follow moveit_py's bindings of
MoveIt 2.12.4 (ROS 2 Jazzy), checked in its sources (docs/real_cell.md, "Checked against upstream"), and are
tested against a recording double of that API. Humble's moveit_py has other signatures and is refused.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any

from cliport_ros.execution import CellConfig, MotionOutcome, MotionStatus
from cliport_ros.execution.scene import Box
from cliport_ros.types import Pose

# PlanRequestParameters namespaces in config/moveit_py_*.yaml.
FREE_PARAMETERS = "free_motion"
LINEAR_PARAMETERS = "linear_motion"

EXECUTE_JAZZY = "jazzy"  # execute(trajectory, controllers=[...])
EXECUTE_BLOCKING = "blocking"  # execute(trajectory, blocking=True, controllers=[...]) (early Jazzy builds)
# The topic MoveItCpp publishes its planning scene on for RViz, relative to its node's namespace: the same as
# move_group's, so both would publish /monitored_planning_scene and RViz would flicker between them.
MONITORED_PLANNING_SCENE = "monitored_planning_scene"


class MoveItUnavailable(RuntimeError):
    """moveit_py (or a message package it needs) is not installed."""


def execute_style(doc: str | None) -> str:
    """Which execute() signature a MoveItPy binding has, from its pybind11 docstring (the bindings carry no
    introspectable signature). Humble's (group_name first) is refused."""
    first = (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
    if "group_name" in first:
        raise MoveItUnavailable(
            "this moveit_py is ROS 2 Humble's (execute(group_name, ...)), whose planning API differs: "
            "cliport_ros supports ROS 2 Jazzy and later"
        )
    if "blocking" in first:
        return EXECUTE_BLOCKING
    return EXECUTE_JAZZY


def takes_remappings(doc: str | None) -> bool:
    """MoveItPy(..., remappings=...) exists from MoveIt 2.12.3 on (its constructor's pybind11 docstring)."""
    return "remappings" in (doc or "")


def at_rest(state: Any) -> Any:
    """A copy of a moveit_py RobotState with every joint velocity 0: Pilz refuses a start state with any joint
    velocity above 1e-8 (INVALID_ROBOT_STATE), and the measured velocities of an arm standing still are noise."""
    rest = copy.deepcopy(state)
    rest.joint_velocities = {name: 0.0 for name in rest.joint_velocities}
    return rest


def execution_outcome(value: Any) -> MotionOutcome:
    """MoveIt's execute() returns a bool on some releases and an ExecutionStatus (``.status`` a name such as
    SUCCEEDED, PREEMPTED, ABORTED, TIMED_OUT) on others."""
    if isinstance(value, bool):
        return MotionOutcome(
            MotionStatus.SUCCEEDED if value else MotionStatus.EXECUTION_FAILED,
            "" if value else "the controller did not complete the trajectory",
        )
    status = str(getattr(value, "status", value)).upper()
    if "SUCCEEDED" in status:
        return MotionOutcome(MotionStatus.SUCCEEDED)
    if "PREEMPTED" in status:
        return MotionOutcome(MotionStatus.STOPPED, "trajectory preempted")
    if "TIMED_OUT" in status:
        return MotionOutcome(MotionStatus.TIMEOUT, "trajectory execution timed out")
    return MotionOutcome(MotionStatus.EXECUTION_FAILED, f"trajectory execution ended with {status}")


class MoveItPyBackend:
    """Plans with OMPL (free) or Pilz LIN (linear) for the cell's end-effector link and executes on the cell's
    controllers."""

    def __init__(
        self,
        config: CellConfig,
        node_name: str = "moveit_py",
        log: Callable[[str], None] = print,
        api: tuple[Any, Any] | None = None,
        stop_flag: Any = None,
        params_files: Sequence[str] | None = None,
    ) -> None:
        """``api``: (MoveItPy, PlanRequestParameters); moveit.planning's when not given (tests give doubles).
        ``stop_flag``: an Event-like flag that stop() sets (a multiprocessing.Event shared with the node's
        process, see motion_process.py). ``params_files``: MoveItPy's parameter files (default: sys.argv's)."""
        from geometry_msgs.msg import PoseStamped

        if api is None:
            try:
                from moveit.planning import MoveItPy, PlanRequestParameters
            except ImportError as exc:
                raise MoveItUnavailable(
                    f"moveit_py is not importable ({exc}): install MoveIt 2's Python API (ros-jazzy-moveit-py) "
                    "and source the ROS environment, or serve ExecutePickPlace with sim_node instead"
                ) from exc
            api = (MoveItPy, PlanRequestParameters)
        MoveItPy, PlanRequestParameters = api
        self._config = config
        self._log = log
        self._pose_stamped = PoseStamped
        self._stop_requested = stop_flag if stop_flag is not None else threading.Event()
        self._style = execute_style(getattr(MoveItPy.execute, "__doc__", ""))
        kwargs: dict[str, Any] = {}
        if params_files is not None:
            kwargs["launch_params_filepaths"] = list(params_files)
        if takes_remappings(getattr(MoveItPy.__init__, "__doc__", "")):
            # Publish the planning scene beside move_group's, not over it.
            kwargs["remappings"] = {MONITORED_PLANNING_SCENE: f"/{node_name}/{MONITORED_PLANNING_SCENE}"}
        else:
            log(
                "this moveit_py (before MoveIt 2.12.3) cannot remap: it publishes /monitored_planning_scene "
                "over move_group's, and RViz may show the scene flicker"
            )
        self._robot = MoveItPy(node_name=node_name, **kwargs)
        self._arm = self._robot.get_planning_component(config.planning_group)
        self._free = PlanRequestParameters(self._robot, FREE_PARAMETERS)
        self._free.max_velocity_scaling_factor = config.velocity_scaling
        self._free.max_acceleration_scaling_factor = config.acceleration_scaling
        self._free.planning_time = config.planning_time
        self._linear = PlanRequestParameters(self._robot, LINEAR_PARAMETERS)
        # Straight lines come from the Pilz industrial planner (moveit_py has no Cartesian-path call).
        self._linear.planning_pipeline = "pilz_industrial_motion_planner"
        self._linear.planner_id = "LIN"
        self._linear.max_velocity_scaling_factor = config.linear_velocity_scaling
        self._linear.max_acceleration_scaling_factor = config.linear_acceleration_scaling
        self._linear.planning_time = config.planning_time
        log(f"moveit_py ready: group {config.planning_group}, link {config.ee_link}, execute() style {self._style}")

    def plan_and_execute(self, target: Pose, linear: bool) -> MotionOutcome:
        self._stop_requested.clear()
        goal = self._pose_stamped()
        goal.header.frame_id = self._config.base_frame
        goal.pose.position.x, goal.pose.position.y, goal.pose.position.z = target.position
        o = goal.pose.orientation
        o.x, o.y, o.z, o.w = target.orientation
        if linear:
            with self._robot.get_planning_scene_monitor().read_only() as scene:
                current = at_rest(scene.current_state)
            self._arm.set_start_state(robot_state=current)
        else:
            self._arm.set_start_state_to_current_state()
        self._arm.set_goal_state(pose_stamped_msg=goal, pose_link=self._config.ee_link)
        params = self._linear if linear else self._free
        plan = self._arm.plan(single_plan_parameters=params)
        if not plan:
            kind = "Pilz LIN" if linear else f"{params.planning_pipeline}/{params.planner_id or 'default'}"
            return MotionOutcome(MotionStatus.PLANNING_FAILED, f"{kind} found no plan to {target.position}")
        if self._stop_requested.is_set():
            return MotionOutcome(MotionStatus.STOPPED, "stopped before execution")
        outcome = execution_outcome(self._execute(plan.trajectory))
        if self._stop_requested.is_set() and not outcome.ok:
            return MotionOutcome(MotionStatus.STOPPED, "stopped by request")
        return outcome

    def _execute(self, trajectory: Any) -> Any:
        controllers = list(self._config.controllers)
        if self._style == EXECUTE_BLOCKING:
            return self._robot.execute(trajectory, blocking=True, controllers=controllers)
        return self._robot.execute(trajectory, controllers=controllers)

    def stop(self) -> None:
        self._stop_requested.set()
        get_manager = getattr(self._robot, "get_trajectory_execution_manager", None)
        if get_manager is None:
            self._log(
                "this moveit_py has no get_trajectory_execution_manager(): the motion in progress "
                "runs to its end; stop the arm with the pendant if needed"
            )
            return
        get_manager().stop_execution(True)

    def add_collision_boxes(self, boxes: Sequence[Box]) -> None:
        if not boxes:
            return
        try:
            from geometry_msgs.msg import Pose as PoseMsg
            from moveit_msgs.msg import CollisionObject
            from shape_msgs.msg import SolidPrimitive
        except ImportError as exc:
            raise MoveItUnavailable(f"moveit_msgs/shape_msgs are not importable ({exc})") from exc
        with self._robot.get_planning_scene_monitor().read_write() as scene:
            for box in boxes:
                obj = CollisionObject()
                obj.header.frame_id = self._config.base_frame
                obj.id = box.id
                primitive = SolidPrimitive()
                primitive.type = SolidPrimitive.BOX
                primitive.dimensions = list(box.size)
                pose = PoseMsg()
                pose.position.x, pose.position.y, pose.position.z = box.center
                pose.orientation.w = 1.0
                obj.primitives.append(primitive)
                obj.primitive_poses.append(pose)
                obj.operation = CollisionObject.ADD
                scene.apply_collision_object(obj)
            scene.current_state.update()

    def shutdown(self) -> None:
        shutdown = getattr(self._robot, "shutdown", None)
        if shutdown is not None:
            shutdown()


def params_files(argv: Sequence[str]) -> list[str]:
    """The ``--params-file`` arguments of a node's command line (what launch gave the process)."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--params-file"]


def make_backend(config: CellConfig, node_name: str, stop_flag: Any, files: Sequence[str]) -> MoveItPyBackend:
    """The motion process's backend (motion_process.ProcessBackend's factory for a real cell)."""
    import sys

    return MoveItPyBackend(
        config,
        node_name,
        log=lambda message: print(message, file=sys.stderr, flush=True),
        stop_flag=stop_flag,
        params_files=files,
    )
