"""The suction pick-and-place primitive (Ravens-style) and a push, with stage reports and cancellation.

approach (above the pick) -> grasp (descend in small steps until the cup touches, attach if pickable) ->
lift -> move (above the place) -> release (descend until the held object touches, detach) -> retreat.
Poses are in the base frame; the pick yaw turns the tool at the pick, the place yaw at the place, so the
held object turns by place yaw - pick yaw (CLIPort: pick yaw 0, place yaw = the relative rotation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cliport_ros.geometry.transforms import quaternion_to_matrix
from cliport_ros.sim.robots import Robot, Suction, tool_orientation
from cliport_ros.types import Pose

STAGES = ("approach", "grasp", "lift", "move", "release", "retreat")
PUSH_STAGES = ("approach", "move", "retreat")  # the push reports these stages of STAGES


@dataclass(frozen=True)
class PrimitiveConfig:
    """Heights and steps of the primitive (metres)."""

    approach_height: float = 0.10  # above the target point: where descents start and lifts end
    descent_step: float = 0.005  # per IK step while looking for contact (notes: 5 mm = 1 mm's accuracy)
    max_overshoot: float = 0.03  # descend at most this far below the target before giving up
    travel_height: float = 0.20  # minimum tool height (above z_min) while carrying between pick and place
    waypoint_spacing: float = 0.05  # longer moves follow the straight line through waypoints this far apart
    push_height: float = 0.01  # tool-tip height above the table along a push (lower half of small blocks)
    push_step: float = 0.01  # waypoint spacing along a push (pushed objects load the arm)
    # Lift a picked object only this far above the pick point and carry it this far above the place point
    # (Ravens' rope tasks drag a bead at 0.02 m: the rest of the rope follows on the table); None: lift
    # to the approach and travel heights.
    carry_height: float | None = None

    def __post_init__(self) -> None:
        names = ("approach_height", "descent_step", "max_overshoot", "travel_height", "waypoint_spacing")
        for name in names + ("push_height", "push_step"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PrimitiveConfig.{name} must be positive, got {getattr(self, name)}")
        low = self.carry_height
        if low is not None and not low > 0:
            raise ValueError(f"PrimitiveConfig.carry_height must be positive or None, got {low}")


@dataclass(frozen=True)
class PrimitiveResult:
    success: bool
    reason: str  # empty on success
    stage: str  # the stage reached (where it failed, or "retreat" when done)
    picked: int | None = None  # body id that was attached, if any


class _Canceled(Exception):
    pass


def _straight_move(
    robot: Robot,
    goal: np.ndarray,
    yaw: float,
    spacing: float,
    should_cancel: Callable[[], bool] | None,
    until: Callable[[], bool] | None = None,
) -> tuple[bool, str]:
    """Tool-tip move through waypoints ``spacing`` apart on the straight line to ``goal``, turning the tool
    to ``yaw`` as it goes (joint-space interpolation between far-apart poses can sweep a carried object
    through its neighbours). Stops early when ``until()`` holds; raises _Canceled when asked to."""
    begin, orn = robot.tip_pose()
    rot = quaternion_to_matrix(orn)
    yaw0 = math.atan2(rot[1, 0], rot[0, 0])
    turn = (yaw - yaw0 + math.pi) % (2 * math.pi) - math.pi
    n = max(1, math.ceil(float(np.linalg.norm(goal - begin)) / spacing))
    for k in range(1, n + 1):
        if should_cancel is not None and should_cancel():
            raise _Canceled()
        f = k / n
        point = begin + f * (goal - begin)
        ok, reason = robot.movep(tuple(float(c) for c in point), tool_orientation(yaw0 + f * turn), until)
        if not ok or (until is not None and until()):
            return ok, reason
    return True, ""


def pick_place(
    robot: Robot,
    suction: Suction,
    pick: Pose,
    place: Pose,
    z_floor: float,
    config: PrimitiveConfig = PrimitiveConfig(),
    on_stage: Callable[[str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    settle: Callable[[], None] | None = None,
) -> PrimitiveResult:
    """Run a suction pick-and-place; never raises for unreachable poses or misses (see the result)."""
    stage = "approach"

    def enter(name: str) -> None:
        nonlocal stage
        stage = name
        if on_stage is not None:
            on_stage(name)

    def move(pos, yaw, until=None) -> tuple[bool, str]:
        return _straight_move(
            robot, np.asarray(pos, dtype=np.float64), yaw, config.waypoint_spacing, should_cancel, until
        )

    def descend(start: np.ndarray, stop_z: float, yaw: float) -> tuple[bool, str]:
        """Lower from ``start`` until contact; (touched, reason)."""
        target = start.copy()
        while True:
            if suction.detect_contact():
                return True, ""
            if target[2] <= stop_z:
                return False, "no contact"
            target[2] = max(target[2] - config.descent_step, stop_z)
            ok, reason = move(target, yaw, suction.detect_contact)
            if not ok:
                return False, reason

    pick_pos = np.array(pick.position, dtype=np.float64)
    place_pos = np.array(place.position, dtype=np.float64)
    pick_yaw, place_yaw = pick.yaw, place.yaw
    above_pick = pick_pos + [0.0, 0.0, config.approach_height]
    above_place = place_pos + [0.0, 0.0, config.approach_height]
    travel = z_floor + config.travel_height
    try:
        enter("approach")
        suction.restore_collisions()
        # Check both ends first, so an unreachable place does not leave an object dangling.
        for name, pos, yaw in (("pick", pick_pos, pick_yaw), ("place", place_pos, place_yaw)):
            solution, reason = robot.solve_ik(tuple(pos), tool_orientation(yaw))
            if solution is None:
                return PrimitiveResult(False, f"{name} pose {reason}", stage)
        ok, reason = move(above_pick, pick_yaw)
        if not ok:
            return PrimitiveResult(False, reason, stage)
        enter("grasp")
        touched, reason = descend(above_pick, max(pick_pos[2] - config.max_overshoot, z_floor - 0.01), pick_yaw)
        held = suction.activate() if touched else None
        enter("lift")
        tip = robot.tip_pose()[0]
        low = config.carry_height
        lift_z = max(above_pick[2], travel) if low is None else pick_pos[2] + low
        ok, lift_reason = move(np.array([tip[0], tip[1], lift_z]), pick_yaw)
        if held is None:
            why = reason if not touched else "touched nothing pickable"
            return PrimitiveResult(False, f"pick failed: {why}", stage)
        if not ok:
            suction.release()
            return PrimitiveResult(False, lift_reason, stage, held)
        enter("move")
        if low is not None:  # carried low, straight to just above the place
            above_place = place_pos + [0.0, 0.0, low]
            ok, reason = move(above_place, place_yaw)
        else:
            high = np.array([above_place[0], above_place[1], max(above_place[2], travel)])
            ok, reason = move(high, place_yaw)
            if ok:
                ok, reason = move(above_place, place_yaw)
        if not ok:
            suction.release()
            return PrimitiveResult(False, reason, stage, held)
        if suction.held is None:
            return PrimitiveResult(False, "object lost while carrying", stage, held)
        enter("release")
        touched, reason = descend(above_place, max(place_pos[2] - config.max_overshoot, z_floor - 0.01), place_yaw)
        suction.release()
        if settle is not None:
            settle()
        enter("retreat")
        tip = robot.tip_pose()[0]
        up = place_pos[2] + config.approach_height
        ok, retreat_reason = move(np.array([tip[0], tip[1], up]), place_yaw)
        suction.restore_collisions()
        if not touched:
            return PrimitiveResult(False, f"place: {reason}", stage, held)
        if not ok:
            return PrimitiveResult(False, retreat_reason, stage, held)
        return PrimitiveResult(True, "", stage, held)
    except _Canceled:
        suction.release()
        return PrimitiveResult(False, "canceled", stage)


def push(
    robot: Robot,
    suction: Suction,
    start: Pose,
    end: Pose,
    z_floor: float,
    config: PrimitiveConfig = PrimitiveConfig(),
    on_stage: Callable[[str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    settle: Callable[[], None] | None = None,
) -> PrimitiveResult:
    """Push with the tool: down to ``push_height`` above the table at ``start`` (x, y), a straight line to
    ``end`` (x, y), then up. The z of the poses is ignored; the tool keeps the start pose's yaw. Never
    raises for unreachable poses (see the result)."""
    stage = "approach"
    yaw = start.yaw
    low = z_floor + config.push_height
    a = np.array([start.position[0], start.position[1], low], dtype=np.float64)
    b = np.array([end.position[0], end.position[1], low], dtype=np.float64)

    def enter(name: str) -> None:
        nonlocal stage
        stage = name
        if on_stage is not None:
            on_stage(name)

    def line(goal: np.ndarray, spacing: float) -> tuple[bool, str]:
        return _straight_move(robot, goal, yaw, spacing, should_cancel)

    try:
        enter("approach")
        suction.release()  # nothing is carried while pushing
        suction.restore_collisions()  # a body just released must feel the tool again
        for name, pos in (("push start", a), ("push end", b)):
            solution, reason = robot.solve_ik(tuple(pos), tool_orientation(yaw))
            if solution is None:
                return PrimitiveResult(False, f"{name} pose {reason}", stage)
        ok, reason = line(a + [0.0, 0.0, config.approach_height], config.waypoint_spacing)
        if ok:
            ok, reason = line(a, config.waypoint_spacing)
        if not ok:
            return PrimitiveResult(False, reason, stage)
        enter("move")
        ok, reason = line(b, config.push_step)
        if not ok:
            return PrimitiveResult(False, reason, stage)
        enter("retreat")
        ok, reason = line(b + [0.0, 0.0, config.approach_height], config.waypoint_spacing)
        if settle is not None:
            settle()
        if not ok:
            return PrimitiveResult(False, reason, stage)
        return PrimitiveResult(True, "", stage)
    except _Canceled:
        return PrimitiveResult(False, "canceled", stage)
