"""The moveit_executor node over real rclpy (a fresh Context per test) with the recording motion backend in
place of MoveIt: goals, feedback, result codes, cancel, BUSY, parameter errors, and the SetBool suction
gripper against a real std_srvs service."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from action_msgs.msg import GoalStatus
from conftest import spin_until
from execution_doubles import RecordingGripper, RecordingMotionBackend
from rclpy.action import ActionClient
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_peers import sample_pick_place
from std_srvs.srv import SetBool

from cliport_ros.action import ExecutePickPlace
from cliport_ros.execution import MotionStatus, Stage
from cliport_ros.ros.moveit_executor import MoveItExecutorNode

REPO = Path(__file__).resolve().parents[1]
RESULT = ExecutePickPlace.Result
STAGE_NAMES = [s.label for s in Stage]


class Cell:
    """The node under test, a client node, and the doubles behind the node."""

    def __init__(self, context, overrides=None, gripper=None, real_gripper=False, backend=None):
        self.backend = backend or RecordingMotionBackend()
        self.gripper = gripper or RecordingGripper()
        kwargs = {} if real_gripper else {"gripper_factory": lambda node, config, group: self.gripper}
        self.node = MoveItExecutorNode(
            context=context,
            backend_factory=lambda node, config: self.backend,
            parameter_overrides=[Parameter(k, value=v) for k, v in (overrides or {}).items()],
            **kwargs,
        )
        self.client_node = Node("executor_client", context=context)
        self.executor = MultiThreadedExecutor(num_threads=4, context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client_node)
        self.client = ActionClient(self.client_node, ExecutePickPlace, self.node.action_name)
        # rclpy's readiness poll was seen to lag on a loaded machine; the goals' answers decide (send()).
        self.client.wait_for_server(timeout_sec=10)

    def send(self, pick_place):
        feedback: list = []
        future = self.client.send_goal_async(
            ExecutePickPlace.Goal(pick_place=pick_place), feedback_callback=lambda msg: feedback.append(msg.feedback)
        )
        assert spin_until(self.executor, future.done, 60), "no answer to the goal: action server not available"
        handle = future.result()
        assert handle.accepted
        return handle, feedback

    def result(self, handle):
        future = handle.get_result_async()
        assert spin_until(self.executor, future.done, 10)
        return future.result().status, future.result().result

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.client_node.destroy_node()


@pytest.fixture
def cell(ros_context):
    made = []

    def make(**kwargs):
        made.append(Cell(ros_context, **kwargs))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_goal_runs_all_stages_and_adds_the_table(cell):
    c = cell()
    # One motion per observed feedback: the action client drops feedback that arrives after the result.
    c.backend.step_mode()
    handle, feedback = c.send(sample_pick_place("put the red block in the green bowl"))
    # Each stage's feedback is published just before its one motion: see it, then let that motion run.
    for seen in range(1, 7):
        assert spin_until(c.executor, lambda seen=seen: len(feedback) >= seen, 10), [f.stage_name for f in feedback]
        c.backend.allow_step()
    status, result = c.result(handle)
    assert status == GoalStatus.STATUS_SUCCEEDED
    assert result.success and result.error_code == RESULT.SUCCESS
    assert result.message == "pick-and-place done: from (0.400, -0.200) to (0.600, 0.250) in base_link"
    assert [f.stage_name for f in feedback] == STAGE_NAMES
    assert [f.stage for f in feedback] == [int(s) for s in Stage]
    # Default cell: suction tip at the link (no TCP offset), surface at 0.02, object placed 0.01 above 0.03.
    heights = [round(call.target.position[2], 6) for call in c.backend.calls]
    assert heights == [0.12, 0.02, 0.12, 0.16, 0.06, 0.16]
    assert c.gripper.calls == ["grasp", "is_holding", "release"]
    assert [b.id for b in c.backend.boxes] == ["table"]
    assert c.backend.boxes[0].center[2] == pytest.approx(-0.025)


@pytest.mark.parametrize(
    "change, code, text",
    [
        (lambda m: setattr(m.pick.position, "x", 0.95), RESULT.OUT_OF_WORKSPACE, "x=0.950 outside [0.25, 0.75]"),
        (lambda m: setattr(m.place.position, "z", -0.2), RESULT.OUT_OF_WORKSPACE, "place z=-0.200 outside"),
        (lambda m: setattr(m.header, "frame_id", ""), RESULT.INVALID_GOAL, "PickPlace.header.frame_id is empty"),
        (lambda m: setattr(m.header, "frame_id", "world"), RESULT.INVALID_GOAL, "'world' is not the cell's base frame"),
        (lambda m: setattr(m.pick.position, "y", math.nan), RESULT.INVALID_GOAL, "PickPlace pose invalid"),
        (lambda m: setattr(m, "primitive", "throw"), RESULT.INVALID_GOAL, "PickPlace.primitive 'throw' is unknown"),
    ],
)
def test_rejected_goals_abort_before_any_motion(cell, change, code, text):
    c = cell()
    msg = sample_pick_place("reject me")
    change(msg)
    handle, _ = c.send(msg)
    status, result = c.result(handle)
    assert status == GoalStatus.STATUS_ABORTED
    assert not result.success and result.error_code == code and text in result.message
    assert c.backend.calls == [] and c.gripper.calls == []


def test_plan_failure_aborts_with_no_further_motion(cell):
    c = cell()
    c.backend.fail_on_call(1, MotionStatus.PLANNING_FAILED, "Pilz LIN found no plan")
    handle, _ = c.send(sample_pick_place("pick"))
    status, result = c.result(handle)
    assert status == GoalStatus.STATUS_ABORTED and result.error_code == RESULT.PLANNING_FAILED
    assert "down to pick (grasp) planning_failed: Pilz LIN found no plan" in result.message
    assert len(c.backend.calls) == 2 and c.gripper.calls == []


def test_gripper_failure_aborts_releases_and_retreats(cell):
    c = cell(gripper=RecordingGripper(grasp_result=False))
    handle, _ = c.send(sample_pick_place("pick"))
    status, result = c.result(handle)
    assert status == GoalStatus.STATUS_ABORTED and result.error_code == RESULT.GRASP_FAILED
    assert result.message.endswith("gripper released; retreated straight up")
    assert [round(call.target.position[2], 6) for call in c.backend.calls] == [0.12, 0.02, 0.12]


def test_cancel_stops_the_motion_and_a_second_goal_is_busy(cell):
    c = cell()
    c.backend.hold_on_call(3)  # the move above the place runs until stopped
    handle, feedback = c.send(sample_pick_place("hold"))
    assert spin_until(c.executor, c.backend.held.is_set, 10)

    busy_handle, _ = c.send(sample_pick_place("second"))
    status, result = c.result(busy_handle)
    assert status == GoalStatus.STATUS_ABORTED and result.error_code == RESULT.BUSY
    assert c.backend.stop_calls == 0  # the busy goal did not disturb the running one

    cancel = handle.cancel_goal_async()
    assert spin_until(c.executor, cancel.done, 10)
    assert len(cancel.result().goals_canceling) == 1
    status, result = c.result(handle)
    assert status == GoalStatus.STATUS_CANCELED
    assert result.error_code == RESULT.CANCELED
    assert result.message == "canceled during move; the arm was stopped"
    assert len(c.backend.calls) == 4 and c.backend.stop_calls >= 1
    assert c.gripper.calls == ["grasp", "is_holding"]  # nothing released mid-air


@pytest.mark.parametrize(
    "overrides, named",
    [
        ({"velocity_scaling": 2.0}, "'velocity_scaling' must be in (0.0, 1.0]"),
        ({"gripper.type": "magnet"}, "'gripper.type' must be one of"),
        ({"workspace.z_min": 0.1}, "'min_height' (0.005) must not be below 'workspace.z_min' (0.1)"),
        ({"action_name": " "}, "'action_name' must be a non-empty action name"),
    ],
)
def test_bad_parameters_fail_start_up_naming_the_parameter(ros_context, overrides, named):
    with pytest.raises(ValueError) as error:
        MoveItExecutorNode(
            context=ros_context,
            backend_factory=lambda node, config: RecordingMotionBackend(),
            gripper_factory=lambda node, config, group: RecordingGripper(),
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
    assert named in str(error.value)


def test_a_set_up_failing_after_moveit_started_shuts_it_down_and_leaves_the_graph(ros_context):
    from conftest import _alive

    made = []

    def failing_gripper(node, config, group):
        made.append(node)
        raise RuntimeError("no gripper driver answers")

    backend = RecordingMotionBackend()
    with pytest.raises(RuntimeError, match="no gripper driver answers"):
        MoveItExecutorNode(
            context=ros_context,
            backend_factory=lambda node, config: backend,
            gripper_factory=failing_gripper,
        )
    (node,) = made
    assert backend.shut_down and not _alive(node)


class SuctionService(Node):
    def __init__(self, context):
        super().__init__("suction_driver", context=context)
        self.requests: list[bool] = []
        self.create_service(SetBool, "/suction/set", self._serve, callback_group=ReentrantCallbackGroup())

    def _serve(self, request, response):
        self.requests.append(request.data)
        response.success, response.message = True, "vacuum " + ("on" if request.data else "off")
        return response


def test_setbool_suction_drives_a_real_service(cell, ros_context):
    driver = SuctionService(ros_context)
    c = cell(real_gripper=True, overrides={"gripper.type": "suction_service", "gripper.timeout": 5.0})
    c.executor.add_node(driver)
    handle, _ = c.send(sample_pick_place("pick"))
    status, result = c.result(handle)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert driver.requests == [True, False]
    driver.destroy_node()


def test_missing_driver_packages_are_named(ros_context):
    from cliport_ros.execution import GripperConfig
    from cliport_ros.ros.grippers import make_gripper

    node = Node("gripper_probe", context=ros_context)
    try:
        for gripper_type, package in (("suction_ur_io", "ur_msgs"), ("parallel_jaw", "control_msgs")):
            try:
                __import__(package)
                continue  # installed here: nothing to check
            except ImportError:
                pass
            expected = f"gripper.type {gripper_type} needs the {package} package"
            with pytest.raises(RuntimeError, match=expected):
                make_gripper(node, GripperConfig(type=gripper_type), ReentrantCallbackGroup())
    finally:
        node.destroy_node()


def run_main(*ros_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cliport_ros.ros.moveit_executor", "--ros-args", *ros_args],
        cwd=str(REPO),
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_main_exits_with_the_reason():
    bad = run_main("-p", "velocity_scaling:=1.5")
    assert bad.returncode == 2 and "'velocity_scaling' must be in (0.0, 1.0]" in bad.stderr
    try:
        import moveit.planning  # noqa: F401
    except ImportError:
        missing = run_main("--params-file", str(REPO / "config" / "ur5.yaml"))
        assert missing.returncode == 2 and "moveit_py is not importable" in missing.stderr
