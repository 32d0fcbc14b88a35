"""The stage machine: runs a plan on a motion backend and a gripper, reports stages, honours cancel, and
turns every failure into an ExecutePickPlace result code with a message.

Failure policy (what moves after a failure):
- cancel: the backend is stopped and nothing else moves or actuates;
- a plan that fails: nothing moved for that step and nothing more moves (the arm is at a safe height or
  holding the object above the scene: an operator decides);
- a trajectory that fails part-way down (grasp or release descent): one straight retreat back up to the pose
  above, if ``retreat_on_failure``; a held object is never released mid-air;
- a failed grasp (the gripper call fails or nothing is held): the gripper is released (the object, if any, is
  on its surface) and the arm goes straight back up, if ``retreat_on_failure``;
- a failed release: nothing more moves (lifting could carry a half-attached object).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cliport_ros.execution.cell import CellConfig
from cliport_ros.execution.codes import ErrorCode, Stage
from cliport_ros.execution.plan import (
    GRIPPER_GRASP,
    GRIPPER_RELEASE,
    PlanRejected,
    Waypoint,
    plan_pick_place,
)
from cliport_ros.types import PickPlace, Pose


class MotionStatus(enum.Enum):
    SUCCEEDED = "succeeded"
    PLANNING_FAILED = "planning_failed"
    EXECUTION_FAILED = "execution_failed"
    STOPPED = "stopped"  # stop() interrupted it
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class MotionOutcome:
    status: MotionStatus
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status is MotionStatus.SUCCEEDED


class MotionBackend(Protocol):
    """Plans and executes one motion of the end-effector link to ``target`` (in the cell's base frame)."""

    def plan_and_execute(self, target: Pose, linear: bool) -> MotionOutcome:
        """Blocks until the motion ends; ``linear`` asks for a straight Cartesian line."""
        ...

    def stop(self) -> None:
        """Stop the motion in progress (called from another thread on cancel); harmless when idle."""
        ...


class Gripper(Protocol):
    """Each call blocks until done; False (or an exception) is a failure, TimeoutError a timeout."""

    def grasp(self) -> bool: ...

    def release(self) -> bool: ...

    def is_holding(self) -> bool: ...


@dataclass(frozen=True)
class ExecutionResult:
    success: bool
    error_code: ErrorCode
    message: str
    # The waypoints whose motion was sent to the backend, in order (retreats after failures included).
    executed: tuple[Waypoint, ...] = field(default=())


_FAILED_MOTION_CODES = {
    MotionStatus.PLANNING_FAILED: ErrorCode.PLANNING_FAILED,
    MotionStatus.EXECUTION_FAILED: ErrorCode.EXECUTION_FAILED,
    MotionStatus.STOPPED: ErrorCode.EXECUTION_FAILED,
    MotionStatus.TIMEOUT: ErrorCode.TIMEOUT,
}


class _Abort(Exception):
    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class PickPlaceExecutor:
    """Runs one decision at a time; the caller serialises goals (see the node's BUSY handling)."""

    def __init__(
        self,
        config: CellConfig,
        backend: MotionBackend,
        gripper: Gripper,
        on_stage: Callable[[Stage], None] | None = None,
    ):
        self.config = config
        self.backend = backend
        self.gripper = gripper
        self.on_stage = on_stage or (lambda stage: None)

    def execute(self, decision: PickPlace, is_canceled: Callable[[], bool] = lambda: False) -> ExecutionResult:
        try:
            waypoints = plan_pick_place(decision, self.config)
        except PlanRejected as exc:
            return ExecutionResult(False, exc.code, exc.message)
        run = _Run(self, is_canceled)
        try:
            run.follow(waypoints)
        except _Abort as exc:
            return ExecutionResult(False, exc.code, exc.message, tuple(run.executed))
        kind = "push" if decision.primitive == "push" else "pick-and-place"
        x, y, _ = decision.pick.position
        u, v, _ = decision.place.position
        return ExecutionResult(
            True,
            ErrorCode.SUCCESS,
            f"{kind} done: from ({x:.3f}, {y:.3f}) to ({u:.3f}, {v:.3f}) in {self.config.base_frame}",
            tuple(run.executed),
        )


class _Run:
    """The state of one execution: the stage reported last, whether an object is held, the motions sent."""

    def __init__(self, owner: PickPlaceExecutor, is_canceled: Callable[[], bool]):
        self.config = owner.config
        self.backend = owner.backend
        self.gripper = owner.gripper
        self.on_stage = owner.on_stage
        self.is_canceled = is_canceled
        self.stage: Stage | None = None
        self.holding = False
        self.executed: list[Waypoint] = []

    def follow(self, waypoints: list[Waypoint]) -> None:
        for waypoint in waypoints:
            self._enter(waypoint.stage)
            outcome = self._move(waypoint)
            if not outcome.ok:
                self._motion_failed(waypoint, outcome)
            if waypoint.gripper == GRIPPER_GRASP:
                self._grasp(waypoint)
            elif waypoint.gripper == GRIPPER_RELEASE:
                self._release(waypoint)

    # --- steps -------------------------------------------------------------------------------------------

    def _enter(self, stage: Stage) -> None:
        self._check_cancel()
        if stage != self.stage:
            self.stage = stage
            self.on_stage(stage)

    def _move(self, waypoint: Waypoint) -> MotionOutcome:
        self._check_cancel()
        self.executed.append(waypoint)
        outcome = self.backend.plan_and_execute(waypoint.link_pose, waypoint.linear)
        self._check_cancel()
        return outcome

    def _check_cancel(self) -> None:
        if self.is_canceled():
            # The node stops the backend when the cancel arrives; stopping again is harmless and covers a
            # cancel seen only here.
            self.backend.stop()
            where = self.stage.label if self.stage else "start"
            raise _Abort(ErrorCode.CANCELED, f"canceled during {where}; the arm was stopped")

    def _motion_failed(self, waypoint: Waypoint, outcome: MotionOutcome) -> None:
        code = _FAILED_MOTION_CODES[outcome.status]
        detail = f": {outcome.message}" if outcome.message else ""
        message = f"{waypoint.description} ({waypoint.stage.label}) {outcome.status.value}{detail}"
        if outcome.status is MotionStatus.PLANNING_FAILED:
            raise _Abort(code, f"{message}; the arm did not move for this step{self._holding_note()}")
        # Part-way through a descent: straight back up is safe (a held object stays held).
        raise _Abort(code, message + self._retreat(waypoint) + self._holding_note())

    def _grasp(self, waypoint: Waypoint) -> None:
        self._check_cancel()
        ok, reason = self._call(self.gripper.grasp, "grasp")
        if ok:
            held, reason = self._call(self.gripper.is_holding, "holding check")
            if not held and reason == "holding check reported failure":
                reason = "nothing held after the grasp"
            ok = held
        self._check_cancel()
        if not ok:
            code = ErrorCode.TIMEOUT if "timed out" in reason else ErrorCode.GRASP_FAILED
            # At the pick surface, letting go drops nothing: open so nothing stays half-attached, then go up.
            released, _ = self._call(self.gripper.release, "release")
            note = "; gripper released" if released else "; the gripper did not release"
            retreat = self._retreat(waypoint)
            raise _Abort(code, f"grasp failed at {self._xy(waypoint)}: {reason}{note}{retreat}")
        self.holding = True

    def _release(self, waypoint: Waypoint) -> None:
        self._check_cancel()
        ok, reason = self._call(self.gripper.release, "release")
        if not ok:
            code = ErrorCode.TIMEOUT if "timed out" in reason else ErrorCode.RELEASE_FAILED
            raise _Abort(
                code,
                f"release failed at {self._xy(waypoint)}: {reason}; the arm stays there "
                "(lifting could carry a half-attached object)",
            )
        self.holding = False

    def _retreat(self, failed: Waypoint) -> str:
        """Go straight back up after ``failed``; returns the sentence to append to the failure message."""
        if failed.retreat_to is None or not self.config.retreat_on_failure:
            return "; the arm stays where it stopped"
        if self.is_canceled():
            return "; canceled: no retreat"
        retreat = failed.retreat_to
        if self.stage != Stage.RETREAT:
            self.stage = Stage.RETREAT
            self.on_stage(Stage.RETREAT)
        self.executed.append(retreat)
        outcome = self.backend.plan_and_execute(retreat.link_pose, retreat.linear)
        if outcome.ok:
            return "; retreated straight up"
        detail = f": {outcome.message}" if outcome.message else ""
        return f"; the retreat also failed ({outcome.status.value}{detail})"

    # --- helpers -----------------------------------------------------------------------------------------

    @staticmethod
    def _call(action: Callable[[], bool], what: str) -> tuple[bool, str]:
        try:
            result = bool(action())
        except TimeoutError as exc:
            return False, f"{what} timed out ({exc})"
        except Exception as exc:  # noqa: BLE001 - a driver error is a gripper failure, reported with its text
            return False, f"{what} error: {exc}"
        return result, "" if result else f"{what} reported failure"

    def _holding_note(self) -> str:
        return "; the object is still held" if self.holding else ""

    def _xy(self, waypoint: Waypoint) -> str:
        x, y, z = waypoint.tcp_pose.position
        return f"({x:.3f}, {y:.3f}, {z:.3f})"
