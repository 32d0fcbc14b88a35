"""The simulation bridge over real rclpy: RealSense-shaped camera topics, ExecutePickPlace, episodes."""

from __future__ import annotations

import pytest
from action_msgs.msg import GoalStatus
from conftest import spin_until
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from test_ros_interfaces import run_action

from cliport_ros.action import ExecutePickPlace
from cliport_ros.msg import TaskStatus
from cliport_ros.ros.conversions import pick_place_to_msg
from cliport_ros.ros.sim_node import LATCHED, SimNode
from cliport_ros.srv import ResetEpisode

TASK = "put-block-in-bowl-seen-colors"


@pytest.fixture(scope="module")
def environment():
    from cliport_ros.sim import SimEnvironment

    env = SimEnvironment(TASK, renderer="tiny")
    yield env
    env.close()


def only_the_test_task(environment):
    """An environment factory that hands out the module's environment and refuses other tasks."""

    def make(task, *args):
        if task != TASK:
            raise ValueError(f"unknown task {task!r}")
        return environment

    return make


@pytest.fixture
def bridge(ros_context, environment):
    node = SimNode(
        context=ros_context,
        environment_factory=only_the_test_task(environment),
        parameter_overrides=[
            Parameter("task", value=TASK),
            Parameter("split", value="test"),
            Parameter("seed", value=10001),
            Parameter("camera_rate", value=0.0),
        ],
    )
    client = Node("sim_client", context=ros_context)
    executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
    executor.add_node(node)
    executor.add_node(client)
    yield node, client, executor
    executor.shutdown()
    node.sim.stop()  # the environment itself is the module's


def test_cameras_joint_states_and_status_look_like_a_real_cell(bridge):
    node, client, executor = bridge
    got = {}
    for cam in ("front", "left", "right"):
        client.create_subscription(
            Image, f"/{cam}/color/image_raw", lambda m, c=cam: got.setdefault((c, "rgb"), m), qos_profile_sensor_data
        )
        client.create_subscription(
            Image,
            f"/{cam}/aligned_depth_to_color/image_raw",
            lambda m, c=cam: got.setdefault((c, "depth"), m),
            qos_profile_sensor_data,
        )
        client.create_subscription(
            CameraInfo,
            f"/{cam}/color/camera_info",
            lambda m, c=cam: got.setdefault((c, "info"), m),
            qos_profile_sensor_data,
        )
    client.create_subscription(JointState, "/joint_states", lambda m: got.setdefault("joints", m), 10)
    client.create_subscription(TaskStatus, "/sim/task_status", lambda m: got.setdefault("status", m), LATCHED)
    assert spin_until(executor, lambda: (node.publish_cameras(), len(got) == 11)[1], 30), sorted(map(str, got))
    rgb, depth, info = got[("front", "rgb")], got[("front", "depth")], got[("front", "info")]
    assert (rgb.encoding, rgb.width, rgb.height) == ("rgb8", 640, 480)
    assert (depth.encoding, depth.width, depth.height) == ("32FC1", 640, 480)
    assert rgb.header.stamp == depth.header.stamp and rgb.header.frame_id == "front_color_optical_frame"
    assert list(info.k) == [450.0, 0.0, 320.0, 0.0, 450.0, 240.0, 0.0, 0.0, 1.0]
    assert len(got["joints"].name) == len(got["joints"].position) >= 6
    status = got["status"]
    assert (status.task, status.split, status.seed, status.step, status.done) == (TASK, "test", 10001, 0, False)
    assert status.instruction.startswith("put the ") and status.max_steps >= 2


def test_execute_pick_place_runs_the_oracle_action_and_scores(bridge, environment):
    node, client, executor = bridge
    statuses = []
    client.create_subscription(TaskStatus, "/sim/task_status", statuses.append, LATCHED)
    action = ActionClient(client, ExecutePickPlace, "execute_pick_place")
    goal = ExecutePickPlace.Goal(pick_place=pick_place_to_msg(environment.oracle()))
    status, result, feedback = run_action(executor, action, goal, timeout=120, expect_feedback=6)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert result.success and result.error_code == ExecutePickPlace.Result.SUCCESS
    assert [f.stage_name for f in feedback] == ["approach", "grasp", "lift", "move", "release", "retreat"]
    assert spin_until(executor, lambda: statuses and statuses[-1].step == 1, 10)
    assert statuses[-1].score > 0


def test_bad_goals_are_refused_before_anything_moves(bridge, environment):
    node, client, executor = bridge
    action = ActionClient(client, ExecutePickPlace, "execute_pick_place")
    msg = pick_place_to_msg(environment.oracle())
    msg.header.frame_id = "world"
    status, result, feedback = run_action(executor, action, ExecutePickPlace.Goal(pick_place=msg), expect_feedback=0)
    assert status == GoalStatus.STATUS_ABORTED and result.error_code == ExecutePickPlace.Result.INVALID_GOAL
    assert "poses are in 'world'; this arm takes 'base_link'" in result.message and not feedback
    msg.header.frame_id = "base_link"
    msg.pick.orientation.w = float("nan")
    status, result, _ = run_action(executor, action, ExecutePickPlace.Goal(pick_place=msg), expect_feedback=0)
    assert result.error_code == ExecutePickPlace.Result.INVALID_GOAL and "pose invalid" in result.message


def test_reset_service(bridge):
    node, client, executor = bridge
    service = client.create_client(ResetEpisode, "/sim/reset_episode")
    # As for actions (test_ros_interfaces.run_action): the call's answer, not the readiness poll, decides.
    service.wait_for_service(timeout_sec=10)
    future = service.call_async(ResetEpisode.Request(task="", split="val", seed=3))
    assert spin_until(executor, future.done, 60), "no answer from /sim/reset_episode"
    assert future.result().success and future.result().instruction.startswith("put the ")
    assert node.status().seed == 3 and node.status().split == "val"
    future = service.call_async(ResetEpisode.Request(task="", split="holdout", seed=3))
    assert spin_until(executor, future.done, 60)
    assert not future.result().success and "split must be one of" in future.result().message
    future = service.call_async(ResetEpisode.Request(task="no-such-task", split="val", seed=3))
    assert spin_until(executor, future.done, 60)
    assert not future.result().success and "reset failed" in future.result().message
    assert node.env.task_key == TASK  # still usable
    future = service.call_async(ResetEpisode.Request(task=TASK, split="test", seed=10003))
    assert spin_until(executor, future.done, 60) and future.result().success


def test_goals_outside_the_workspace_are_refused_and_nothing_moves(bridge, environment):
    node, client, executor = bridge
    action = ActionClient(client, ExecutePickPlace, "execute_pick_place")
    joints = node.status().step, environment.joint_state()[1]
    msg = pick_place_to_msg(environment.oracle())
    msg.pick.position.y = -0.65
    status, result, feedback = run_action(executor, action, ExecutePickPlace.Goal(pick_place=msg), expect_feedback=0)
    assert status == GoalStatus.STATUS_ABORTED and result.error_code == ExecutePickPlace.Result.OUT_OF_WORKSPACE
    assert result.message.startswith("pick at (") and "is outside the workspace" in result.message
    assert environment.joint_state()[1] == pytest.approx(joints[1], abs=1e-6)


def test_huge_quaternions_are_normalised_not_an_empty_result(bridge, environment):
    node, client, executor = bridge
    action = ActionClient(client, ExecutePickPlace, "execute_pick_place")
    msg = pick_place_to_msg(environment.oracle())
    q = msg.pick.orientation
    q.x, q.y, q.z, q.w = 1e200, 0.0, 0.0, 1e200
    status, result, _ = run_action(
        executor, action, ExecutePickPlace.Goal(pick_place=msg), timeout=120, expect_feedback=0
    )
    assert result.error_code != ExecutePickPlace.Result.UNKNOWN and result.message, result
    assert (
        (status == GoalStatus.STATUS_SUCCEEDED)
        == result.success
        == (result.error_code == ExecutePickPlace.Result.SUCCESS)
    )


def test_an_error_inside_the_bridge_is_an_internal_error_never_an_empty_result(bridge, environment):
    node, client, executor = bridge
    action = ActionClient(client, ExecutePickPlace, "execute_pick_place")

    def broken_refresh():  # double: the renderer failing after the motion
        raise OSError("EGL context lost")

    node.refresh_cameras = broken_refresh
    goal = ExecutePickPlace.Goal(pick_place=pick_place_to_msg(environment.oracle()))
    status, result, _ = run_action(executor, action, goal, timeout=120, expect_feedback=0)
    assert status == GoalStatus.STATUS_ABORTED and not result.success
    assert result.error_code == ExecutePickPlace.Result.INTERNAL_ERROR
    assert "OSError: EGL context lost" in result.message
    assert not node.executing.is_set()  # the bridge takes the next goal


def test_a_call_on_a_stopped_simulator_fails_at_once():
    import threading
    import time

    from cliport_ros.ros.sim_node import SimThread, SimulatorStopped

    sim = SimThread()
    assert sim.call(lambda: 41 + 1) == 42
    release = threading.Event()
    outcome = []

    def waiting_caller():
        try:
            sim.call(lambda: release.wait(30))  # a call under way when stop() comes
            outcome.append("returned")
        except SimulatorStopped as exc:
            outcome.append(str(exc))

    caller = threading.Thread(target=waiting_caller)
    caller.start()
    queued = []
    second = threading.Thread(target=lambda: queued.append(_call_or_error(sim)))
    second.start()
    time.sleep(0.2)
    stopper = threading.Thread(target=lambda: sim.stop(timeout=0.5))
    stopper.start()
    stopper.join(5)
    release.set()
    caller.join(5)
    second.join(5)
    assert not second.is_alive() and queued and "stopped" in queued[0]
    with pytest.raises(SimulatorStopped, match="the simulator is stopped"):
        sim.call(lambda: 1)


def _call_or_error(sim):
    from cliport_ros.ros.sim_node import SimulatorStopped

    try:
        return sim.call(lambda: "ran")
    except SimulatorStopped as exc:
        return str(exc)
