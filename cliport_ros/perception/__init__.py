"""Cameras and the top-down view: calibrated RGB-D views fused into colour + height maps."""

from cliport_ros.perception.camera import CameraModel, CameraRig, load_camera_rig, look_at_quaternion

__all__ = ["CameraModel", "CameraRig", "load_camera_rig", "look_at_quaternion"]
