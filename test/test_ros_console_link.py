"""The console's ROS side (RosCellLink) against real nodes: a test peer serving ExecutePickPlace as an arm does.
Executions are published with their source, STOP cancels the goal on the arm, a goal nobody answers is given up
(and nothing is recorded)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_peers import PeerNode

from cliport_ros.action import ExecutePickPlace
from cliport_ros.msg import Execution
from cliport_ros.ros import console_node
from cliport_ros.ros.console_node import RosCellLink, make_console_node
from cliport_ros.types import PickPlace, Pose


def action(instruction: str) -> PickPlace:
    return PickPlace(
        Pose.from_xyz_yaw((0.45, 0.1, 0.02)), Pose.from_xyz_yaw((0.5, -0.1, 0.02), 0.4), instruction=instruction
    )


@pytest.fixture
def graph(ros_context):
    peer = PeerNode(context=ros_context)
    console = make_console_node(
        context=ros_context, parameter_overrides=[Parameter("execute_action", value="peer/execute_pick_place")]
    )
    listener = Node("listener", context=ros_context)
    heard: list = []
    listener.create_subscription(Execution, "/cliport/executions", heard.append, 10)
    executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
    for node in (peer, console, listener):
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        yield console, peer, heard
    finally:
        executor.shutdown()
        spinner.join(timeout=5)
        for node in (peer, console, listener):
            node.destroy_node()


async def _wait(predicate, timeout: float) -> bool:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def test_an_execution_runs_on_the_arm_and_is_published_with_its_source(graph):
    console, peer, heard = graph

    async def script():
        link = RosCellLink(console, asyncio.get_running_loop())
        assert await _wait(lambda: link._action.server_is_ready(), 20)
        return await link.execute(action("move it"), "operator")

    result = asyncio.run(script())
    assert result.success and result.moved and result.error_code == ExecutePickPlace.Result.SUCCESS
    assert peer.executions == ["move it"]
    assert asyncio.run(_wait(lambda: bool(heard), 10))
    assert heard[0].source == Execution.SOURCE_OPERATOR and heard[0].success
    assert heard[0].pick_place.place.position.x == pytest.approx(0.5)


def test_stop_cancels_the_goal_on_the_arm(graph):
    console, peer, heard = graph

    async def script():
        link = RosCellLink(console, asyncio.get_running_loop())
        assert await _wait(lambda: link._action.server_is_ready(), 20)
        running = asyncio.ensure_future(link.execute(action("hold"), "policy"))
        assert await _wait(lambda: link._goal is not None, 20)
        assert await link.stop()
        return await asyncio.wait_for(running, 30), await link.stop()

    result, again = asyncio.run(script())
    assert not result.success and result.error_code == ExecutePickPlace.Result.CANCELED and result.moved
    assert peer.cancel_seen.is_set() and again is False  # nothing left to stop


def test_a_goal_nobody_answers_is_given_up_and_not_a_step(ros_context, monkeypatch):
    monkeypatch.setattr(console_node, "GOAL_ANSWER_TIMEOUT", 1.0)
    console = make_console_node(
        context=ros_context, parameter_overrides=[Parameter("execute_action", value="nobody/execute_pick_place")]
    )
    executor = MultiThreadedExecutor(num_threads=2, context=ros_context)
    executor.add_node(console)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:

        async def script():
            return await RosCellLink(console, asyncio.get_running_loop()).execute(action("x"), "policy")

        result = asyncio.run(script())
    finally:
        executor.shutdown()
        spinner.join(timeout=5)
        console.destroy_node()
    assert not result.success and not result.moved and result.error_code == ExecutePickPlace.Result.UNKNOWN
    assert "did not answer the goal within 1 s" in result.message
