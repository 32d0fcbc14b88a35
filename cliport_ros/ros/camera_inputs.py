"""The RGB-D cameras a node listens to: parameters, subscriptions, and the latest frames as arrays.

Shared by the CLIPort node and ``cliport snapshot``. Intrinsics come from each camera's camera_info; poses in
the base frame from a calibration file (a camera rig YAML) or from TF at the image stamp.
"""

from __future__ import annotations

import time
from typing import Any

import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image

from cliport_ros.agent import CameraFrame, DecisionCode, DecisionError
from cliport_ros.perception.camera import CameraModel, load_camera_rig
from cliport_ros.ros.conversions import stamp_to_nanoseconds, stamp_to_seconds
from cliport_ros.ros.images import ImageError, camera_info_intrinsics, color_to_array, depth_to_array
from cliport_ros.ros.rgbd_sync import CameraTopics, RgbdCamera

try:  # TF for camera poses on real ROS machines
    import tf2_ros  # type: ignore[import-not-found]
except ImportError:
    tf2_ros = None

#: Parameters (name -> default) that describe the cameras; declared by every node that uses CameraInputs.
CAMERA_PARAMETERS: dict[str, Any] = {
    "camera_names": ["front", "left", "right"],
    "camera_namespaces": ["front", "left", "right"],
    "color_topic": "color/image_raw",
    "depth_topic": "aligned_depth_to_color/image_raw",
    "info_topic": "color/camera_info",
    "camera_pose_source": "file",
    "camera_poses_file": "",
    "sync_slop": 0.05,
}


def topic(namespace: str, suffix: str) -> str:
    return suffix if suffix.startswith("/") else f"{namespace.rstrip('/')}/{suffix}"


class CameraInputs:
    """Validates the camera parameters of ``node``; ``subscribe()`` starts listening; ``frames()`` reads."""

    def __init__(self, node: Node, base_frame: str) -> None:
        self.node = node
        self.base_frame = base_frame
        p = lambda name: node.get_parameter(name).value  # noqa: E731
        self.names, spaces = list(p("camera_names")), list(p("camera_namespaces"))
        if not self.names or len(self.names) != len(spaces):
            raise ValueError(
                f"parameters camera_names ({len(self.names)}) and camera_namespaces ({len(spaces)}) "
                "must be non-empty lists of the same length"
            )
        self.pose_source = p("camera_pose_source")
        if self.pose_source not in ("file", "tf"):
            raise ValueError(f"parameter camera_pose_source must be 'file' or 'tf', got {self.pose_source!r}")
        self.slop = float(p("sync_slop"))
        if self.slop <= 0:
            raise ValueError(f"parameter sync_slop must be > 0 s, got {self.slop}")
        self.topics = [
            CameraTopics(name, *(topic(ns, p(k)) for k in ("color_topic", "depth_topic", "info_topic")))
            for name, ns in zip(self.names, spaces)
        ]
        self.poses: dict[str, CameraModel] = {}
        self._tf_buffer = None
        if self.pose_source == "file":
            rig = load_camera_rig(p("camera_poses_file") or None)
            for name in self.names:
                try:
                    self.poses[name] = rig[name]
                except KeyError as exc:
                    raise ValueError(f"parameter camera_poses_file: {exc.args[0]}") from exc
        elif tf2_ros is None:
            raise ValueError("parameter camera_pose_source is 'tf' but tf2_ros is not installed here")
        self.cameras: list[RgbdCamera] = []

    def subscribe(self, callback_group: Any = None) -> None:
        if self.pose_source == "tf" and self._tf_buffer is None:
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self.node)
        self.cameras = [RgbdCamera(self.node, t, self.slop, callback_group=callback_group) for t in self.topics]

    def unsubscribe(self) -> None:
        for cam in self.cameras:
            cam.destroy()
        self.cameras = []

    def ready(self) -> bool:
        return bool(self.cameras) and all(c.latest()[0] is not None and c.latest()[2] is not None for c in self.cameras)

    def wait_for_frames(self, not_before_ns: int, timeout: float) -> list[CameraFrame]:
        """The frames of every camera taken at or after ``not_before_ns`` (ROS time), waiting up to ``timeout`` s
        in all for them; DecisionError(NO_OBSERVATION) naming the camera that had none."""
        deadline = time.monotonic() + timeout
        for cam in self.cameras:
            if not cam.wait_for_pair(not_before_ns, max(0.0, deadline - time.monotonic())):
                color = cam.latest()[0]
                if color is None:
                    raise DecisionError(
                        DecisionCode.NO_OBSERVATION,
                        f"no synchronised color/depth images from camera '{cam.topics.name}' "
                        f"({cam.topics.color}, {cam.topics.depth}) within {timeout:g} s",
                    )
                behind = (not_before_ns - stamp_to_nanoseconds(color.header.stamp)) * 1e-9
                raise DecisionError(
                    DecisionCode.NO_OBSERVATION,
                    f"no image from camera '{cam.topics.name}' taken after the instruction within "
                    f"{timeout:g} s (its newest is {behind:.2f} s older than the instruction)",
                )
        return self.frames()

    def frames(self) -> list[CameraFrame]:
        """The latest synchronised frame of every camera as arrays; DecisionError(NO_OBSERVATION) otherwise."""
        frames = []
        for cam in self.cameras:
            color, depth, info = cam.latest()
            name = cam.topics.name
            if color is None:
                raise DecisionError(
                    DecisionCode.NO_OBSERVATION,
                    f"no synchronised color/depth images yet from camera '{name}' "
                    f"({cam.topics.color}, {cam.topics.depth})",
                )
            if info is None:
                raise DecisionError(DecisionCode.NO_OBSERVATION, f"no camera_info yet on {cam.topics.info}")
            try:
                rgb, dep = color_to_array(color), depth_to_array(depth)
                intrinsics = camera_info_intrinsics(info)
            except ImageError as exc:
                raise DecisionError(DecisionCode.NO_OBSERVATION, f"camera '{name}': {exc}") from exc
            if rgb.shape[:2] != dep.shape:
                raise DecisionError(
                    DecisionCode.NO_OBSERVATION,
                    f"camera '{name}': color {rgb.shape[1]}x{rgb.shape[0]} and depth "
                    f"{dep.shape[1]}x{dep.shape[0]} differ in size (is depth aligned to color?)",
                )
            if (intrinsics["height"], intrinsics["width"]) != dep.shape:
                raise DecisionError(
                    DecisionCode.NO_OBSERVATION,
                    f"camera '{name}': camera_info is {intrinsics['width']}x{intrinsics['height']} "
                    f"but images are {dep.shape[1]}x{dep.shape[0]}",
                )
            stamp = color.header.stamp
            frames.append(
                CameraFrame(
                    self._model(name, intrinsics, color),
                    rgb,
                    dep,
                    stamp_to_seconds(stamp),
                    stamp_to_nanoseconds(stamp),
                )
            )
        return frames

    def _model(self, name: str, intrinsics: dict, color: Image) -> CameraModel:
        if self._tf_buffer is not None:
            try:
                tf = self._tf_buffer.lookup_transform(
                    self.base_frame,
                    color.header.frame_id,
                    rclpy.time.Time.from_msg(color.header.stamp),
                    timeout=rclpy.duration.Duration(seconds=0.2),
                )
            except Exception as exc:
                raise DecisionError(
                    DecisionCode.NO_OBSERVATION, f"no TF from {self.base_frame} to {color.header.frame_id}: {exc}"
                ) from exc
            t, q = tf.transform.translation, tf.transform.rotation
            position, orientation = (t.x, t.y, t.z), (q.x, q.y, q.z, q.w)
        else:
            position, orientation = self.poses[name].position, self.poses[name].orientation
        return CameraModel(name=name, position=position, orientation=orientation, **intrinsics)
