"""fake_franka_hand: the Franka Hand's franka_gripper actions (franka_msgs Grasp and Move) for a cell on
ros2_control fake hardware, where franka_ros2 starts no gripper server (only a joint-state publisher).

    ros2 run cliport_ros fake_franka_hand --ros-args -p object_width:=0.03

franka_bringup.launch.py starts it with use_fake_hardware:=true and gripper:=franka_hand, so a dry run on fake
hardware goes through every stage. It behaves as libfranka does: a grasp closes until the fingers meet the
object (or each other) and succeeds only if they stop inside [width - epsilon.inner, width + epsilon.outer];
a move goes to the width asked for. Parameters: ``action`` (the gripper node's name, default /franka_gripper),
``object_width`` (m: what every grasp finds between the fingers; 0 = nothing).
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.action import ActionServer
from rclpy.node import Node

from cliport_ros.execution.cell import FRANKA_HAND_MAX_WIDTH
from cliport_ros.ros.node_main import run_node


class FakeFrankaHand(Node):
    def __init__(self, *, context: Any = None) -> None:
        super().__init__("fake_franka_hand", context=context)
        try:
            from franka_msgs.action import Grasp, Move
        except ImportError as exc:
            raise RuntimeError(f"franka_msgs is not importable ({exc}): install franka_ros2") from exc
        self._grasp_type, self._move_type = Grasp, Move
        prefix = str(self.declare_parameter("action", "/franka_gripper").value).rstrip("/")
        self.object_width = float(self.declare_parameter("object_width", 0.03).value)
        if not 0.0 <= self.object_width <= FRANKA_HAND_MAX_WIDTH:
            raise ValueError(
                f"parameter object_width must be in [0, {FRANKA_HAND_MAX_WIDTH}] m, got {self.object_width}"
            )
        self.width = FRANKA_HAND_MAX_WIDTH
        self._servers = [
            ActionServer(self, Grasp, f"{prefix}/grasp", self._on_grasp),
            ActionServer(self, Move, f"{prefix}/move", self._on_move),
        ]
        self.get_logger().info(
            f"fake Franka Hand on {prefix}/grasp and {prefix}/move, object width {self.object_width} m"
        )

    def _on_grasp(self, handle: Any) -> Any:
        goal = handle.request
        result = self._grasp_type.Result()
        if not 0.0 <= goal.width <= FRANKA_HAND_MAX_WIDTH or goal.speed <= 0.0 or goal.force <= 0.0:
            result.error = f"invalid grasp: width {goal.width}, speed {goal.speed}, force {goal.force}"
            handle.abort()
            return result
        # Closing from the present width stops on the object if it is narrower, else on the fingers.
        closing = goal.width < self.width
        self.width = (
            self.object_width if closing and 0.0 < self.object_width < self.width else (0.0 if closing else goal.width)
        )
        result.success = goal.width - goal.epsilon.inner <= self.width <= goal.width + goal.epsilon.outer
        if not result.success:
            result.error = f"grasp failed: fingers stopped at {self.width:.4f} m"
        handle.succeed()
        return result

    def _on_move(self, handle: Any) -> Any:
        goal = handle.request
        result = self._move_type.Result()
        if not 0.0 <= goal.width <= FRANKA_HAND_MAX_WIDTH or goal.speed <= 0.0:
            result.error = f"invalid move: width {goal.width}, speed {goal.speed}"
            handle.abort()
            return result
        self.width = goal.width
        result.success = True
        handle.succeed()
        return result

    def destroy_node(self) -> None:
        for server in self._servers:
            server.destroy()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node("fake_franka_hand", FakeFrankaHand, args, setup_errors=(ValueError, RuntimeError))


if __name__ == "__main__":
    sys.exit(main())
