"""moveit_executor: serves ExecutePickPlace on a real UR5 or Franka cell through MoveIt 2 (moveit_py).

    ros2 run cliport_ros moveit_executor --ros-args --params-file config/ur5.yaml

Parameters: ``action_name`` (default execute_pick_place), ``moveit_node_name`` (the node MoveItPy creates,
default moveit_py) and the cell parameters of cliport_ros.execution.CellConfig (planning group, frames,
workspace bounds, heights, tool orientation and TCP offset, speed scalings, gripper.*, scene.*), all validated
at start-up. Each goal is checked (frame, poses, workspace bounds, heights) before anything moves; a goal that
fails the checks is aborted with INVALID_GOAL or OUT_OF_WORKSPACE. One goal runs at a time (BUSY otherwise);
cancel stops the motion in progress.

MoveItPy runs in a process of its own (motion_process.py), because moveit_py's plan() holds the Python GIL:
this process keeps answering cancels and sending feedback while MoveIt plans. The motion backend and the
gripper are injectable (``backend_factory``, ``gripper_factory``) so the node runs
in tests with a recording double instead of MoveIt.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import CallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from cliport_ros.action import ExecutePickPlace
from cliport_ros.execution import CellConfig, ErrorCode, Gripper, GripperConfig, PickPlaceExecutor, Stage
from cliport_ros.execution.scene import Box, collision_boxes
from cliport_ros.ros.conversions import pick_place_from_msg
from cliport_ros.ros.node_main import run_node
from cliport_ros.ros.parameters import ParameterSpec, declare

DEFAULT_ACTION_NAME = "execute_pick_place"
NODE_PARAMETERS = {"action_name": DEFAULT_ACTION_NAME, "moveit_node_name": "moveit_py"}

# What each parameter means (the defaults are NODE_PARAMETERS' and CellConfig's).
_MEANINGS = {
    "action_name": "ExecutePickPlace action served (the CLIPort node's `execute_action`)",
    "moveit_node_name": "name of the rclcpp node MoveItPy creates (in the executor's motion process)",
    "planning_group": "MoveIt planning group (UR `ur_manipulator`, FR3 `fr3_arm`)",
    "ee_link": "link MoveIt moves to the targets (UR `tool0`, FR3 `fr3_hand_tcp`)",
    "base_frame": "robot base frame of goals, bounds and targets; a goal in another frame is INVALID_GOAL",
    "controllers": "trajectory controllers for MoveIt's execute() (UR: renamed between driver releases)",
    "workspace.x_min": "workspace bounds in `base_frame` (m); TCP targets outside x/y are OUT_OF_WORKSPACE",
    "workspace.x_max": "workspace bound (m)",
    "workspace.y_min": "workspace bound (m)",
    "workspace.y_max": "workspace bound (m)",
    "workspace.z_min": "floor of the workspace (table top); pick/place heights outside [z_min, z_max] are rejected",
    "workspace.z_max": "top of the workspace (m)",
    "min_height": "lowest TCP target (m); a pick surface below it is OUT_OF_WORKSPACE, grasp depth stops at it",
    "max_height": "highest TCP target (m)",
    "approach_height": "pre-grasp / pre-place / retreat poses this far above the grasp / release pose (m)",
    "grasp_depth": "TCP goes this far below the picked surface (parallel jaw: fingers around the object)",
    "place_clearance": "held object's bottom released this far above the place surface (m)",
    "push_height": "TCP height above `workspace.z_min` during a push (m)",
    "tool_orientation": "xyzw orientation of the TCP pointing straight down at yaw 0; yaw turns it about base z",
    "tcp_offset": "TCP position in `ee_link`'s frame (m), e.g. a suction cup's tip; **measure it**",
    "velocity_scaling": "free-motion velocity scaling, (0, 1]",
    "acceleration_scaling": "free-motion acceleration scaling, (0, 1]",
    "linear_velocity_scaling": "straight-line (Pilz LIN) velocity scaling, (0, 1]",
    "linear_acceleration_scaling": "straight-line acceleration scaling, (0, 1]",
    "planning_time": "seconds each plan may take",
    "retreat_on_failure": "go straight back up after a failed grasp or a descent that failed part-way",
    "gripper.type": "`suction_service` (std_srvs/SetBool), `suction_ur_io` (ur_msgs/SetIO), `parallel_jaw` "
    "(control_msgs/GripperCommand), `franka_hand` (franka_msgs Grasp / Move)",
    "gripper.service": "SetBool service of `suction_service` (true = vacuum on)",
    "gripper.io_service": "UR driver's set_io service of `suction_ur_io`",
    "gripper.io_pin": "digital output of `suction_ur_io` (16, 17: tool outputs)",
    "gripper.action": "GripperCommand action of `parallel_jaw`; `franka_hand`: the franka_gripper node "
    "(`<action>/grasp`, `<action>/move`)",
    "gripper.open_position": "`parallel_jaw` open command position; `franka_hand`: open width (m, at most 0.08)",
    "gripper.closed_position": "`parallel_jaw` closed command position; `franka_hand`: closed width (m)",
    "gripper.max_effort": "`parallel_jaw` max effort; `franka_hand`: grasp force (N)",
    "gripper.holding_tolerance": "`parallel_jaw`, `franka_hand`: a jaw within this of closed caught nothing "
    "(GRASP_FAILED)",
    "gripper.timeout": "seconds each gripper call may take (else TIMEOUT)",
    "scene.add_table": "add the table (top at `workspace.z_min`) to the planning scene",
    "scene.table_margin": "table box extends this far beyond the workspace x/y bounds (m)",
    "scene.table_thickness": "table box thickness (m)",
    "scene.ceiling_height": "z of a ceiling box keeping free motions low; 0 = none; must be above `max_height`",
}

#: The executor's parameters: the one table (docs/real_cell.md shows it). Dynamically typed, so a YAML 1 for 1.0
#: reaches CellConfig, whose messages name the parameter and what is allowed.
EXECUTOR_PARAMETERS = [
    ParameterSpec(name, default, _MEANINGS[name], dynamic_typing=True)
    for name, default in {**NODE_PARAMETERS, **CellConfig().to_parameters()}.items()
]


class SceneMotionBackend(Protocol):
    """The executor's MotionBackend plus what the node needs around it."""

    def plan_and_execute(self, target: Any, linear: bool) -> Any: ...

    def stop(self) -> None: ...

    def add_collision_boxes(self, boxes: Sequence[Box]) -> None: ...

    def shutdown(self) -> None: ...


BackendFactory = Callable[[Node, CellConfig], SceneMotionBackend]
GripperFactory = Callable[[Node, GripperConfig, CallbackGroup], Gripper]


def moveit_backend_factory(node: Node, config: CellConfig) -> SceneMotionBackend:
    """MoveItPy in a process of its own (motion_process.py: its plan() holds the GIL), with this process's
    MoveIt parameter files."""
    from cliport_ros.ros.motion_process import ProcessBackend
    from cliport_ros.ros.moveit_backend import params_files

    return ProcessBackend(
        "cliport_ros.ros.moveit_backend:make_backend",
        config,
        node_name=node.get_parameter("moveit_node_name").value,
        args=(params_files(sys.argv),),
    )


def ros_gripper_factory(node: Node, config: GripperConfig, group: CallbackGroup) -> Gripper:
    from cliport_ros.ros.grippers import make_gripper

    return make_gripper(node, config, group)


class MoveItExecutorNode(Node):
    def __init__(
        self,
        *,
        context: Any = None,
        node_name: str = "moveit_executor",
        backend_factory: BackendFactory = moveit_backend_factory,
        gripper_factory: GripperFactory = ros_gripper_factory,
        parameter_overrides: list[Any] | None = None,
    ) -> None:
        super().__init__(node_name, context=context, parameter_overrides=parameter_overrides)
        try:
            self._set_up(backend_factory, gripper_factory)
        except BaseException:
            # a set-up that fails part way leaves nothing behind: no node in the graph, no MoveIt running
            self.destroy_node()
            raise

    def _set_up(self, backend_factory: BackendFactory, gripper_factory: GripperFactory) -> None:
        declare(self, EXECUTOR_PARAMETERS)
        cell_names = CellConfig().to_parameters().keys()
        self.config = CellConfig.from_parameters({n: self.get_parameter(n).value for n in cell_names})
        self.action_name = str(self.get_parameter("action_name").value).strip()
        if not self.action_name:
            raise ValueError("parameter 'action_name' must be a non-empty action name")

        self._group = ReentrantCallbackGroup()
        self.backend = backend_factory(self, self.config)
        self.gripper = gripper_factory(self, self.config.gripper, self._group)
        boxes = collision_boxes(self.config)
        self.backend.add_collision_boxes(boxes)
        self._busy = threading.Lock()
        self._active_goal: Any = None
        self._stop_sent = False
        # Cancel reaches the motion through this timer, not the cancel callback: is_cancel_requested turns
        # true only after the callback has returned, and the stage machine must see it when the stopped
        # motion returns (else the stop would read as an execution failure). 50 Hz: at most 20 ms to stop().
        self._cancel_watch = self.create_timer(0.02, self._watch_cancel, callback_group=self._group)
        self._server = ActionServer(
            self,
            ExecutePickPlace,
            self.action_name,
            execute_callback=self._execute,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=self._cancel,
            callback_group=self._group,
        )
        c = self.config
        self.get_logger().info(
            f"serving {self.action_name}: group {c.planning_group}, link {c.ee_link}, frame {c.base_frame}, "
            f"gripper {c.gripper.type}, scaling {c.velocity_scaling}/{c.acceleration_scaling} "
            f"(linear {c.linear_velocity_scaling}/{c.linear_acceleration_scaling}), "
            f"scene {[b.id for b in boxes]}"
        )

    def _cancel(self, goal_handle: Any) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _watch_cancel(self) -> None:
        # Only the goal that is moving the arm stops it; a BUSY-rejected goal's cancel must not.
        active = self._active_goal
        if active is not None and not self._stop_sent and active.is_cancel_requested:
            self._stop_sent = True
            self.get_logger().warn("cancel requested: stopping the arm")
            self.backend.stop()

    def _execute(self, goal_handle: Any) -> ExecutePickPlace.Result:
        if not self._busy.acquire(blocking=False):
            return self._finish(goal_handle, ErrorCode.BUSY, "another pick-and-place is executing; try again")
        try:
            self._stop_sent = False
            self._active_goal = goal_handle
            try:
                decision = pick_place_from_msg(goal_handle.request.pick_place)
            except ValueError as exc:
                return self._finish(goal_handle, ErrorCode.INVALID_GOAL, str(exc))

            def on_stage(stage: Stage) -> None:
                feedback = ExecutePickPlace.Feedback(stage=int(stage), stage_name=stage.label)
                goal_handle.publish_feedback(feedback)

            runner = PickPlaceExecutor(self.config, self.backend, self.gripper, on_stage)
            try:
                outcome = runner.execute(decision, is_canceled=lambda: goal_handle.is_cancel_requested)
            except Exception as exc:  # noqa: BLE001 - any surprise must still end the goal, arm stopped
                self.backend.stop()
                self.get_logger().error(f"executor error: {exc!r}")
                return self._finish(goal_handle, ErrorCode.INTERNAL_ERROR, f"executor error: {exc!r}")
            return self._finish(goal_handle, outcome.error_code, outcome.message)
        finally:
            self._active_goal = None
            self._busy.release()

    def _finish(self, goal_handle: Any, code: ErrorCode, message: str) -> ExecutePickPlace.Result:
        result = ExecutePickPlace.Result(success=code == ErrorCode.SUCCESS, error_code=int(code), message=message)
        if code == ErrorCode.SUCCESS:
            goal_handle.succeed()
            self.get_logger().info(message)
        elif code == ErrorCode.CANCELED and goal_handle.is_cancel_requested:
            goal_handle.canceled()
            self.get_logger().warn(message)
        else:
            goal_handle.abort()
            self.get_logger().error(f"{code.name}: {message}")
        return result

    def destroy_node(self) -> None:
        # also for a node whose set-up failed part way: only what was made is there to destroy
        watch, server, backend = (getattr(self, name, None) for name in ("_cancel_watch", "_server", "backend"))
        if watch is not None:
            self.destroy_timer(watch)
        if server is not None:
            server.destroy()
        try:
            if backend is not None:
                backend.shutdown()
        finally:
            super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run cliport_ros moveit_executor --ros-args --params-file config/ur5.yaml``; exit 2 on bad setup."""
    # Bad parameters or MoveIt/gripper packages missing: run_node says which and exits non-zero.
    return run_node("moveit_executor", MoveItExecutorNode, args, setup_errors=(ValueError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
