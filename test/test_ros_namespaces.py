"""Two simulated cells side by side in one process, under /cell_a and /cell_b: every topic, service and action
name of the nodes is relative, so an instruction to one cell moves that cell only."""

from __future__ import annotations

import pytest
from conftest import spin_until
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

from cliport_ros.action import FollowInstruction
from cliport_ros.msg import PickPlace, TaskStatus
from cliport_ros.ros.cliport_node import CliportNode
from cliport_ros.ros.sim_node import LATCHED, SimNode

CELLS = ("cell_a", "cell_b")


@pytest.fixture
def two_cells(ros_context, random_checkpoint):
    from cliport_ros.model import Policy
    from cliport_ros.perception.camera import load_camera_rig

    names = list(load_camera_rig().names)
    made: list = []
    nodes: dict[str, tuple[CliportNode, SimNode]] = {}
    executor = MultiThreadedExecutor(num_threads=6, context=ros_context)
    try:
        for ns in CELLS:
            sim = SimNode(
                context=ros_context,
                namespace=ns,
                parameter_overrides=[Parameter("seed", value=10001), Parameter("publish_instructions", value=False)],
            )
            made.append(sim)
            agent = CliportNode(
                context=ros_context,
                namespace=ns,
                policy_factory=lambda checkpoint, device: Policy.load(random_checkpoint, device="cpu"),
                parameter_overrides=[
                    Parameter("camera_names", value=names),
                    Parameter("camera_namespaces", value=names),
                    Parameter("warm_up", value=False),
                ],
            )
            made.append(agent)
            assert agent.trigger_configure() == TransitionCallbackReturn.SUCCESS, agent.last_error
            agent.trigger_activate()
            nodes[ns] = (agent, sim)
        client = Node("two_cells_client", context=ros_context)
        made.append(client)
        for node in made:
            executor.add_node(node)
        yield executor, client, nodes
    finally:
        executor.shutdown()
        for node in reversed(made):
            if isinstance(node, CliportNode):
                node.stop_worker("test over")
            node.destroy_node()


def test_two_cells_in_two_namespaces_do_not_cross(two_cells):
    executor, client, nodes = two_cells
    decisions = {ns: [] for ns in CELLS}
    status = {ns: [] for ns in CELLS}
    for ns in CELLS:
        client.create_subscription(PickPlace, f"/{ns}/cliport/pick_place", decisions[ns].append, 10)
        client.create_subscription(TaskStatus, f"/{ns}/sim/task_status", status[ns].append, LATCHED)
    assert spin_until(executor, lambda: all(status[ns] for ns in CELLS), 60)
    assert all(status[ns][-1].step == 0 for ns in CELLS)

    # A goal to cell_a: cell_a decides and its simulated arm moves; cell_b hears nothing.
    follow = ActionClient(client, FollowInstruction, "/cell_a/follow_instruction")
    assert follow.wait_for_server(timeout_sec=30)
    goal = FollowInstruction.Goal(instruction=status["cell_a"][-1].instruction, max_steps=1, execute=True)
    sent = follow.send_goal_async(goal)
    assert spin_until(executor, sent.done, 60) and sent.result().accepted
    result = sent.result().get_result_async()
    assert spin_until(executor, result.done, 120)
    assert result.result().result.steps_taken == 1, result.result().result.message
    assert spin_until(executor, lambda: status["cell_a"][-1].step == 1, 30)
    assert len(decisions["cell_a"]) == 1 and decisions["cell_b"] == []
    assert status["cell_b"][-1].step == 0

    # An instruction on cell_b's topic: cell_b decides; cell_a does not.
    publisher = client.create_publisher(String, "/cell_b/cliport/instruction", 10)
    assert spin_until(executor, lambda: publisher.get_subscription_count() >= 1, 30)
    publisher.publish(String(data=status["cell_b"][-1].instruction))
    assert spin_until(executor, lambda: len(decisions["cell_b"]) == 1, 60)
    assert len(decisions["cell_a"]) == 1
    # cell_b's own arm carries it out (and the test ends with no execution still running in the nodes)
    assert spin_until(executor, lambda: status["cell_b"][-1].step == 1, 60)
    assert status["cell_a"][-1].step == 1

    # The nodes' own names and their cameras' topics live under the cell's namespace.
    for ns in CELLS:
        agent, sim = nodes[ns]
        assert agent.get_fully_qualified_name() == f"/{ns}/cliport_node"
        assert sim.get_fully_qualified_name() == f"/{ns}/sim_node"
    # Every endpoint each node made is under its cell's namespace (asked of the nodes themselves: the graph may
    # still list endpoints of nodes that other tests destroyed).
    for ns in CELLS:
        agent, sim = nodes[ns]
        for node, name in ((agent, "cliport_node"), (sim, "sim_node")):
            endpoints = [t for t, _ in node.get_publisher_names_and_types_by_node(name, f"/{ns}")]
            endpoints += [t for t, _ in node.get_subscriber_names_and_types_by_node(name, f"/{ns}")]
            endpoints += [s for s, _ in node.get_service_names_and_types_by_node(name, f"/{ns}")]
            outside = [
                e for e in endpoints if not e.startswith(f"/{ns}/") and e not in ("/parameter_events", "/rosout")
            ]
            assert not outside, (name, ns, outside)
    assert "/cell_a/front/color/image_raw" in [
        t for t, _ in nodes["cell_a"][1].get_publisher_names_and_types_by_node("sim_node", "/cell_a")
    ]
    follow.destroy()
