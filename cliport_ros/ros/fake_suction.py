"""fake_suction: a suction cup's std_srvs/SetBool service for a simulated cell that has no vacuum model
(launch/ur5_gazebo.launch.py): it answers every request with success and remembers the state, so the executor
goes through every stage; nothing is carried in the simulation.

    ros2 run cliport_ros fake_suction --ros-args -p service:=/suction/set
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.node import Node
from std_srvs.srv import SetBool

from cliport_ros.ros.node_main import run_node


class FakeSuction(Node):
    def __init__(self, *, context: Any = None) -> None:
        super().__init__("fake_suction", context=context)
        name = str(self.declare_parameter("service", "/suction/set").value)
        self.on = False
        self._service = self.create_service(SetBool, name, self._set)
        self.get_logger().info(f"fake suction cup on {name} (nothing is carried)")

    def _set(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.on = bool(request.data)
        response.success = True
        response.message = "vacuum on (simulated)" if self.on else "vacuum off (simulated)"
        return response


def main(args: list[str] | None = None) -> int:
    return run_node("fake_suction", FakeSuction, args)


if __name__ == "__main__":
    sys.exit(main())
