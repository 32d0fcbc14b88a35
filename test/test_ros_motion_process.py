"""MoveIt in a process of its own: moveit_py's plan() holds the GIL (MoveIt 2.12), so in the executor node's
process a cancel (and feedback) waited for the plan to end. Over real rclpy, with MoveItPyBackend over the
moveit_py double (test/moveit_doubles.py) in the motion process, its plan() holding that process's GIL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from action_msgs.msg import GoalStatus
from conftest import spin_until
from ros_peers import sample_pick_place
from test_ros_moveit_executor import Cell

from cliport_ros.action import ExecutePickPlace
from cliport_ros.execution import CellConfig
from cliport_ros.ros.motion_process import MotionProcessError, ProcessBackend
from cliport_ros.ros.moveit_backend import params_files
from cliport_ros.types import Pose

HOLD = 3.0  # s the double's plan() holds the motion process's GIL


def events(path: Path) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        name, stamp = line.split()
        found.setdefault(name, []).append(float(stamp))
    return found


def test_a_cancel_is_answered_while_moveit_plans(ros_context, tmp_path):
    log = tmp_path / "motion.log"
    backend = ProcessBackend("moveit_doubles:gil_holding_backend", CellConfig(), args=(str(log), HOLD))
    # No table box: the double has no moveit_msgs to build a CollisionObject with.
    cell = Cell(ros_context, backend=backend, overrides={"scene.add_table": False})
    try:
        handle, feedback = cell.send(sample_pick_place("put the red block in the green bowl"))
        assert spin_until(cell.executor, lambda: log.exists() and "plan_start" in log.read_text(), 30)
        cancel = handle.cancel_goal_async()
        assert spin_until(cell.executor, cancel.done, 30)
        answered = time.monotonic()
        result = handle.get_result_async()
        assert spin_until(cell.executor, result.done, 30)
        seen = events(log)
        # The node answered the cancel while the plan still held the motion process's GIL ...
        assert answered < seen["plan_end"][0], (answered, seen)
        assert len(cancel.result().goals_canceling) == 1
        # ... and the plan's motion was never executed.
        assert "execute" not in seen
        assert result.result().status == GoalStatus.STATUS_CANCELED
        assert result.result().result.error_code == ExecutePickPlace.Result.CANCELED
    finally:
        cell.close()


def test_the_motion_process_runs_motions_and_reports_a_failed_start(tmp_path):
    log = tmp_path / "motion.log"
    backend = ProcessBackend("moveit_doubles:gil_holding_backend", CellConfig(), args=(str(log), 0.0))
    try:
        target = Pose((0.5, 0.0, 0.2), (1.0, 0.0, 0.0, 0.0))
        assert backend.plan_and_execute(target, linear=True).ok
        assert backend.plan_and_execute(target, linear=False).ok
        assert len(events(log)["execute"]) == 2
    finally:
        backend.shutdown()
    with pytest.raises(MotionProcessError, match="did not start: ModuleNotFoundError"):
        ProcessBackend("no_such_module:factory", CellConfig())


def test_params_files_are_the_command_lines():
    argv = [
        "moveit_executor",
        "--ros-args",
        "--params-file",
        "/tmp/a.yaml",
        "-r",
        "__node:=x",
        "--params-file",
        "/tmp/b.yaml",
    ]
    assert params_files(argv) == ["/tmp/a.yaml", "/tmp/b.yaml"]
    assert params_files(["x", "--params-file"]) == []
