"""Gripper adapters against the real generated message classes of the packages they talk to."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from upstream_interfaces import build

UR_IO_PROBE = r"""
import json
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message
from ur_msgs.srv import SetIO

from cliport_ros.execution import GripperConfig
from cliport_ros.ros.grippers import make_gripper

rclpy.init()
node = Node("ur_io_probe")
seen = []

def serve(request, response):
    # what the UR driver receives, after the request crossed the wire
    seen.append({"fun": request.fun, "pin": request.pin, "state": request.state})
    response.success = True
    return response

node.create_service(SetIO, "/io_and_status_controller/set_io", serve)
config = GripperConfig(type="suction_ur_io", io_pin=17, io_service="/io_and_status_controller/set_io", timeout=20.0)
gripper = make_gripper(node, config, ReentrantCallbackGroup())
wire = [deserialize_message(serialize_message(gripper._request(on)), SetIO.Request).state for on in (True, False)]
executor = MultiThreadedExecutor(num_threads=2)
executor.add_node(node)
import threading
spinner = threading.Thread(target=executor.spin)
spinner.start()
calls = [gripper.grasp(), gripper.is_holding(), gripper.release(), gripper.is_holding()]
print(json.dumps({"wire": wire, "seen": seen, "calls": calls}), flush=True)
executor.shutdown()
spinner.join()
node.destroy_node()
rclpy.try_shutdown()
"""


@pytest.mark.parametrize("check_fields", ["0", "1"])
def test_ur_tool_output_suction_switches_the_output_on_and_off(check_fields):
    """SetIO.state is float32: the int8 constant STATE_ON assigned to it serialised as 0.0 (with field checks
    off, Jazzy's default) and raised with them on; the driver then switched the output off and said success."""
    env = build("ur_msgs")
    env["ROS_PYTHON_CHECK_FIELDS"] = check_fields
    done = subprocess.run([sys.executable, "-c", UR_IO_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["wire"] == [1.0, 0.0]
    assert out["seen"] == [{"fun": 1, "pin": 17, "state": 1.0}, {"fun": 1, "pin": 17, "state": 0.0}]
    assert out["calls"] == [True, True, True, False]
