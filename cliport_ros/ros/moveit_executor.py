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

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import CallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from cliport_ros.action import ExecutePickPlace
from cliport_ros.execution import CellConfig, ErrorCode, Gripper, GripperConfig, PickPlaceExecutor, Stage
from cliport_ros.execution.scene import Box, collision_boxes
from cliport_ros.ros.conversions import pick_place_from_msg
from cliport_ros.ros.node_main import run_node

DEFAULT_ACTION_NAME = "execute_pick_place"
NODE_PARAMETERS = {"action_name": DEFAULT_ACTION_NAME, "moveit_node_name": "moveit_py"}


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
        # Dynamic typing: a YAML 1 for 1.0 reaches CellConfig, whose messages name the parameter.
        descriptor = ParameterDescriptor(dynamic_typing=True)
        defaults = {**NODE_PARAMETERS, **CellConfig().to_parameters()}
        for name, value in defaults.items():
            self.declare_parameter(name, value, descriptor)
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
        self.destroy_timer(self._cancel_watch)
        self._server.destroy()
        try:
            self.backend.shutdown()
        finally:
            super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run cliport_ros moveit_executor --ros-args --params-file config/ur5.yaml``; exit 2 on bad setup."""
    # Bad parameters or MoveIt/gripper packages missing: run_node says which and exits non-zero.
    return run_node("moveit_executor", MoveItExecutorNode, args, setup_errors=(ValueError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
