"""The fixed camera's pose in the robot base frame, from an easy_handeye2 calibration file.

config/camera_calibration_example.yaml has the same layout as the ``.calib`` files easy_handeye2 saves
(``~/.ros2/easy_handeye2/calibrations/<name>.calib``), so either kind is read here and published by the
bringup launch files as a static transform (tf2_ros static_transform_publisher). Only eye-on-base (a
camera fixed in the cell) fits CLIPort's top-down view.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class CameraCalibration:
    parent_frame: str  # the robot base frame (easy_handeye2 robot_base_frame)
    child_frame: str  # the camera frame (easy_handeye2 tracking_base_frame)
    translation: tuple[float, float, float]
    rotation: tuple[float, float, float, float]  # xyzw, unit

    def static_transform_arguments(self) -> list[str]:
        """Arguments of ``ros2 run tf2_ros static_transform_publisher`` (the named-flag form of Humble+)."""
        x, y, z = self.translation
        qx, qy, qz, qw = self.rotation
        values = {"--x": x, "--y": y, "--z": z, "--qx": qx, "--qy": qy, "--qz": qz, "--qw": qw}
        arguments = [item for flag, value in values.items() for item in (flag, repr(float(value)))]
        return arguments + ["--frame-id", self.parent_frame, "--child-frame-id", self.child_frame]


def _field(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise ValueError(f"camera calibration: missing '{path}'")
        node = node[key]
    return node


def camera_calibration_from_dict(data: Mapping[str, Any], source: str = "calibration") -> CameraCalibration:
    kind = _field(data, "parameters.calibration_type")
    if kind != "eye_on_base":
        raise ValueError(f"{source}: calibration_type is {kind!r}; only eye_on_base (a fixed camera) is supported")
    frames = []
    for key in ("parameters.robot_base_frame", "parameters.tracking_base_frame"):
        value = _field(data, key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{source}: '{key}' must be a frame name, got {value!r}")
        frames.append(value)
    numbers = []
    for key in (
        "translation.x",
        "translation.y",
        "translation.z",
        "rotation.x",
        "rotation.y",
        "rotation.z",
        "rotation.w",
    ):
        value = _field(data, f"transform.{key}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{source}: 'transform.{key}' must be a finite number, got {value!r}")
        numbers.append(float(value))
    rotation = numbers[3:]
    norm = math.sqrt(sum(c * c for c in rotation))
    if abs(norm - 1.0) > 1e-3:
        raise ValueError(f"{source}: 'transform.rotation' must be a unit quaternion, norm {norm:.4f}")
    x, y, z, qx, qy, qz, qw = numbers
    return CameraCalibration(frames[0], frames[1], (x, y, z), (qx / norm, qy / norm, qz / norm, qw / norm))


def load_camera_calibration(path: str | Path) -> CameraCalibration:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"camera calibration file {file} does not exist")
    return camera_calibration_from_dict(yaml.safe_load(file.read_text()), str(file))
