"""Translations between ROS messages and the ROS-free core's values (cliport_ros.types, numpy images)."""

from __future__ import annotations

import math
from typing import Any

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose as PoseMsg

from cliport_ros.msg import PickPlace as PickPlaceMsg
from cliport_ros.types import PRIMITIVES, PickPlace, Pose


def pose_to_msg(pose: Pose) -> PoseMsg:
    msg = PoseMsg()
    msg.position.x, msg.position.y, msg.position.z = pose.position
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = pose.orientation
    return msg


def pose_from_msg(msg: PoseMsg) -> Pose:
    """Raises ValueError for NaN/inf values or a zero quaternion."""
    p, q = msg.position, msg.orientation
    return Pose((p.x, p.y, p.z), (q.x, q.y, q.z, q.w))


def pick_place_to_msg(decision: PickPlace, stamp: Time | None = None) -> PickPlaceMsg:
    msg = PickPlaceMsg()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = decision.frame_id
    msg.pick = pose_to_msg(decision.pick)
    msg.place = pose_to_msg(decision.place)
    msg.pick_confidence = float(decision.pick_confidence)
    msg.place_confidence = float(decision.place_confidence)
    msg.instruction = decision.instruction
    msg.primitive = decision.primitive
    return msg


def pick_place_from_msg(msg: PickPlaceMsg) -> PickPlace:
    """Validate a PickPlace message and convert it; raises ValueError saying what is wrong."""
    if not msg.header.frame_id:
        raise ValueError("PickPlace.header.frame_id is empty; it must name the robot base frame (e.g. base_link)")
    primitive = msg.primitive or PickPlaceMsg.PRIMITIVE_PICK_PLACE
    if primitive not in PRIMITIVES:
        raise ValueError(f"PickPlace.primitive {msg.primitive!r} is unknown; allowed: {', '.join(PRIMITIVES)}")
    try:
        pick = pose_from_msg(msg.pick)
        place = pose_from_msg(msg.place)
    except ValueError as exc:
        raise ValueError(f"PickPlace pose invalid: {exc}") from exc
    for name in ("pick_confidence", "place_confidence"):
        value = getattr(msg, name)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"PickPlace.{name} must be in [0, 1], got {value}")
    return PickPlace(
        pick=pick,
        place=place,
        pick_confidence=msg.pick_confidence,
        place_confidence=msg.place_confidence,
        instruction=msg.instruction,
        primitive=primitive,
        frame_id=msg.header.frame_id,
    )


def stamp_to_seconds(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def stamp_to_nanoseconds(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def nanoseconds_to_stamp(nanoseconds: int) -> Time:
    return Time(sec=int(nanoseconds // 1_000_000_000), nanosec=int(nanoseconds % 1_000_000_000))


def seconds_to_stamp(seconds: float) -> Time:
    sec = int(math.floor(seconds))
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)
