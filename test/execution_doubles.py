"""Test doubles for the execution core: a motion backend and a gripper that record every call and can be told
to fail. Not mocks: small fakes with the real Protocols' behaviour (blocking calls, stop from another thread).

RecordingMotionBackend.hold_on_call(k) makes call k block until stop() is called (a motion that runs until a
cancel stops it) or release_hold() lets it finish; ``held`` is set when that call starts, so a test can wait
for the motion to be under way (threading events, not sleeps). step_mode() makes every call wait for
allow_step().
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cliport_ros.execution import MotionOutcome, MotionStatus
from cliport_ros.types import Pose


@dataclass
class MotionCall:
    target: Pose
    linear: bool


class RecordingMotionBackend:
    def __init__(self) -> None:
        self.calls: list[MotionCall] = []
        self.stop_calls = 0
        self.boxes: list = []  # collision boxes the node added to the scene
        self.shut_down = False
        self.failures: dict[int, MotionOutcome] = {}
        self.held = threading.Event()
        self._hold_index: int | None = None
        self._steps: threading.Semaphore | None = None
        self._released = threading.Event()
        self._lock = threading.Lock()

    def fail_on_call(self, index: int, status: MotionStatus, message: str = "") -> None:
        """Call number ``index`` (0-based) returns ``status`` instead of succeeding."""
        self.failures[index] = MotionOutcome(status, message)

    def hold_on_call(self, index: int) -> None:
        self._hold_index = index

    def step_mode(self) -> None:
        """Every call waits for allow_step(): a test can pace the motions by what it has observed."""
        self._steps = threading.Semaphore(0)

    def allow_step(self) -> None:
        assert self._steps is not None, "step_mode() first"
        self._steps.release()

    def release_hold(self) -> None:
        self._released.set()

    def plan_and_execute(self, target: Pose, linear: bool) -> MotionOutcome:
        with self._lock:
            index = len(self.calls)
            self.calls.append(MotionCall(target, linear))
        if self._steps is not None and not self._steps.acquire(timeout=30.0):
            return MotionOutcome(MotionStatus.TIMEOUT, "the test never allowed this step")
        if index == self._hold_index:
            self.held.set()
            self._released.wait(timeout=30.0)
            if self.stop_calls:
                return MotionOutcome(MotionStatus.STOPPED, "stopped by request")
        return self.failures.get(index, MotionOutcome(MotionStatus.SUCCEEDED))

    def add_collision_boxes(self, boxes) -> None:
        self.boxes.extend(boxes)

    def shutdown(self) -> None:
        self.shut_down = True

    def stop(self) -> None:
        with self._lock:
            self.stop_calls += 1
        self._released.set()


@dataclass
class RecordingGripper:
    grasp_result: bool | Exception = True
    release_result: bool | Exception = True
    holding: bool | None = None  # None: holding after a successful grasp, until released
    calls: list[str] = field(default_factory=list)
    _closed: bool = False

    def _answer(self, result: bool | Exception) -> bool:
        if isinstance(result, Exception):
            raise result
        return result

    def grasp(self) -> bool:
        self.calls.append("grasp")
        ok = self._answer(self.grasp_result)
        self._closed = ok
        return ok

    def release(self) -> bool:
        self.calls.append("release")
        ok = self._answer(self.release_result)
        if ok:
            self._closed = False
        return ok

    def is_holding(self) -> bool:
        self.calls.append("is_holding")
        return self._closed if self.holding is None else self.holding
