"""Values that cross rooms: a pose in the base frame and one pick-and-place decision.

``PickPlace`` mirrors ``msg/PickPlace.msg`` without ROS, so the model, the simulator and the data code
share it; ``cliport_ros.ros.conversions`` translates it to and from the message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from cliport_ros.geometry.transforms import quaternion_to_yaw, yaw_to_quaternion

PRIMITIVES = ("pick_place", "push")


@dataclass(frozen=True)
class Pose:
    """Position (m) and xyzw orientation in the robot base frame."""

    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        if len(self.position) != 3 or not all(math.isfinite(float(c)) for c in self.position):
            raise ValueError(f"Pose.position must be 3 finite numbers, got {self.position!r}")
        if len(self.orientation) != 4 or not all(math.isfinite(float(c)) for c in self.orientation):
            raise ValueError(f"Pose.orientation must be 4 finite numbers (x, y, z, w), got {self.orientation!r}")
        norm = math.hypot(*(float(c) for c in self.orientation))  # no overflow for huge components
        if norm < 1e-6:
            raise ValueError("Pose.orientation must be a non-zero quaternion")
        object.__setattr__(self, "position", tuple(float(c) for c in self.position))
        object.__setattr__(self, "orientation", tuple(float(c) / norm for c in self.orientation))

    @classmethod
    def from_xyz_yaw(cls, xyz: Sequence[float], yaw: float = 0.0) -> Pose:
        return cls((float(xyz[0]), float(xyz[1]), float(xyz[2])), yaw_to_quaternion(yaw))

    @property
    def yaw(self) -> float:
        return quaternion_to_yaw(self.orientation)


@dataclass(frozen=True)
class PickPlace:
    """One decision: where to pick, where to place, how sure, and for which instruction."""

    pick: Pose
    place: Pose
    pick_confidence: float = 1.0
    place_confidence: float = 1.0
    instruction: str = ""
    primitive: str = "pick_place"
    frame_id: str = "base_link"
    extras: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.primitive not in PRIMITIVES:
            raise ValueError(f"PickPlace.primitive must be one of {PRIMITIVES}, got {self.primitive!r}")
        for name in ("pick_confidence", "place_confidence"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"PickPlace.{name} must be in [0, 1], got {value}")
