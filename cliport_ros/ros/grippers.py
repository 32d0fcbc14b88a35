"""Grippers over ROS: a suction cup on a std_srvs/SetBool service, a suction cup on a UR tool digital output
(ur_msgs/SetIO on the driver's io_and_status_controller), and a parallel jaw on a control_msgs/GripperCommand
action (Robotiq 2F on the UR driver), and the Franka Hand on franka_gripper's franka_msgs Grasp/Move actions.

Each call blocks the calling thread (the action server's execute callback) until the answer arrives or
``gripper.timeout`` passes; the answer is processed by the node's other executor threads, so the node must
spin in a MultiThreadedExecutor with these clients in a reentrant callback group. ur_msgs, control_msgs
and franka_msgs are imported only when their gripper is built.
"""

from __future__ import annotations

from typing import Any

from rclpy.action import ActionClient
from rclpy.callback_groups import CallbackGroup
from rclpy.node import Node

from cliport_ros.execution import Gripper, GripperConfig
from cliport_ros.ros.client import wait_for


def wait_for_future(future: Any, timeout: float, what: str) -> Any:
    """The future's result (client.wait_for: no spinning here); TimeoutError naming ``what`` after ``timeout``."""
    if not wait_for(future, timeout):
        future.cancel()
        raise TimeoutError(f"{what}: no answer within {timeout} s")
    return future.result()


def _import_error(package: str, gripper_type: str, exc: ImportError) -> RuntimeError:
    return RuntimeError(
        f"gripper.type {gripper_type} needs the {package} package ({exc}): install ros-<distro>-"
        f"{package.replace('_', '-')} or choose another gripper.type"
    )


class _ServiceSuction:
    """Suction on a service; without a vacuum sensor, 'holding' means the vacuum is on."""

    def __init__(self, node: Node, srv_type: Any, name: str, config: GripperConfig, group: CallbackGroup):
        self._client = node.create_client(srv_type, name, callback_group=group)
        self._name = name
        self._timeout = config.timeout
        self._on = False

    def _request(self, on: bool) -> Any:
        raise NotImplementedError

    def _succeeded(self, response: Any) -> bool:
        return bool(response.success)

    def _set(self, on: bool) -> bool:
        if not self._client.wait_for_service(timeout_sec=self._timeout):
            raise TimeoutError(f"service {self._name} not available within {self._timeout} s")
        response = wait_for_future(self._client.call_async(self._request(on)), self._timeout, self._name)
        ok = self._succeeded(response)
        if ok:
            self._on = on
        return ok

    def grasp(self) -> bool:
        return self._set(True)

    def release(self) -> bool:
        return self._set(False)

    def is_holding(self) -> bool:
        return self._on


class SetBoolSuction(_ServiceSuction):
    def __init__(self, node: Node, config: GripperConfig, group: CallbackGroup):
        from std_srvs.srv import SetBool

        self._type = SetBool
        super().__init__(node, SetBool, config.service, config, group)

    def _request(self, on: bool) -> Any:
        return self._type.Request(data=on)


class URToolOutputSuction(_ServiceSuction):
    def __init__(self, node: Node, config: GripperConfig, group: CallbackGroup):
        try:
            from ur_msgs.srv import SetIO
        except ImportError as exc:
            raise _import_error("ur_msgs", config.type, exc) from exc
        self._type = SetIO
        self._pin = config.io_pin
        super().__init__(node, SetIO, config.io_service, config, group)

    def _request(self, on: bool) -> Any:
        request = self._type.Request()
        request.fun = self._type.Request.FUN_SET_DIGITAL_OUT
        request.pin = self._pin
        # SetIO.state is float32 and its STATE_* constants are int8: an int assigned to it serialises as 0.0 with
        # Jazzy's field checks off (the output stays off and the driver answers success), and raises with them on.
        request.state = float(self._type.Request.STATE_ON if on else self._type.Request.STATE_OFF)
        return request


class ParallelJawGripper:
    """GripperCommand: closing on an object stalls short of ``closed_position``; a jaw that reached it caught
    nothing."""

    def __init__(self, node: Node, config: GripperConfig, group: CallbackGroup):
        try:
            from control_msgs.action import GripperCommand
        except ImportError as exc:
            raise _import_error("control_msgs", config.type, exc) from exc
        self._type = GripperCommand
        self._config = config
        self._client = ActionClient(node, GripperCommand, config.action, callback_group=group)
        self._position: float | None = None
        self._closed = False  # the last command closed the jaw

    def _command(self, position: float) -> tuple[bool, Any]:
        timeout, name = self._config.timeout, self._config.action
        if not self._client.wait_for_server(timeout_sec=timeout):
            raise TimeoutError(f"action {name} not available within {timeout} s")
        goal = self._type.Goal()
        goal.command.position = float(position)
        goal.command.max_effort = float(self._config.max_effort)
        handle = wait_for_future(self._client.send_goal_async(goal), timeout, name)
        if not handle.accepted:
            return False, None
        response = wait_for_future(handle.get_result_async(), timeout, name)
        from action_msgs.msg import GoalStatus

        result = response.result
        self._position = float(result.position)
        # A jaw closing on an object stalls; controllers report that as success or (without allow_stalling)
        # as an abort with stalled set.
        return response.status == GoalStatus.STATUS_SUCCEEDED or bool(result.stalled), result

    def grasp(self) -> bool:
        self._closed = True
        ok, _ = self._command(self._config.closed_position)
        return ok

    def release(self) -> bool:
        ok, result = self._command(self._config.open_position)
        if ok and result is not None:
            self._closed = False
        return ok and result is not None

    def is_holding(self) -> bool:
        # Only a closed jaw holds: an open one is also far from closed_position (v0.7 read that as holding).
        if self._position is None or not self._closed:
            return False
        return abs(self._position - self._config.closed_position) > self._config.holding_tolerance


class FrankaHand:
    """The Franka Hand through franka_gripper (franka_ros2 >= 2.0): Grasp to close, Move to open.

    A grasp is asked for a width window, [closed_position + holding_tolerance, open_position], given as the
    window's middle and an epsilon of half its size: libfranka's grasp succeeds only if the fingers stop inside
    it, so success means something is held, and fingers that closed on nothing fail the grasp.
    """

    SPEED = 0.1  # m/s, franka_gripper's own default_speed

    def __init__(self, node: Node, config: GripperConfig, group: CallbackGroup):
        try:
            from franka_msgs.action import Grasp, Move
        except ImportError as exc:
            raise _import_error("franka_msgs", config.type, exc) from exc
        self._grasp_type, self._move_type = Grasp, Move
        self._config = config
        prefix = config.action.rstrip("/")
        self._grasp = (f"{prefix}/grasp", ActionClient(node, Grasp, f"{prefix}/grasp", callback_group=group))
        self._move = (f"{prefix}/move", ActionClient(node, Move, f"{prefix}/move", callback_group=group))
        self._holding = False

    def _run(self, action: tuple[str, ActionClient], goal: Any) -> Any:
        timeout = self._config.timeout
        name, client = action
        if not client.wait_for_server(timeout_sec=timeout):
            raise TimeoutError(f"action {name} not available within {timeout} s")
        handle = wait_for_future(client.send_goal_async(goal), timeout, name)
        if not handle.accepted:
            return None
        return wait_for_future(handle.get_result_async(), timeout, name).result

    def grasp_goal(self) -> Any:
        low = self._config.closed_position + self._config.holding_tolerance
        high = self._config.open_position
        goal = self._grasp_type.Goal()
        goal.width = (low + high) / 2.0
        goal.epsilon.inner = goal.epsilon.outer = (high - low) / 2.0
        goal.speed = self.SPEED
        goal.force = float(self._config.max_effort)
        return goal

    def grasp(self) -> bool:
        result = self._run(self._grasp, self.grasp_goal())
        self._holding = bool(result is not None and result.success)
        return self._holding

    def release(self) -> bool:
        goal = self._move_type.Goal(width=float(self._config.open_position), speed=self.SPEED)
        result = self._run(self._move, goal)
        ok = bool(result is not None and result.success)
        if ok:
            self._holding = False
        return ok

    def is_holding(self) -> bool:
        return self._holding


def make_gripper(node: Node, config: GripperConfig, group: CallbackGroup) -> Gripper:
    if config.type == "suction_service":
        return SetBoolSuction(node, config, group)
    if config.type == "suction_ur_io":
        return URToolOutputSuction(node, config, group)
    if config.type == "franka_hand":
        return FrankaHand(node, config, group)
    return ParallelJawGripper(node, config, group)
