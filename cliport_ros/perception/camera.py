"""Pinhole camera models with their pose in the robot base frame.

Poses are of the camera's *optical* frame (x right, y down, z forward), as ROS camera drivers publish
images and as easy_handeye2 calibrates. The simulator's cameras and a real RealSense are described the
same way; ``config/cameras_sim.yaml`` is the single source of the simulated rig (three D415-like views, as
the paper's), read by both the simulator and the CLIPort node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cliport_ros.geometry.transforms import matrix_to_quaternion, quaternion_to_matrix


def look_at_quaternion(
    eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0.0, 0.0, 1.0)
) -> tuple[float, float, float, float]:
    """xyzw orientation of an optical frame at ``eye`` looking at ``target`` (image up ~ ``up``)."""
    eye_a, target_a, up_a = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target_a - eye_a
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, up_a)
    if np.linalg.norm(x) < 1e-9:  # looking straight along `up`: pick any perpendicular
        x = np.cross(z, np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return matrix_to_quaternion(np.stack([x, y, z], axis=1))


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics (pixels) and the optical frame's pose in the base frame (metres, xyzw)."""

    name: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]
    z_near: float = 0.01
    z_far: float = 10.0

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("CameraModel.name must be a non-empty string")
        for attr in ("width", "height"):
            value = getattr(self, attr)
            if not isinstance(value, int) or not 1 <= value <= 8192:
                raise ValueError(f"camera {self.name!r}: {attr} must be an integer in [1, 8192], got {value!r}")
        for attr in ("fx", "fy"):
            value = getattr(self, attr)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(
                    f"camera {self.name!r}: {attr} must be a positive focal length in pixels, got {value!r}"
                )
        for attr in ("cx", "cy"):
            if not math.isfinite(getattr(self, attr)):
                raise ValueError(f"camera {self.name!r}: {attr} must be finite")
        if len(self.position) != 3 or not all(math.isfinite(c) for c in self.position):
            raise ValueError(f"camera {self.name!r}: position must be 3 finite numbers (x, y, z) in metres")
        if len(self.orientation) != 4 or not all(math.isfinite(c) for c in self.orientation):
            raise ValueError(f"camera {self.name!r}: orientation must be a quaternion (x, y, z, w)")
        norm = math.sqrt(sum(c * c for c in self.orientation))
        if abs(norm - 1.0) > 1e-3:
            raise ValueError(f"camera {self.name!r}: orientation quaternion must have unit norm, got {norm:.4f}")
        if not 0 < self.z_near < self.z_far:
            raise ValueError(f"camera {self.name!r}: need 0 < z_near < z_far, got {self.z_near}, {self.z_far}")
        object.__setattr__(self, "position", tuple(float(c) for c in self.position))
        object.__setattr__(self, "orientation", tuple(float(c) / norm for c in self.orientation))

    @property
    def intrinsics(self) -> np.ndarray:
        """3x3 K matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def rotation(self) -> np.ndarray:
        """3x3 rotation of the optical frame in the base frame."""
        return quaternion_to_matrix(self.orientation)

    @property
    def transform(self) -> np.ndarray:
        """4x4 base <- optical transform."""
        t = np.eye(4)
        t[:3, :3] = self.rotation
        t[:3, 3] = self.position
        return t

    def with_pose(self, position: Sequence[float], orientation: Sequence[float]) -> CameraModel:
        """The same intrinsics at another pose (e.g. from TF)."""
        return CameraModel(
            self.name,
            self.width,
            self.height,
            self.fx,
            self.fy,
            self.cx,
            self.cy,
            (float(position[0]), float(position[1]), float(position[2])),
            (float(orientation[0]), float(orientation[1]), float(orientation[2]), float(orientation[3])),
            self.z_near,
            self.z_far,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "position": list(self.position),
            "orientation": list(self.orientation),
            "z_near": self.z_near,
            "z_far": self.z_far,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CameraModel:
        """Build from a mapping; ``look_at: [x, y, z]`` may replace ``orientation``."""
        data = dict(data)
        allowed = set(cls.__dataclass_fields__) | {"look_at"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown camera field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "look_at" in data:
            if "orientation" in data:
                raise ValueError(f"camera {data.get('name')!r}: give either orientation or look_at, not both")
            data["orientation"] = look_at_quaternion(data["position"], data.pop("look_at"))
        missing = [
            k for k in ("name", "width", "height", "fx", "fy", "cx", "cy", "position", "orientation") if k not in data
        ]
        if missing:
            raise ValueError(f"camera {data.get('name')!r}: missing field(s) {missing}")
        data["position"] = tuple(float(c) for c in data["position"])
        data["orientation"] = tuple(float(c) for c in data["orientation"])
        return cls(**data)


@dataclass(frozen=True)
class CameraRig:
    """The cameras that observe the workspace, by name."""

    cameras: tuple[CameraModel, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.cameras:
            raise ValueError("a camera rig needs at least one camera")
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique, got {names}")

    def __iter__(self):
        return iter(self.cameras)

    def __len__(self) -> int:
        return len(self.cameras)

    def __getitem__(self, name: str) -> CameraModel:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"no camera named {name!r}; cameras: {[c.name for c in self.cameras]}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CameraRig:
        if "cameras" not in data or not isinstance(data["cameras"], list):
            raise ValueError("a camera rig file needs a top-level 'cameras:' list")
        return cls(tuple(CameraModel.from_dict(c) for c in data["cameras"]))

    def to_dict(self) -> dict[str, Any]:
        return {"cameras": [c.to_dict() for c in self.cameras]}


def load_camera_rig(path: str | Path | None = None) -> CameraRig:
    """Read a camera rig YAML; default: the simulated rig ``config/cameras_sim.yaml``."""
    import yaml

    from cliport_ros.resources import config_path

    file = Path(path) if path is not None else config_path("cameras_sim.yaml")
    if not file.is_file():
        raise FileNotFoundError(f"camera rig file not found: {file}")
    with open(file, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a mapping with a 'cameras' list")
    try:
        return CameraRig.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from exc
