"""Workspace geometry: bounds, pixel <-> base-frame conversions, rotations."""

from cliport_ros.geometry.transforms import (
    matrix_to_quaternion,
    quaternion_multiply,
    quaternion_to_matrix,
    quaternion_to_yaw,
    yaw_to_quaternion,
)
from cliport_ros.geometry.workspace import Workspace

__all__ = [
    "Workspace",
    "matrix_to_quaternion",
    "quaternion_multiply",
    "quaternion_to_matrix",
    "quaternion_to_yaw",
    "yaw_to_quaternion",
]
