"""The stage machine on the recording test doubles: motions, gripper calls, stages, and what each failure
returns and moves afterwards."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml
from execution_doubles import RecordingGripper, RecordingMotionBackend

from cliport_ros.execution import CellConfig, ErrorCode, MotionStatus, PickPlaceExecutor, Stage
from cliport_ros.types import PickPlace, Pose

CONFIG = Path(__file__).resolve().parents[1] / "config"
UR5 = CellConfig.from_yaml_dict(yaml.safe_load((CONFIG / "ur5.yaml").read_text()))
DECISION = PickPlace(Pose((0.4, -0.2, 0.04)), Pose((0.6, 0.25, 0.03)), frame_id="base_link")


def run(config=UR5, decision=DECISION, backend=None, gripper=None, is_canceled=lambda: False):
    backend = backend or RecordingMotionBackend()
    gripper = gripper or RecordingGripper()
    stages: list[Stage] = []
    result = PickPlaceExecutor(config, backend, gripper, stages.append).execute(decision, is_canceled)
    return result, backend, gripper, stages


def heights(backend: RecordingMotionBackend) -> list[float]:
    """z of each commanded tool0 pose (the suction tip is 0.1 below)."""
    return [round(call.target.position[2] - 0.1, 6) for call in backend.calls]


def test_success_runs_every_stage_in_order():
    result, backend, gripper, stages = run()
    assert result.success and result.error_code == ErrorCode.SUCCESS
    assert result.message == "pick-and-place done: from (0.400, -0.200) to (0.600, 0.250) in base_link"
    assert stages == list(Stage)
    assert heights(backend) == pytest.approx([0.14, 0.04, 0.14, 0.18, 0.08, 0.18])
    assert [c.linear for c in backend.calls] == [False, True, True, False, True, True]
    assert gripper.calls == ["grasp", "is_holding", "release"]
    assert backend.stop_calls == 0


def test_out_of_workspace_goal_moves_nothing():
    far = PickPlace(Pose((0.9, 0.0, 0.04)), Pose((0.6, 0.25, 0.03)), frame_id="base_link")
    result, backend, gripper, stages = run(decision=far)
    assert result.error_code == ErrorCode.OUT_OF_WORKSPACE and not result.success
    assert "x=0.900 outside [0.18, 0.68]" in result.message
    assert backend.calls == [] and gripper.calls == [] and stages == []


@pytest.mark.parametrize("index, stage, holding", [(0, "approach", False), (3, "move", True), (5, "retreat", False)])
def test_plan_failure_stops_everything(index, stage, holding):
    backend = RecordingMotionBackend()
    backend.fail_on_call(index, MotionStatus.PLANNING_FAILED, "no IK solution")
    result, backend, gripper, _ = run(backend=backend)
    assert result.error_code == ErrorCode.PLANNING_FAILED
    assert f"({stage}) planning_failed: no IK solution; the arm did not move for this step" in result.message
    assert ("the object is still held" in result.message) == holding
    assert len(backend.calls) == index + 1  # no motion after the failed plan
    # Nothing is released mid-air.
    assert gripper.calls == (
        ["grasp", "is_holding"] if index >= 2 and index < 5 else [] if index < 2 else ["grasp", "is_holding", "release"]
    )


def test_grasp_failure_releases_at_the_surface_and_retreats_straight_up():
    result, backend, gripper, stages = run(gripper=RecordingGripper(grasp_result=False))
    assert result.error_code == ErrorCode.GRASP_FAILED
    assert result.message == (
        "grasp failed at (0.400, -0.200, 0.040): grasp reported failure; gripper released; retreated straight up"
    )
    assert heights(backend) == pytest.approx([0.14, 0.04, 0.14])
    assert backend.calls[-1].linear
    assert gripper.calls == ["grasp", "release"]
    assert stages == [Stage.APPROACH, Stage.GRASP, Stage.RETREAT]


def test_nothing_held_after_grasp_is_a_grasp_failure():
    result, backend, gripper, _ = run(gripper=RecordingGripper(holding=False))
    assert result.error_code == ErrorCode.GRASP_FAILED
    assert "nothing held after the grasp" in result.message
    assert len(backend.calls) == 3 and gripper.calls == ["grasp", "is_holding", "release"]


def test_gripper_driver_errors_and_timeouts_are_reported():
    unavailable = RuntimeError("service /suction/set unavailable")
    result, _, _, _ = run(gripper=RecordingGripper(grasp_result=unavailable))
    assert result.error_code == ErrorCode.GRASP_FAILED
    assert "grasp error: service /suction/set unavailable" in result.message
    result, _, _, _ = run(gripper=RecordingGripper(grasp_result=TimeoutError("no answer in 5.0 s")))
    assert result.error_code == ErrorCode.TIMEOUT and "grasp timed out (no answer in 5.0 s)" in result.message


def test_no_retreat_when_disabled():
    config = CellConfig.from_parameters({**UR5.to_parameters(), "retreat_on_failure": False})
    result, backend, _, _ = run(config=config, gripper=RecordingGripper(grasp_result=False))
    assert result.error_code == ErrorCode.GRASP_FAILED and len(backend.calls) == 2
    assert result.message.endswith("the arm stays where it stopped")


def test_release_failure_stays_put():
    result, backend, gripper, _ = run(gripper=RecordingGripper(release_result=False))
    assert result.error_code == ErrorCode.RELEASE_FAILED
    assert "release failed at (0.600, 0.250, 0.080)" in result.message
    assert len(backend.calls) == 5 and gripper.calls == ["grasp", "is_holding", "release"]


def test_execution_failure_on_the_place_descent_retreats_holding_the_object():
    backend = RecordingMotionBackend()
    backend.fail_on_call(4, MotionStatus.EXECUTION_FAILED, "controller aborted")
    result, backend, gripper, _ = run(backend=backend)
    assert result.error_code == ErrorCode.EXECUTION_FAILED
    assert result.message == (
        "down to place (release) execution_failed: controller aborted; retreated straight up; the object is still held"
    )
    assert heights(backend) == pytest.approx([0.14, 0.04, 0.14, 0.18, 0.08, 0.18])
    assert gripper.calls == ["grasp", "is_holding"]


def test_execution_failure_on_a_free_move_stays_put():
    backend = RecordingMotionBackend()
    backend.fail_on_call(3, MotionStatus.TIMEOUT, "trajectory took too long")
    result, backend, gripper, _ = run(backend=backend)
    assert result.error_code == ErrorCode.TIMEOUT
    assert "the arm stays where it stopped; the object is still held" in result.message
    assert len(backend.calls) == 4 and "release" not in gripper.calls


def test_cancel_during_a_motion_stops_it_and_nothing_moves_afterwards():
    backend = RecordingMotionBackend()
    backend.hold_on_call(3)
    cancel = threading.Event()
    outcome = {}

    def execute():
        outcome["result"] = run(backend=backend, is_canceled=cancel.is_set)

    thread = threading.Thread(target=execute)
    thread.start()
    assert backend.held.wait(10)
    # What the node's cancel callback does: set the flag, stop the backend.
    cancel.set()
    backend.stop()
    thread.join(10)
    result, backend, gripper, stages = outcome["result"]
    assert result.error_code == ErrorCode.CANCELED
    assert result.message == "canceled during move; the arm was stopped"
    assert len(backend.calls) == 4 and backend.stop_calls >= 1
    assert gripper.calls == ["grasp", "is_holding"]
    assert stages == [Stage.APPROACH, Stage.GRASP, Stage.LIFT, Stage.MOVE]


def test_cancel_before_start_moves_nothing():
    result, backend, gripper, stages = run(is_canceled=lambda: True)
    assert result.error_code == ErrorCode.CANCELED
    assert result.message == "canceled during start; the arm was stopped"
    assert backend.calls == [] and gripper.calls == [] and stages == []


def test_push_runs_without_the_gripper():
    push = PickPlace(Pose((0.4, -0.2, 0.0)), Pose((0.4, 0.1, 0.0)), frame_id="base_link", primitive="push")
    result, backend, gripper, stages = run(decision=push)
    assert result.success and result.message.startswith("push done")
    assert gripper.calls == [] and len(backend.calls) == 4
    assert stages == [Stage.APPROACH, Stage.GRASP, Stage.MOVE, Stage.RETREAT]
