"""The CLIPort node over real rclpy, with a real (randomly initialised, tiny) policy loaded from a checkpoint.

Cameras are published by a test node (a synthetic overhead RGB-D camera); the arm is the test peer's
ExecutePickPlace server (test/ros_peers.py).
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import yaml
from action_msgs.msg import GoalStatus
from conftest import spin_until
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from ros_peers import PeerNode
from scenes import overhead_camera, overhead_frame
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from test_ros_interfaces import run_action

from cliport_ros.action import ExecutePickPlace, FollowInstruction
from cliport_ros.msg import PickPlace
from cliport_ros.ros.cliport_node import CliportNode, load_policy
from cliport_ros.ros.images import array_to_image, camera_info_from_model


@pytest.fixture(scope="module")
def policy(random_checkpoint):
    return load_policy(str(random_checkpoint), "cpu")


class CameraPublisher(Node):
    """Publishes the synthetic overhead camera like a RealSense driver would."""

    def __init__(self, context, camera, encoding="32FC1"):
        super().__init__("fake_camera_driver", context=context)
        self.camera = camera
        self.rgb, self.depth = overhead_frame(
            camera, [(0.45, -0.1, 0.02, 0.04, (220, 30, 30)), (0.6, 0.2, 0.04, 0.03, (30, 200, 30))]
        )
        self.color_pub = self.create_publisher(Image, "/top/color/image_raw", qos_profile_sensor_data)
        self.depth_pub = self.create_publisher(Image, "/top/aligned_depth_to_color/image_raw", qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, "/top/color/camera_info", qos_profile_sensor_data)
        self.encoding = encoding
        self.send_info = True
        self.stamp_offset = 0.0
        self.stamps = []
        # Streams like a camera driver (the node decides only on images taken after the instruction arrived).
        self.streaming = True
        self.create_timer(0.05, lambda: self.streaming and self.publish())

    def publish(self):
        now = self.get_clock().now()
        header = Image().header
        header.stamp = (now - rclpy_duration(self.stamp_offset)).to_msg()
        header.frame_id = "top_color_optical_frame"
        depth = self.depth if self.encoding == "32FC1" else (self.depth * 1000).astype(np.uint16)
        self.color_pub.publish(array_to_image(self.rgb, "rgb8", header))
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
        defaults = {
            "checkpoint": str(random_checkpoint),
            "device": "cpu",
            "warm_up": False,
            "camera_names": ["top"],
            "camera_namespaces": ["/top"],
            "camera_poses_file": str(poses),
            "execute": False,
            "execute_action": "peer/execute_pick_place",
            "server_wait_timeout": 1.0,
        }
        defaults.update(params)
        node = CliportNode(
            context=ros_context,
            policy_factory=lambda c, d: policy,
            parameter_overrides=[Parameter(k, value=v) for k, v in defaults.items()],
        )
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
    yield type(
        "Rig",
        (),
        dict(
            start=start,
            cams=cams,
            client=client,
            executor=executor,
            received=received,
            status=status,
            context=ros_context,
        ),
    )
    for node in nodes:
        node.stop_worker()
    executor.shutdown()  # the nodes are destroyed with the test's context (conftest.fresh_ros_context)


def feed_images(rig, node):
    """Publish camera frames until the node holds the pair just published."""

    def arrived():
        stamp = rig.cams.publish()
        spin_until(rig.executor, lambda: False, 0.05)
        latest = node.cameras[0].latest()[0]
        return latest is not None and (latest.header.stamp.sec, latest.header.stamp.nanosec) == (
            stamp.sec,
            stamp.nanosec,
        )

    assert spin_until(rig.executor, arrived, 10)


def follow(rig, instruction, **goal):
    # One client per test: a fresh ActionClient per goal has to be discovered again, which under load can
    # take long enough to look like a missing server.
    if not hasattr(rig, "follow_client"):
        rig.follow_client = ActionClient(rig.client, FollowInstruction, "follow_instruction")
    return run_action(
        rig.executor,
        rig.follow_client,
        FollowInstruction.Goal(instruction=instruction, **goal),
        timeout=60,
        expect_feedback=0,
    )


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


def test_each_step_publishes_its_overlay_once_its_outcome_is_known(rig):
    """For RViz: the maps blended on the view, the pick and place marked, the instruction and the outcome."""
    from cliport_ros.ros.images import color_to_array

    overlays = []
    rig.client.create_subscription(Image, "/cliport/overlay", overlays.append, 10)
    node = rig.start(execute=True)
    rig.executor.add_node(PeerNode(context=rig.context))
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=2, execute=True)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert spin_until(rig.executor, lambda: len(overlays) == 2, 10), len(overlays)
    rows, cols = node.workspace.shape
    for overlay, step in zip(overlays, result.steps):
        picture = color_to_array(overlay)
        assert picture.shape[1] == 2 * 2 * cols + 4 and picture.shape[0] > 2 * rows
        # Stamped like the decision it shows, in the base frame.
        assert (overlay.header.stamp, overlay.header.frame_id) == (step.header.stamp, "base_link")


@pytest.mark.parametrize(
    "instruction, message",
    [
        ("", "empty or whitespace only"),
        ("   ", "empty or whitespace only"),
        ("a" * 1001, "limit is 1000"),
    ],
)
def test_bad_instructions_fail_the_goal_and_the_node_stays_up(rig, instruction, message):
    node = rig.start()
    feed_images(rig, node)
    status, result, _ = follow(rig, instruction, max_steps=1)
    assert status == GoalStatus.STATUS_ABORTED
    assert result.error_code == FollowInstruction.Result.INVALID_INSTRUCTION and message in result.message
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert status == GoalStatus.STATUS_SUCCEEDED


def test_no_images_stale_images_and_missing_camera_info(rig):
    rig.cams.streaming = False
    node = rig.start(max_image_age=0.5, image_wait_timeout=0.5)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert result.error_code == FollowInstruction.Result.NO_OBSERVATION
    assert "no synchronised color/depth images from camera 'top'" in result.message and "within 0.5 s" in result.message

    rig.cams.send_info, rig.cams.streaming = False, True
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert "no camera_info yet on /top/color/camera_info" in result.message

    # Images stamped 5 s ago never qualify: none was taken after the instruction.
    rig.cams.send_info, rig.cams.stamp_offset = True, 5.0
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert result.error_code == FollowInstruction.Result.NO_OBSERVATION
    assert "no image from camera 'top' taken after the instruction within 0.5 s" in result.message
    behind = float(re.search(r"its newest is ([0-9.]+) s older", result.message).group(1))
    assert 4.0 < behind <= 5.0, result.message  # 5 s minus the time between its publication and the goal


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
    assert (
        result.error_code == FollowInstruction.Result.NO_OBSERVATION and "no view has any valid depth" in result.message
    )


def test_arm_controller_absent_fails_with_a_reason(rig):
    node = rig.start(execute=True, execute_action="no_such_arm")
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1, execute=True)
    assert status == GoalStatus.STATUS_ABORTED
    assert result.error_code == FollowInstruction.Result.EXECUTION_FAILED
    assert (
        "arm controller action 'no_such_arm' did not answer the goal within server_wait_timeout (1.0 s)"
        in result.message
    )
    assert result.steps_taken == 1  # the decision was made, and is reported, but not executed


def test_a_failing_arm_fails_the_goal_with_the_arms_reason(rig):
    node = rig.start(execute=True)
    rig.executor.add_node(PeerNode(context=rig.context))
    feed_images(rig, node)
    status, result, _ = follow(rig, "fail", max_steps=3, execute=True)  # the test arm fails "fail" at the grasp
    assert status == GoalStatus.STATUS_ABORTED
    assert result.error_code == FollowInstruction.Result.EXECUTION_FAILED
    assert result.message == "step 1: arm failed (code 6): suction found nothing to pick"
    assert result.steps_taken == 1
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1, execute=True)
    assert status == GoalStatus.STATUS_SUCCEEDED  # still up


def test_cancel_during_execution(rig):
    node = rig.start(execute=True)
    rig.executor.add_node(PeerNode(context=rig.context))
    feed_images(rig, node)
    client = ActionClient(rig.client, FollowInstruction, "follow_instruction")
    # The test peer holds a goal whose instruction is "hold" until it is cancelled.
    status, result, feedback = run_action(
        rig.executor,
        client,
        FollowInstruction.Goal(instruction="hold", max_steps=3, execute=True),
        cancel_after_feedback=True,
        timeout=60,
        expect_feedback=0,
    )
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
        rig.executor, lambda: any("rejected: busy" in s for s in rig.status), 5
    )
    node._busy.clear()


def test_corrupt_checkpoint_fails_configure_with_a_clear_error(ros_context, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    node = CliportNode(
        context=ros_context,
        parameter_overrides=[Parameter("checkpoint", value=str(bad)), Parameter("device", value="cpu")],
    )
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "configure failed" in node.last_error and str(bad) in node.last_error
    node.destroy_node()


def test_parameter_errors_name_the_parameter(ros_context, policy):
    node = CliportNode(
        context=ros_context,
        policy_factory=lambda c, d: policy,
        parameter_overrides=[Parameter("on_busy", value="drop")],
    )
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "parameter on_busy must be 'queue' or 'reject'" in node.last_error
    node.destroy_node()


# ----- the ROS loop: freshness, responsiveness, lifecycle, bad input ---------------------------------------------


def publish_instruction(rig, text):
    if not hasattr(rig, "instruction_pub"):
        rig.instruction_pub = rig.client.create_publisher(String, "/cliport/instruction", 10)
    assert spin_until(rig.executor, lambda: rig.instruction_pub.get_subscription_count() > 0, 10)
    rig.instruction_pub.publish(String(data=text))


def test_decides_only_on_images_taken_after_the_instruction(rig):
    rig.cams.streaming = False
    node = rig.start(image_wait_timeout=10.0)
    feed_images(rig, node)  # a pair from before the instruction: it must not be used
    old = rig.cams.stamps[-1]
    if not hasattr(rig, "follow_client"):
        rig.follow_client = ActionClient(rig.client, FollowInstruction, "follow_instruction")
    rig.follow_client.wait_for_server(timeout_sec=10)
    future = rig.follow_client.send_goal_async(
        FollowInstruction.Goal(instruction="put the red block in the bowl", max_steps=1)
    )
    assert spin_until(rig.executor, future.done, 30) and future.result().accepted
    result_future = future.result().get_result_async()
    spin_until(rig.executor, lambda: False, 0.5)
    assert not result_future.done(), "decided without waiting for an image taken after the instruction"
    fresh = rig.cams.publish()
    assert spin_until(rig.executor, result_future.done, 30)
    result = result_future.result().result
    assert result.success, result.message
    stamp = result.steps[0].header.stamp
    assert (stamp.sec, stamp.nanosec) == (fresh.sec, fresh.nanosec) != old


def test_images_stamped_in_the_future_are_refused(rig):
    node = rig.start(image_wait_timeout=1.0)
    rig.cams.stamp_offset = -1000.0
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert result.error_code == FollowInstruction.Result.NO_OBSERVATION
    assert "in the future (max_stamp_lead is 0.50 s)" in result.message


def test_many_queued_goals_leave_the_node_responsive(rig):
    """Each queued goal once held an executor thread: with four, the node stopped taking images and answers."""
    node = rig.start(execute=True, max_queue=20)
    peer = PeerNode(context=rig.context)
    rig.executor.add_node(peer)
    feed_images(rig, node)
    client = ActionClient(rig.client, FollowInstruction, "follow_instruction")
    client.wait_for_server(timeout_sec=10)
    goals = [
        client.send_goal_async(
            FollowInstruction.Goal(instruction=f"put block {k} in the bowl", max_steps=1, execute=True)
        )
        for k in range(8)
    ]
    assert spin_until(rig.executor, lambda: all(g.done() for g in goals), 60)
    results = [g.result().get_result_async() for g in goals]
    assert spin_until(rig.executor, lambda: all(r.done() for r in results), 120)
    messages = [r.result().result.message for r in results]
    assert all(r.result().status == GoalStatus.STATUS_SUCCEEDED for r in results), messages
    assert sorted(peer.executions) == sorted(f"put block {k} in the bowl" for k in range(8))


def test_deactivate_and_activate_again_acts_once_per_instruction(rig):
    node = rig.start(execute=True)
    peer = PeerNode(context=rig.context)
    rig.executor.add_node(peer)
    for _ in range(2):
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    feed_images(rig, node)
    publish_instruction(rig, "put the red block in the green bowl")
    assert spin_until(rig.executor, lambda: any("1 step(s)" in s for s in rig.status), 60), rig.status
    spin_until(rig.executor, lambda: False, 1.0)  # time for a second execution, if there were one
    assert peer.executions == ["put the red block in the green bowl"]
    assert len(rig.received) == 1


def test_an_inactive_node_refuses_work_with_a_reason(rig):
    node = rig.start()
    feed_images(rig, node)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert status == GoalStatus.STATUS_ABORTED and result.error_code == FollowInstruction.Result.INACTIVE
    assert "not active" in result.message
    publish_instruction(rig, "put the red block in the green bowl")
    assert spin_until(rig.executor, lambda: any("refused: the node is not active" in s for s in rig.status), 10)
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message


def test_deactivate_during_execution_stops_the_arm_and_ends_the_goal(rig):
    node = rig.start(execute=True)
    peer = PeerNode(context=rig.context)
    rig.executor.add_node(peer)
    feed_images(rig, node)
    client = ActionClient(rig.client, FollowInstruction, "follow_instruction")
    client.wait_for_server(timeout_sec=10)
    running = client.send_goal_async(FollowInstruction.Goal(instruction="hold", max_steps=1, execute=True))
    queued = client.send_goal_async(FollowInstruction.Goal(instruction="put it in the bowl", max_steps=1, execute=True))
    assert spin_until(rig.executor, lambda: running.done() and queued.done(), 30)
    assert spin_until(rig.executor, lambda: peer.executions == ["hold"], 30)
    t0 = time.monotonic()
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert time.monotonic() - t0 < 5.0
    results = [running.result().get_result_async(), queued.result().get_result_async()]
    assert spin_until(rig.executor, lambda: all(r.done() for r in results), 30)
    codes = [r.result().result.error_code for r in results]
    assert codes == [FollowInstruction.Result.INACTIVE] * 2, [r.result().result.message for r in results]
    assert peer.cancel_seen.is_set()  # the arm was told to stop
    assert peer.executions == ["hold"]


def test_the_goal_is_sent_even_when_the_readiness_poll_says_no(rig):
    """wait_for_server() readiness flickers while other processes make same-named servers: the answer decides."""
    node = rig.start(execute=True)
    rig.executor.add_node(PeerNode(context=rig.context))
    node.execute_client.server_is_ready = lambda: False  # double: the poll as it flickers
    node.execute_client.wait_for_server = lambda timeout_sec=None: False
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=1, execute=True)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message


@pytest.mark.parametrize(
    "text",
    [
        "put it\n[ERROR] [cliport_node]: arm collided",
        "put it\x7f",
        "put it\x85 now",
        "put the \u202eblock",
        "put it\x1b[31m",
    ],
)
def test_control_and_bidi_characters_are_refused_and_never_logged_raw(rig, text):
    node = rig.start()
    feed_images(rig, node)
    publish_instruction(rig, text)
    assert spin_until(rig.executor, lambda: any("control or format characters" in s for s in rig.status), 10)
    assert not any(ch in s for s in rig.status for ch in "\n\x7f\x85\u202e\x1b"), rig.status
    status, result, _ = follow(rig, text, max_steps=1)
    assert result.error_code == FollowInstruction.Result.INVALID_INSTRUCTION
    assert not any(ch in result.message for ch in "\n\x7f\x85\u202e\x1b"), result.message


def test_a_burst_of_instructions_is_answered_one_by_one(rig):
    node = rig.start(max_queue=10)
    feed_images(rig, node)
    for k in range(50):
        publish_instruction(rig, f"put block {k} in the bowl")
    answered = lambda: [s for s in rig.status if "step(s) for" in s or "queue full" in s]  # noqa: E731
    assert spin_until(rig.executor, lambda: len(answered()) >= 50, 120), len(answered())
    spin_until(rig.executor, lambda: False, 0.5)
    assert len(answered()) == 50
    assert sum("queue full" in s for s in answered()) >= 1 and sum("step(s) for" in s for s in answered()) >= 11


def test_a_queued_instruction_expires(rig):
    rig.cams.streaming = False
    rig.start(image_wait_timeout=1.5, max_queue_age=0.5)
    publish_instruction(rig, "put the red block in the green bowl")  # waits 1.5 s for images, then fails
    publish_instruction(rig, "put the blue block in the green bowl")
    assert spin_until(rig.executor, lambda: any("expired" in s for s in rig.status), 10), rig.status
    assert any("instruction expired: it waited" in s and "max_queue_age is 0.5 s" in s for s in rig.status)


def test_a_step_finishing_after_the_node_was_destroyed_publishes_nothing_and_does_not_raise(rig):
    """A shutdown whose worker join timed out while the arm ran: the step's outputs must not be published to
    destroyed publishers (v0.8's worker raised InvalidHandle from the overlay and the status line)."""
    node = rig.start()
    node.stop_worker("test")
    rig.executor.remove_node(node)
    node.destroy_node()
    # What the worker still does at the end of its step, after destroy_node():
    node._status("step 1: executed")
    node._publish_overlay(None, "x", "step 1: executed", PickPlace())  # never reaches the destroyed publisher


def test_a_finished_ros_context_takes_the_nodes_left_alive_out_of_the_graph():
    """A node its test never destroyed (still referenced here) leaves the graph when its context ends, so no
    later test finds stale servers of its services (nine stale /cliport/propose servers once did)."""
    from conftest import fresh_ros_context
    from rclpy.node import Node

    def seen(observer, name):
        return name in observer.get_node_names()

    def wait(predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.1)
        return predicate()

    with fresh_ros_context() as watching:
        observer = Node("graph_observer", context=watching)
        with fresh_ros_context() as finished:
            left = Node("left_alive_by_its_test", context=finished)
            assert wait(lambda: seen(observer, "left_alive_by_its_test"), 30)
        assert left is not None  # the test still holds the node
        assert wait(lambda: not seen(observer, "left_alive_by_its_test"), 30), observer.get_node_names()


def _propose_servers(rig) -> str:
    """Which nodes of the graph serve /cliport/propose, and which cliport processes run: why a client waits."""
    import subprocess

    servers = []
    for name, namespace in rig.client.get_node_names_and_namespaces():
        try:
            services = rig.client.get_service_names_and_types_by_node(name, namespace)
        except Exception as exc:  # a node that left the graph between the two calls
            services = [(f"<{exc}>", [])]
        if any(s == "/cliport/propose" for s, _ in services):
            servers.append(f"{namespace.rstrip('/')}/{name}")
    ps = subprocess.run(["ps", "-eo", "pid,etime,args"], capture_output=True, text=True).stdout
    procs = [line for line in ps.splitlines() if "cliport" in line and "pytest" not in line]
    return f"servers of /cliport/propose: {servers}; cliport processes: {procs}"


def propose(rig, instruction, run_policy=True):
    from cliport_ros.srv import Propose

    if not hasattr(rig, "propose_client"):
        rig.propose_client = rig.client.create_client(Propose, "/cliport/propose")
    # discovery of a new service can take tens of seconds on a loaded machine
    assert spin_until(rig.executor, rig.propose_client.service_is_ready, 60), _propose_servers(rig)
    future = rig.propose_client.call_async(Propose.Request(instruction=instruction, run_policy=run_policy))
    assert spin_until(rig.executor, future.done, 60)
    return future.result()


def test_a_proposal_carries_the_view_the_maps_and_the_decision_and_moves_nothing(rig):
    from cliport_ros.ros.images import color_to_array

    node = rig.start(execute=True)
    peer = PeerNode(context=rig.context)
    rig.executor.add_node(peer)
    feed_images(rig, node)
    reply = propose(rig, "put the red block in the green bowl")
    assert reply.success and reply.error_code == FollowInstruction.Result.SUCCESS, reply.message
    rows, cols = node.workspace.shape
    assert (reply.color.height, reply.color.width, reply.color.encoding) == (rows, cols, "rgb8")
    assert (reply.height.encoding, reply.pick_heatmap.encoding, reply.place_heatmap.encoding) == ("32FC1",) * 3
    pick_map = np.frombuffer(bytes(reply.pick_heatmap.data), np.float32).reshape(rows, cols)
    assert pick_map.sum() == pytest.approx(1.0, abs=1e-3)
    assert tuple(reply.pick_pixel) == np.unravel_index(int(pick_map.argmax()), pick_map.shape)
    assert node.workspace.xyz_to_pixel((reply.proposal.pick.position.x, reply.proposal.pick.position.y, 0)) == tuple(
        reply.pick_pixel
    )
    assert json.loads(reply.workspace)["pixel_size"] == node.workspace.pixel_size
    # the view is the one the decision was made on: the red block is in it
    assert (color_to_array(reply.color)[..., 0] > 150).any()
    # published like any decision, executed by nobody
    assert spin_until(rig.executor, lambda: bool(rig.received), 10)
    assert rig.received[-1].instruction == "put the red block in the green bowl"
    spin_until(rig.executor, lambda: False, 0.5)
    assert peer.executions == []
    looked = propose(rig, "", run_policy=False)
    assert looked.success and looked.pick_heatmap.data.tolist() == [] and looked.color.width == cols


def test_proposals_are_refused_with_the_reason(rig):
    node = rig.start(image_wait_timeout=0.5)
    bad = propose(rig, "   ")
    assert not bad.success and bad.error_code == FollowInstruction.Result.INVALID_INSTRUCTION
    rig.cams.streaming = False
    spin_until(rig.executor, lambda: False, 0.3)
    blind = propose(rig, "put the red block in the green bowl")
    assert not blind.success and blind.error_code == FollowInstruction.Result.NO_OBSERVATION, blind.message
    rig.cams.streaming = True
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    idle = propose(rig, "put the red block in the green bowl")
    assert not idle.success and idle.error_code == FollowInstruction.Result.INACTIVE and "not active" in idle.message


def test_each_executed_step_is_published_with_its_source_and_result(rig):
    from cliport_ros.msg import Execution

    executions = []
    rig.client.create_subscription(Execution, "/cliport/executions", executions.append, 10)
    node = rig.start(execute=True)
    peer = PeerNode(context=rig.context)
    rig.executor.add_node(peer)
    feed_images(rig, node)
    status, result, _ = follow(rig, "put the red block in the green bowl", max_steps=2, execute=True)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert spin_until(rig.executor, lambda: len(executions) == 2, 10)
    assert [e.source for e in executions] == [Execution.SOURCE_POLICY] * 2
    assert all(e.success and e.error_code == ExecutePickPlace.Result.SUCCESS for e in executions)
    assert [e.pick_place.pick for e in executions] == [s.pick for s in result.steps]


def test_an_empty_checkpoint_takes_the_shipped_model_trained_on_the_task(ros_context, policy, tmp_path, monkeypatch):
    from cliport_ros.resources import DEFAULT_CHECKPOINT, checkpoint_path

    # a second shipped model, trained on stack-block-pyramid, beside the default one
    shipped = tmp_path / "checkpoints"
    pyramid = shipped / "tiny-stack-block-pyramid-seq-seen-colors"
    pyramid.mkdir(parents=True)
    (pyramid / "config.json").write_text(json.dumps({"metadata": {"tasks": ["stack-block-pyramid-seq-seen-colors"]}}))
    (shipped / "notes").mkdir()  # not a checkpoint: ignored
    monkeypatch.setenv("CLIPORT_ROS_CHECKPOINT_DIR", str(shipped))
    asked = []

    def factory(checkpoint, device):
        asked.append(checkpoint)
        return policy

    for task in ("stack-block-pyramid-seq-seen-colors", "put-block-in-bowl-seen-colors", "align-rope", ""):
        node = CliportNode(
            context=ros_context,
            policy_factory=factory,
            parameter_overrides=[Parameter("task", value=task), Parameter("warm_up", value=False)],
        )
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.last_error
        node.destroy_node()
    default = str(checkpoint_path(DEFAULT_CHECKPOINT))
    assert asked == [str(pyramid), default, default, default]
    assert (
        "put-block-in-bowl-seen-colors"
        in json.loads((checkpoint_path(DEFAULT_CHECKPOINT) / "config.json").read_text())["metadata"]["tasks"]
    )
