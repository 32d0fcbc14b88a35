"""The CLIPort node over real rclpy, with a real (randomly initialised, tiny) policy loaded from a checkpoint.

Cameras are published by a test node (a synthetic overhead RGB-D camera); the arm is the test peer's
ExecutePickPlace server (test/ros_peers.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from cliport_ros.action import FollowInstruction
from cliport_ros.msg import PickPlace
from cliport_ros.ros.cliport_node import CliportNode, load_policy
from cliport_ros.ros.images import array_to_image, camera_info_from_model
from conftest import spin_until
from ros_peers import PeerNode
from scenes import overhead_camera, overhead_frame
from test_ros_interfaces import run_action


@pytest.fixture(scope="module")
def policy(random_checkpoint):
    return load_policy(str(random_checkpoint), "cpu")


class CameraPublisher(Node):
    """Publishes the synthetic overhead camera like a RealSense driver would."""

    def __init__(self, context, camera, encoding="32FC1"):
        super().__init__("fake_camera_driver", context=context)
        self.camera = camera
        self.rgb, self.depth = overhead_frame(camera, [(0.45, -0.1, 0.02, 0.04, (220, 30, 30)),
                                                       (0.6, 0.2, 0.04, 0.03, (30, 200, 30))])
        self.colour_pub = self.create_publisher(Image, "/top/color/image_raw", qos_profile_sensor_data)
        self.depth_pub = self.create_publisher(Image, "/top/aligned_depth_to_color/image_raw", qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, "/top/color/camera_info", qos_profile_sensor_data)
        self.encoding = encoding
        self.send_info = True
        self.stamp_offset = 0.0
        self.stamps = []

    def publish(self):
        now = self.get_clock().now()
        header = Image().header
        header.stamp = (now - rclpy_duration(self.stamp_offset)).to_msg()
        header.frame_id = "top_color_optical_frame"
        depth = self.depth if self.encoding == "32FC1" else (self.depth * 1000).astype(np.uint16)
        self.colour_pub.publish(array_to_image(self.rgb, "rgb8", header))
        self.depth_pub.publish(array_to_image(depth, self.encoding, header))
        if self.send_info:
            self.info_pub.publish(camera_info_from_model(self.camera, header))
        self.stamps.append((header.stamp.sec, header.stamp.nanosec))
        return header.stamp


def rclpy_duration(seconds):
    from rclpy.duration import Duration

    return Duration(seconds=seconds)


@pytest.fixture
def rig(tmp_path, ros_context, policy, random_checkpoint):
    camera = overhead_camera()
    poses = tmp_path / "poses.yaml"
    poses.write_text(yaml.safe_dump({"cameras": [camera.to_dict()]}))

    def make(**params):
        defaults = {"checkpoint": str(random_checkpoint), "device": "cpu", "warm_up": False,
                    "camera_names": ["top"], "camera_namespaces": ["/top"], "camera_poses_file": str(poses),
                    "execute": False, "execute_action": "peer/execute_pick_place", "server_wait_timeout": 1.0}
        defaults.update(params)
        node = CliportNode(context=ros_context, policy_factory=lambda c, d: policy,
                           parameter_overrides=[Parameter(k, value=v) for k, v in defaults.items()])
        return node

    cams = CameraPublisher(ros_context, camera)
    client = Node("test_client", context=ros_context)
    executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
    executor.add_node(cams)
    executor.add_node(client)
    nodes = []

    def start(**params):
        node = make(**params)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.last_error
        node.trigger_activate()
        executor.add_node(node)
        nodes.append(node)
        return node

    received, status = [], []
    client.create_subscription(PickPlace, "/cliport/pick_place", received.append, 10)
    client.create_subscription(String, "/cliport/status", lambda m: status.append(m.data), 10)
    yield type("Rig", (), dict(start=start, cams=cams, client=client, executor=executor, received=received,
                               status=status, context=ros_context))
    for node in nodes:
        node.stop_worker()
    executor.shutdown()


def feed_images(rig, node):
    """Publish camera frames until the node holds the pair just published."""
    def arrived():
        stamp = rig.cams.publish()
        spin_until(rig.executor, lambda: False, 0.05)
        latest = node.cameras[0].latest()[0]
        return latest is not None and (latest.header.stamp.sec, latest.header.stamp.nanosec) == (stamp.sec, stamp.nanosec)

    assert spin_until(rig.executor, arrived, 10)


def follow(rig, instruction, **goal):
    # One client per test: a fresh ActionClient per goal has to be discovered again, which under load can
    # take long enough to look like a missing server.
    if not hasattr(rig, "follow_client"):
        rig.follow_client = ActionClient(rig.client, FollowInstruction, "follow_instruction")
    return run_action(rig.executor, rig.follow_client, FollowInstruction.Goal(instruction=instruction, **goal), timeout=60,
                      expect_feedback=0)


def test_instruction_topic_gives_a_pick_place_in_the_workspace(rig):
    node = rig.start()
    feed_images(rig, node)
    pub = rig.client.create_publisher(String, "/cliport/instruction", 10)
    assert spin_until(rig.executor, lambda: pub.get_subscription_count() > 0, 5)
    pub.publish(String(data="put the red block in the green bowl"))
    assert spin_until(rig.executor, lambda: bool(rig.received), 60), rig.status
    msg = rig.received[0]
    assert msg.instruction == "put the red block in the green bowl"
    assert msg.header.frame_id == "base_link"
    assert 0.25 <= msg.pick.position.x <= 0.75 and -0.5 <= msg.pick.position.y <= 0.5
    assert 0.0 < msg.pick_confidence <= 1.0
    # Stamped exactly like one of the input images (not with the time of the decision).
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in rig.cams.stamps


def test_follow_instruction_executes_steps_through_the_arm(rig):
    node = rig.start(execute=True)
    peer = PeerNode(context=rig.context)
    rig.executor.add_node(peer)
    feed_images(rig, node)
    status, result, feedback = follow(rig, "put the red block in the green bowl", max_steps=2, execute=True)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert result.success and result.steps_taken == 2 and len(result.steps) == 2
    stages = [f.stage_name for f in feedback]
    assert "perceive" in stages and "predict" in stages and "execute" in stages
    assert {f.arm_stage for f in feedback if f.stage_name == "execute"} >= {"retreat"}


@pytest.mark.parametrize("instruction, message", [
    ("", "empty or whitespace only"), ("   ", "empty or whitespace only"), ("a" * 1001, "limit is 1000"),
])
def test_bad_instructions_fail_the_goal_and_the_node_stays_up(rig, instruction, message):
    node = rig.start()
    feed_images(rig, node)
    status, result, _ = follow(rig, instruction, max_steps=1)
    assert status == GoalStatus.STATUS_ABORTED
    assert result.error_code == FollowInstruction.Result.INVALID_INSTRUCTION and message in result.message
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert status == GoalStatus.STATUS_SUCCEEDED


def test_no_images_stale_images_and_missing_camera_info(rig):
    node = rig.start(max_image_age=0.5)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert result.error_code == FollowInstruction.Result.NO_OBSERVATION
    assert "no synchronised colour/depth images yet from camera 'top'" in result.message

    rig.cams.send_info = False
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert "no camera_info yet on /top/color/camera_info" in result.message

    rig.cams.send_info, rig.cams.stamp_offset = True, 5.0
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert result.error_code == FollowInstruction.Result.NO_OBSERVATION
    assert "s old (max_image_age is 0.50 s)" in result.message


def test_wrong_encoding_and_nan_depth(rig):
    node = rig.start()
    rig.cams.encoding = "16UC1"  # millimetres are accepted
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message

    rig.cams.depth = np.full_like(rig.cams.depth, np.nan)
    rig.cams.encoding = "32FC1"
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert result.error_code == FollowInstruction.Result.NO_OBSERVATION and "no view has any valid depth" in result.message


def test_arm_controller_absent_fails_with_a_reason(rig):
    node = rig.start(execute=True, execute_action="no_such_arm")
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1, execute=True)
    assert status == GoalStatus.STATUS_ABORTED
    assert result.error_code == FollowInstruction.Result.EXECUTION_FAILED
    assert "arm controller action 'no_such_arm' is not available" in result.message
    assert result.steps_taken == 1  # the decision was made, and is reported, but not executed


def test_a_failing_arm_fails_the_goal_with_the_arms_reason(rig):
    node = rig.start(execute=True)
    rig.executor.add_node(PeerNode(context=rig.context))
    feed_images(rig, node)
    status, result, _ = follow(rig, "fail", max_steps=3, execute=True)  # the test arm fails "fail" at the grasp
    assert status == GoalStatus.STATUS_ABORTED
    assert result.error_code == FollowInstruction.Result.EXECUTION_FAILED
    assert result.message == "step 1: arm failed (code 5): suction found nothing to pick"
    assert result.steps_taken == 1
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1, execute=True)
    assert status == GoalStatus.STATUS_SUCCEEDED  # still up


def test_cancel_during_execution(rig):
    node = rig.start(execute=True)
    rig.executor.add_node(PeerNode(context=rig.context))
    feed_images(rig, node)
    client = ActionClient(rig.client, FollowInstruction, "follow_instruction")
    # The test peer holds a goal whose instruction is "hold" until it is cancelled.
    status, result, feedback = run_action(rig.executor, client,
                                          FollowInstruction.Goal(instruction="hold", max_steps=3, execute=True),
                                          cancel_after_feedback=True, timeout=60, expect_feedback=0)
    assert status == GoalStatus.STATUS_CANCELED
    assert result.error_code == FollowInstruction.Result.CANCELED


def test_busy_node_rejects_when_configured(rig):
    node = rig.start(on_busy="reject")
    node._busy.set()  # as while a long instruction runs
    client = ActionClient(rig.client, FollowInstruction, "follow_instruction")
    client.wait_for_server(timeout_sec=10)  # the goal's answer decides (see test_ros_interfaces.run_action)
    future = client.send_goal_async(FollowInstruction.Goal(instruction="put the red block in the bowl"))
    assert spin_until(rig.executor, future.done, 60)
    assert not future.result().accepted
    assert any("rejected: busy" in s for s in rig.status) or spin_until(
        rig.executor, lambda: any("rejected: busy" in s for s in rig.status), 5)
    node._busy.clear()


def test_corrupt_checkpoint_fails_configure_with_a_clear_error(ros_context, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    node = CliportNode(context=ros_context, parameter_overrides=[
        Parameter("checkpoint", value=str(bad)), Parameter("device", value="cpu")])
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "configure failed" in node.last_error and str(bad) in node.last_error
    node.destroy_node()


def test_parameter_errors_name_the_parameter(ros_context, policy):
    node = CliportNode(context=ros_context, policy_factory=lambda c, d: policy, parameter_overrides=[
        Parameter("on_busy", value="drop")])
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "parameter on_busy must be 'queue' or 'reject'" in node.last_error
    node.destroy_node()
