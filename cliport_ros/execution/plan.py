"""A PickPlace decision -> the ordered waypoints a real arm moves through, with the safety checks.

Pick-and-place: above the pick (free motion), straight down to the grasp (linear) and grasp, straight up
(linear), above the place (free), straight down to the release (linear) and release, straight up (linear).
Push: above the start (free), straight down (linear), along to the end (linear), straight up (linear).

Every pose is in the cell's base frame. ``tcp_pose`` is where the tool centre point goes (what the safety
checks see); ``link_pose`` is the matching pose of the end-effector link, what MoveIt is asked to reach.
Heights: the policy's pick z is the top of the surface there. The TCP grasps ``grasp_depth`` below it (cut
short at ``min_height``) and the held object is released with its bottom ``place_clearance`` above the place
surface, assuming it stood on the workspace floor (z_min) when picked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from cliport_ros.execution.cell import CellConfig
from cliport_ros.execution.codes import ErrorCode, Stage
from cliport_ros.geometry import quaternion_multiply, quaternion_to_matrix, yaw_to_quaternion
from cliport_ros.types import PickPlace, Pose

FREE = "free"
LINEAR = "linear"
GRIPPER_NONE = "none"
GRIPPER_GRASP = "grasp"
GRIPPER_RELEASE = "release"

# Slack for the decision's own heights against the workspace box (heightmap quantisation, depth noise).
HEIGHT_TOLERANCE = 0.005


class PlanRejected(ValueError):
    """The decision cannot be executed safely; nothing may move. ``code`` is the ExecutePickPlace result."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Waypoint:
    stage: Stage
    description: str
    tcp_pose: Pose
    link_pose: Pose
    motion: str  # FREE (planned around obstacles) or LINEAR (straight line, Pilz LIN)
    frame_id: str
    gripper: str = GRIPPER_NONE  # what the gripper does once the pose is reached
    # Where to go straight back up to if this motion fails part-way or the gripper fails after it: set on
    # the descents, None where staying put is safer.
    retreat_to: Waypoint | None = None

    @property
    def linear(self) -> bool:
        return self.motion == LINEAR


def tool_orientation(config: CellConfig, yaw: float) -> tuple[float, float, float, float]:
    """The top-down tool orientation turned by ``yaw`` about the base z axis."""
    return quaternion_multiply(yaw_to_quaternion(yaw), config.tool_orientation)


def tcp_to_link(config: CellConfig, tcp: Pose) -> Pose:
    """The end-effector link pose that puts the TCP (``tcp_offset`` in the link frame) at ``tcp``."""
    offset = quaternion_to_matrix(tcp.orientation) @ np.asarray(config.tcp_offset, dtype=np.float64)
    x, y, z = (float(p - o) for p, o in zip(tcp.position, offset))
    return Pose((x, y, z), tcp.orientation)


def check_target(config: CellConfig, tcp: Pose, description: str) -> None:
    """Raise PlanRejected(OUT_OF_WORKSPACE) unless the TCP target is inside the x/y bounds and heights."""
    ws = config.workspace
    x, y, z = tcp.position
    problems = []
    if not ws.x_min <= x <= ws.x_max:
        problems.append(f"x={x:.3f} outside [{ws.x_min}, {ws.x_max}]")
    if not ws.y_min <= y <= ws.y_max:
        problems.append(f"y={y:.3f} outside [{ws.y_min}, {ws.y_max}]")
    if z < config.min_height:
        problems.append(f"z={z:.3f} below min_height {config.min_height}")
    if z > config.max_height:
        problems.append(f"z={z:.3f} above max_height {config.max_height}")
    if problems:
        raise PlanRejected(
            ErrorCode.OUT_OF_WORKSPACE,
            f"{description} target rejected in {config.base_frame}: {'; '.join(problems)}; nothing moved",
        )


def _check_decision_height(config: CellConfig, name: str, z: float) -> None:
    ws = config.workspace
    if not ws.z_min - HEIGHT_TOLERANCE <= z <= ws.z_max + HEIGHT_TOLERANCE:
        raise PlanRejected(
            ErrorCode.OUT_OF_WORKSPACE,
            f"{name} z={z:.3f} outside the workspace heights [{ws.z_min}, {ws.z_max}]; nothing moved",
        )


def plan_pick_place(decision: PickPlace, config: CellConfig) -> list[Waypoint]:
    """The waypoints for ``decision``; raises PlanRejected before anything could move."""
    if decision.frame_id != config.base_frame:
        # No TF here: the policy must already speak the cell's base frame.
        raise PlanRejected(
            ErrorCode.INVALID_GOAL,
            f"PickPlace frame {decision.frame_id!r} is not the cell's base frame {config.base_frame!r}",
        )
    for name, pose in (("pick", decision.pick), ("place", decision.place)):
        _check_decision_height(config, name, pose.position[2])
    if decision.primitive == "push":
        waypoints = _push(decision, config)
    else:
        waypoints = _pick_place(decision, config)
    for waypoint in waypoints:
        check_target(config, waypoint.tcp_pose, waypoint.description)
    return waypoints


def _make(
    config: CellConfig,
    stage: Stage,
    description: str,
    xyz: tuple[float, float, float],
    yaw: float,
    motion: str,
    gripper: str = GRIPPER_NONE,
    retreat_to: Waypoint | None = None,
) -> Waypoint:
    tcp = Pose(xyz, tool_orientation(config, yaw))
    return Waypoint(stage, description, tcp, tcp_to_link(config, tcp), motion, config.base_frame, gripper, retreat_to)


def _retreat_to(above: Waypoint) -> Waypoint:
    """A straight move back up to ``above`` after a failure below it."""
    return replace(above, stage=Stage.RETREAT, description=f"retreat to {above.description}", motion=LINEAR)


def _pick_place(decision: PickPlace, config: CellConfig) -> list[Waypoint]:
    px, py, pz = decision.pick.position
    qx, qy, qz = decision.place.position
    if pz < config.min_height:
        raise PlanRejected(
            ErrorCode.OUT_OF_WORKSPACE,
            f"pick surface z={pz:.3f} is below min_height {config.min_height}: nothing to pick there; nothing moved",
        )
    pick_yaw = decision.pick.yaw
    # The place orientation is the object's rotation relative to its pick yaw.
    place_yaw = pick_yaw + decision.place.yaw
    grasp_z = max(pz - config.grasp_depth, config.min_height)
    # The held object's bottom sits (grasp_z - z_min) below the TCP if it stood on the workspace floor.
    release_z = qz + (grasp_z - config.workspace.z_min) + config.place_clearance
    above_pick = _make(config, Stage.APPROACH, "above pick", (px, py, grasp_z + config.approach_height), pick_yaw, FREE)
    above_place = _make(
        config, Stage.MOVE, "above place", (qx, qy, release_z + config.approach_height), place_yaw, FREE
    )
    return [
        above_pick,
        _make(
            config,
            Stage.GRASP,
            "down to pick",
            (px, py, grasp_z),
            pick_yaw,
            LINEAR,
            GRIPPER_GRASP,
            _retreat_to(above_pick),
        ),
        _make(config, Stage.LIFT, "lift from pick", above_pick.tcp_pose.position, pick_yaw, LINEAR),
        above_place,
        _make(
            config,
            Stage.RELEASE,
            "down to place",
            (qx, qy, release_z),
            place_yaw,
            LINEAR,
            GRIPPER_RELEASE,
            _retreat_to(above_place),
        ),
        _make(config, Stage.RETREAT, "retreat from place", above_place.tcp_pose.position, place_yaw, LINEAR),
    ]


def _push(decision: PickPlace, config: CellConfig) -> list[Waypoint]:
    sx, sy, _ = decision.pick.position
    ex, ey, _ = decision.place.position
    z = config.workspace.z_min + config.push_height
    # The tool turns to face along the push, as in the Ravens push primitive.
    yaw = math.atan2(ey - sy, ex - sx)
    up = z + config.approach_height
    above_start = _make(config, Stage.APPROACH, "above push start", (sx, sy, up), yaw, FREE)
    above_end = _make(config, Stage.RETREAT, "retreat from push end", (ex, ey, up), yaw, LINEAR)
    down = _make(
        config, Stage.GRASP, "down to push start", (sx, sy, z), yaw, LINEAR, retreat_to=_retreat_to(above_start)
    )
    # A push stopped part-way stays put: a retreat to a fixed pose would sweep diagonally through the scene.
    along = _make(config, Stage.MOVE, "push to end", (ex, ey, z), yaw, LINEAR)
    return [above_start, down, along, above_end]
