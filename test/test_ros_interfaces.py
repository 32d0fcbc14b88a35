"""The package's own interfaces over real rclpy: topic and both actions, in one process and across two."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import rclpy
from action_msgs.msg import GoalStatus
from conftest import spin_until
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from ros_peers import STAGES, PeerNode, sample_pick_place

from cliport_ros.action import ExecutePickPlace, FollowInstruction
from cliport_ros.msg import PickPlace

HERE = Path(__file__).resolve().parent


def assert_same_pick_place(a: PickPlace, b: PickPlace) -> None:
    assert a.header.frame_id == b.header.frame_id
    assert (a.header.stamp.sec, a.header.stamp.nanosec) == (b.header.stamp.sec, b.header.stamp.nanosec)
    for pose in ("pick", "place"):
        pa, pb = getattr(a, pose), getattr(b, pose)
        assert (pa.position.x, pa.position.y, pa.position.z) == (pb.position.x, pb.position.y, pb.position.z)
        qa, qb = pa.orientation, pb.orientation
        assert (qa.x, qa.y, qa.z, qa.w) == (qb.x, qb.y, qb.z, qb.w)
    assert a.pick_confidence == pytest.approx(b.pick_confidence)
    assert a.place_confidence == pytest.approx(b.place_confidence)
    assert a.instruction == b.instruction
    assert a.primitive == b.primitive


def receive_one(executor, node, topic: str, publish=None, timeout: float = 10.0) -> PickPlace:
    received: list[PickPlace] = []
    node.create_subscription(PickPlace, topic, received.append, 10)
    spin_until(executor, lambda: (publish and not received and publish()) or bool(received), timeout)
    assert received, f"no PickPlace arrived on {topic} within {timeout} s"
    return received[0]


def run_action(
    executor,
    client: ActionClient,
    goal,
    cancel_after_feedback: bool = False,
    timeout: float = 60.0,
    expect_feedback: int = 1,
):
    """Send a goal; return (status, result, feedback list). Optionally cancel after the first feedback.

    The feedback list is everything the server published for this goal, read from the action's feedback
    topic by a subscription of our own. rclpy's ActionClient cannot give that: it processes a ready result
    before ready feedback and then forgets the goal's feedback callback, so on a busy machine the tail of
    the feedback (three of six were seen) never reaches the callback, and feedback that comes before the
    goal response is dropped too. What the callback did get must be an in-order run of what was published."""
    action_type = client._action_type
    topic = f"{client._action_name}/_action/feedback"
    published = []
    tap = client._node.create_subscription(action_type.Impl.FeedbackMessage, topic, published.append, 50)
    # wait_for_server() polls rcl's readiness check, which was seen to stay false for over a minute on a loaded
    # machine for a server that answered goals: wait a while, then let the goal itself show whether it is served.
    client.wait_for_server(timeout_sec=min(timeout, 10.0))
    # the tap must be matched with the server's feedback writer before the goal, or it misses the first stages
    assert spin_until(executor, lambda: tap.get_publisher_count() >= 1, timeout), f"no publisher on {topic}"
    delivered = []
    future = client.send_goal_async(goal, feedback_callback=lambda msg: delivered.append(msg.feedback))
    assert spin_until(executor, future.done, timeout), "no answer to the goal: action server not available"
    handle = future.result()
    assert handle.accepted
    uuid = bytes(handle.goal_id.uuid)
    feedback = lambda: [m.feedback for m in published if bytes(m.goal_id.uuid) == uuid]  # noqa: E731
    if cancel_after_feedback:
        assert spin_until(executor, lambda: bool(feedback()), timeout)
        cancel = handle.cancel_goal_async()
        assert spin_until(executor, cancel.done, timeout)
        assert len(cancel.result().goals_canceling) == 1
    result_future = handle.get_result_async()
    assert spin_until(executor, result_future.done, timeout)
    response = result_future.result()
    spin_until(executor, lambda: len(feedback()) >= expect_feedback, timeout)
    client._node.destroy_subscription(tap)
    everything = [str(f) for f in feedback()]
    got = [str(f) for f in delivered]
    # on failure, the stages alone, so that both lists fit in the report
    assert any(everything[i : i + len(got)] == got for i in range(len(everything) - len(got) + 1)), (
        f"feedback stages given to the callback, then published: {[f.stage for f in delivered]}, "
        f"{[f.stage for f in feedback()]}"
    )
    return response.status, response.result, feedback()


def test_pick_place_message_arrives_intact_in_another_node(ros_context):
    sender = Node("sender", context=ros_context)
    receiver = Node("receiver", context=ros_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=ros_context)
    executor.add_node(sender)
    executor.add_node(receiver)
    publisher = sender.create_publisher(PickPlace, "/cliport/pick_place", 10)
    sent = sample_pick_place("put the red block in the green bowl", 3)
    got = receive_one(executor, receiver, "/cliport/pick_place", publish=lambda: publisher.publish(sent))
    assert_same_pick_place(got, sent)
    assert got.PRIMITIVE_PUSH == "push"
    executor.shutdown()


@pytest.fixture
def in_process_peer(ros_context):
    peer = PeerNode(context=ros_context)
    client_node = Node("client", context=ros_context)
    executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
    executor.add_node(peer)
    executor.add_node(client_node)
    yield executor, client_node
    executor.shutdown()


def test_execute_pick_place_round_trip_in_process(in_process_peer):
    executor, node = in_process_peer
    client = ActionClient(node, ExecutePickPlace, "peer/execute_pick_place")
    goal = ExecutePickPlace.Goal(pick_place=sample_pick_place("put the red block in the green bowl"))
    status, result, feedback = run_action(executor, client, goal, expect_feedback=6)
    assert status == GoalStatus.STATUS_SUCCEEDED
    assert result.success and result.error_code == ExecutePickPlace.Result.SUCCESS
    assert result.message == "executed pick at x=0.400 for 'put the red block in the green bowl'"
    assert [f.stage_name for f in feedback] == STAGES
    assert [f.stage for f in feedback] == [
        ExecutePickPlace.Feedback.APPROACH,
        ExecutePickPlace.Feedback.GRASP,
        ExecutePickPlace.Feedback.LIFT,
        ExecutePickPlace.Feedback.MOVE,
        ExecutePickPlace.Feedback.RELEASE,
        ExecutePickPlace.Feedback.RETREAT,
    ]


def test_execute_pick_place_cancel_in_process(in_process_peer):
    executor, node = in_process_peer
    client = ActionClient(node, ExecutePickPlace, "peer/execute_pick_place")
    goal = ExecutePickPlace.Goal(pick_place=sample_pick_place("hold"))
    status, result, feedback = run_action(executor, client, goal, cancel_after_feedback=True)
    assert status == GoalStatus.STATUS_CANCELED
    assert not result.success and result.error_code == ExecutePickPlace.Result.CANCELED
    assert result.message == "canceled during approach"
    assert [f.stage_name for f in feedback] == ["approach"]


def test_follow_instruction_round_trip_and_cancel_in_process(in_process_peer):
    executor, node = in_process_peer
    client = ActionClient(node, FollowInstruction, "peer/follow_instruction")
    goal = FollowInstruction.Goal(instruction="put the blue blocks in a green bowl", max_steps=3, execute=True)
    status, result, feedback = run_action(executor, client, goal, expect_feedback=9)
    assert status == GoalStatus.STATUS_SUCCEEDED
    assert result.success and result.steps_taken == 3 and len(result.steps) == 3
    assert result.message == "3 steps, execute=True"
    assert [s.pick.position.x for s in result.steps] == pytest.approx([0.41, 0.42, 0.43])
    assert [(f.step, f.stage_name) for f in feedback][:3] == [(1, "perceive"), (1, "predict"), (1, "execute")]
    assert feedback[-1].latest.instruction == "put the blue blocks in a green bowl"

    status, result, _ = run_action(
        executor, client, FollowInstruction.Goal(instruction="hold", max_steps=2), cancel_after_feedback=True
    )
    assert status == GoalStatus.STATUS_CANCELED
    assert result.error_code == FollowInstruction.Result.CANCELED and result.steps_taken == 0


@pytest.fixture
def peer_process():
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "ros_peers.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=str(HERE),
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_interfaces_across_two_processes(ros_context, peer_process):
    node = Node("cross_process_client", context=ros_context)
    executor = MultiThreadedExecutor(num_threads=2, context=ros_context)
    executor.add_node(node)
    try:
        got = receive_one(executor, node, "peer/pick_place", timeout=60.0)
        expected = sample_pick_place("put the red block in the green bowl", got.header.stamp.sec - 100)
        assert_same_pick_place(got, expected)

        execute = ActionClient(node, ExecutePickPlace, "peer/execute_pick_place")
        status, result, feedback = run_action(
            executor, execute, ExecutePickPlace.Goal(pick_place=sample_pick_place("move it", 5)), expect_feedback=6
        )
        assert status == GoalStatus.STATUS_SUCCEEDED and result.success
        assert result.message == "executed pick at x=0.450 for 'move it'"
        assert [f.stage_name for f in feedback] == STAGES
        status, result, _ = run_action(
            executor, execute, ExecutePickPlace.Goal(pick_place=sample_pick_place("hold")), cancel_after_feedback=True
        )
        assert status == GoalStatus.STATUS_CANCELED and result.error_code == ExecutePickPlace.Result.CANCELED

        follow = ActionClient(node, FollowInstruction, "peer/follow_instruction")
        status, result, feedback = run_action(
            executor,
            follow,
            FollowInstruction.Goal(instruction="stack the blocks", max_steps=2, execute=False),
            expect_feedback=6,
        )
        assert status == GoalStatus.STATUS_SUCCEEDED
        assert result.steps_taken == 2 and result.message == "2 steps, execute=False"
        assert len(feedback) == 6
        status, result, _ = run_action(
            executor, follow, FollowInstruction.Goal(instruction="hold", max_steps=1), cancel_after_feedback=True
        )
        assert status == GoalStatus.STATUS_CANCELED and result.error_code == FollowInstruction.Result.CANCELED
    finally:
        executor.shutdown()
