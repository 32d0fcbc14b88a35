"""Cameras and the top-down view: calibrated RGB-D views fused into color + height maps."""

from cliport_ros.perception.camera import CameraModel, CameraRig, load_camera_rig, look_at_quaternion
from cliport_ros.perception.fusion import TopDownView, depth_to_points, fuse_views, project_points

__all__ = [
    "CameraModel",
    "CameraRig",
    "TopDownView",
    "depth_to_points",
    "fuse_views",
    "load_camera_rig",
    "look_at_quaternion",
    "project_points",
]
