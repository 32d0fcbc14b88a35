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


FRANKA_PROBE = r"""
import json, sys, threading
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from cliport_ros.execution import GripperConfig
from cliport_ros.ros.fake_franka_hand import FakeFrankaHand
from cliport_ros.ros.grippers import make_gripper

rclpy.init()
hand = FakeFrankaHand()
hand.object_width = float(sys.argv[1])
node = Node("franka_hand_probe")
config = GripperConfig(type="franka_hand", action="/franka_gripper", open_position=0.08, closed_position=0.0,
                       holding_tolerance=0.002, max_effort=20.0, timeout=20.0)
gripper = make_gripper(node, config, ReentrantCallbackGroup())
goal = gripper.grasp_goal()
executor = MultiThreadedExecutor(num_threads=3)
executor.add_node(node)
executor.add_node(hand)
spinner = threading.Thread(target=executor.spin)
spinner.start()
calls = [gripper.grasp(), gripper.is_holding(), round(hand.width, 4), gripper.release(), gripper.is_holding(),
         round(hand.width, 4)]
print(json.dumps({"goal": [goal.width, goal.epsilon.inner, goal.epsilon.outer, goal.speed, goal.force],
                  "calls": calls}), flush=True)
executor.shutdown()
spinner.join()
rclpy.try_shutdown()
"""


@pytest.mark.parametrize("object_width, held", [(0.03, True), (0.075, True), (0.0, False)])
def test_franka_hand_grasps_objects_of_any_width_and_knows_an_empty_grasp(object_width, held):
    """franka_gripper's GripperCommand grasps with a 5 mm tolerance, so closing to 0 failed on anything wider;
    the Franka Hand adapter asks Grasp for the whole window [closed + tolerance, open] (franka_msgs from
    franka_ros2 v3.4.0, generated here)."""
    env = build("franka_msgs")
    done = subprocess.run(
        [sys.executable, "-c", FRANKA_PROBE, str(object_width)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    width, inner, outer, speed, force = out["goal"]
    assert width == pytest.approx(0.041) and inner == pytest.approx(0.039) and outer == pytest.approx(0.039)
    assert (speed, force) == (0.1, 20.0)
    assert out["calls"] == [held, held, object_width, True, False, 0.08]


def test_fake_suction_serves_the_suction_gripper(ros_context):
    """The Gazebo bringup's cup: the suction_service gripper switches it on and off through SetBool."""
    import threading

    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from cliport_ros.execution import GripperConfig
    from cliport_ros.ros.fake_suction import FakeSuction
    from cliport_ros.ros.grippers import make_gripper

    cup = FakeSuction(context=ros_context)
    node = Node("suction_client", context=ros_context)
    executor = MultiThreadedExecutor(num_threads=2, context=ros_context)
    executor.add_node(cup)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        gripper = make_gripper(
            node, GripperConfig(type="suction_service", service="/suction/set", timeout=10.0), ReentrantCallbackGroup()
        )
        assert gripper.grasp() and gripper.is_holding() and cup.on
        assert gripper.release() and not gripper.is_holding() and not cup.on
    finally:
        executor.shutdown()
        spinner.join(5)
        node.destroy_node()
        cup.destroy_node()


JAW_PROBE = r"""
import json, sys, threading
import rclpy
from control_msgs.action import GripperCommand
from rclpy.action import ActionServer
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node

from cliport_ros.execution import GripperConfig
from cliport_ros.ros.grippers import make_gripper

object_at, allow_stalling = float(sys.argv[1]), sys.argv[2] == "1"
rclpy.init()
server_node = Node("robotiq_gripper_controller_double")
goals = []

def execute(handle):
    # As ros2_controllers' GripperActionController: the jaw moves to the goal unless an object stops it first
    # (knuckle angle in rad, 0 open .. 0.8 closed); a stalled jaw succeeds only with allow_stalling.
    goal = handle.request.command
    goals.append([goal.position, goal.max_effort])
    closing_on_object = 0.0 < object_at < goal.position
    result = GripperCommand.Result(position=object_at if closing_on_object else goal.position, effort=10.0,
                                   stalled=closing_on_object, reached_goal=not closing_on_object)
    if closing_on_object and not allow_stalling:
        handle.abort()
    else:
        handle.succeed()
    return result

server = ActionServer(server_node, GripperCommand, "/robotiq_gripper_controller/gripper_cmd", execute)
node = Node("jaw_probe")
config = GripperConfig(type="parallel_jaw", action="/robotiq_gripper_controller/gripper_cmd", open_position=0.0,
                       closed_position=0.8, max_effort=20.0, holding_tolerance=0.01, timeout=20.0)
gripper = make_gripper(node, config, ReentrantCallbackGroup())
executor = MultiThreadedExecutor(num_threads=3)
executor.add_node(node)
executor.add_node(server_node)
spinner = threading.Thread(target=executor.spin)
spinner.start()
calls = [gripper.grasp(), gripper.is_holding(), gripper.release(), gripper.is_holding()]
print(json.dumps({"goals": goals, "calls": calls}), flush=True)
executor.shutdown()
spinner.join()
rclpy.try_shutdown()
"""


@pytest.mark.parametrize("object_at, allow_stalling, held", [(0.5, "1", True), (0.5, "0", True), (0.0, "1", False)])
def test_parallel_jaw_over_gripper_command(object_at, allow_stalling, held):
    """A Robotiq 2F on control_msgs/GripperCommand (control_msgs 5.8.0, generated here): a jaw stopped by an
    object holds it, whether the controller reports the stall as success or as an abort; a jaw that reached
    closed_position caught nothing, and an open one holds nothing."""
    env = build("control_msgs")
    done = subprocess.run(
        [sys.executable, "-c", JAW_PROBE, str(object_at), allow_stalling],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["goals"] == [[0.8, 20.0], [0.0, 20.0]]
    # grasp() is the command's success; whether anything is held is is_holding()'s answer (the executor's
    # GRASP_FAILED). After the release, nothing is held (v0.7 said an open jaw held, being far from closed).
    assert out["calls"] == [True, held, True, False]
