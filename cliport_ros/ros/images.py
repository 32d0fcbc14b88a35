"""sensor_msgs/Image and CameraInfo <-> numpy, with the checks a camera driver's output needs.

One function each way. Where a ROS 2 cv_bridge is installed (real ROS machines) it does the decoding;
otherwise the image bytes are viewed with numpy without a copy. Either way the result is checked the same:
RGB uint8 (H, W, 3) for color, float32 metres (H, W) for depth.
"""

from __future__ import annotations

import math
from array import array as PyArray
from typing import Any

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

try:  # a ROS 2 cv_bridge (the PyPI `cv-bridge` is a ROS 1 port and is not used)
    from cv_bridge import CvBridge

    _BRIDGE: Any = CvBridge()
except Exception:  # absent, or the ROS 1 port failing on ROS 2 messages
    _BRIDGE = None

COLOR_ENCODINGS = {"rgb8": (3, False), "bgr8": (3, True), "rgba8": (4, False), "bgra8": (4, True)}
DEPTH_ENCODINGS = {
    "16UC1": (np.dtype("<u2"), 0.001),
    "mono16": (np.dtype("<u2"), 0.001),
    "32FC1": (np.dtype("<f4"), 1.0),
}


class ImageError(ValueError):
    """An image message that cannot be used; the message says what is wrong and what is allowed."""


def _raw_view(msg: Image, dtype: np.dtype, channels: int) -> np.ndarray:
    if msg.height == 0 or msg.width == 0:
        raise ImageError(f"image is empty ({msg.width}x{msg.height})")
    row_bytes = msg.width * channels * dtype.itemsize
    if msg.step < row_bytes:
        raise ImageError(
            f"image step {msg.step} is shorter than a row ({row_bytes} bytes for {msg.width} px of {msg.encoding})"
        )
    if len(msg.data) != msg.step * msg.height:
        raise ImageError(
            f"image data has {len(msg.data)} bytes; {msg.height} rows of step {msg.step} need {msg.step * msg.height}"
        )
    if msg.is_bigendian and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">")
    buffer = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)[:, :row_bytes]
    return (
        buffer.view(dtype).reshape(msg.height, msg.width, channels)
        if channels > 1
        else buffer.view(dtype).reshape(msg.height, msg.width)
    )


def color_to_array(msg: Image) -> np.ndarray:
    """RGB uint8 (H, W, 3) from an rgb8/bgr8/rgba8/bgra8 image."""
    if msg.encoding not in COLOR_ENCODINGS:
        raise ImageError(f"unsupported color encoding {msg.encoding!r}; expected one of {', '.join(COLOR_ENCODINGS)}")
    channels, reversed_order = COLOR_ENCODINGS[msg.encoding]
    if _BRIDGE is not None:
        try:
            return np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
        except Exception as exc:
            raise ImageError(f"cv_bridge could not convert the color image: {exc}") from exc
    array = _raw_view(msg, np.dtype(np.uint8), channels)
    if reversed_order:
        return array[:, :, 2::-1]
    return array[:, :, :3]


def depth_to_array(msg: Image) -> np.ndarray:
    """Depth in metres, float32 (H, W), from 16UC1 millimetres (RealSense) or 32FC1 metres."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ImageError(f"unsupported depth encoding {msg.encoding!r}; expected 16UC1 (mm) or 32FC1 (m)")
    dtype, scale = DEPTH_ENCODINGS[msg.encoding]
    if _BRIDGE is not None:
        try:
            raw = np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough"))
        except Exception as exc:
            raise ImageError(f"cv_bridge could not convert the depth image: {exc}") from exc
    else:
        raw = _raw_view(msg, dtype, 1)
    if scale == 1.0 and raw.dtype == np.float32:
        return raw
    return raw.astype(np.float32) * np.float32(scale)


def float_image_to_array(msg: Image) -> np.ndarray:
    """float32 (H, W) from a 32FC1 image that is not a depth image (probability maps, heights)."""
    if msg.encoding != "32FC1":
        raise ImageError(f"unsupported encoding {msg.encoding!r}; expected 32FC1")
    return _raw_view(msg, np.dtype(np.float32), 1)


def array_to_image(array: np.ndarray, encoding: str, header: Any = None) -> Image:
    """numpy -> Image: rgb8 (H, W, 3) uint8, mono8 (H, W) uint8, 32FC1 (H, W) float32 or 16UC1 uint16."""
    expected = {
        "rgb8": (np.uint8, 3),
        "bgr8": (np.uint8, 3),
        "mono8": (np.uint8, 1),
        "32FC1": (np.float32, 1),
        "16UC1": (np.uint16, 1),
    }
    if encoding not in expected:
        raise ImageError(f"cannot encode {encoding!r}; supported: {', '.join(expected)}")
    dtype, channels = expected[encoding]
    array = np.ascontiguousarray(array)
    if array.dtype != dtype or (array.ndim == 3) != (channels == 3) or (channels == 3 and array.shape[2] != 3):
        raise ImageError(
            f"{encoding} needs a {np.dtype(dtype).name} array with {channels} channel(s), "
            f"got {array.dtype} {array.shape}"
        )
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(array.strides[0])
    # An array.array('B') passes rosidl's field check at once (bytes are checked element by element: 60 ms
    # for a 640x480 frame with ROS_PYTHON_CHECK_FIELDS=1, 1 ms this way).
    msg.data = PyArray("B", array.tobytes())
    return msg


#: The fields of view (degrees, per axis) a camera_info may imply; outside them K is not a camera's.
MIN_FIELD_OF_VIEW_DEG, MAX_FIELD_OF_VIEW_DEG = 1.0, 170.0


def camera_info_intrinsics(info: CameraInfo) -> dict[str, float | int]:
    """width, height, fx, fy, cx, cy from a CameraInfo; raises ImageError if it is not calibrated."""
    k = list(info.k)
    if info.width == 0 or info.height == 0:
        raise ImageError("camera_info has zero width or height")
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        raise ImageError(f"camera_info K has no valid focal lengths (fx={fx}, fy={fy}): is the camera calibrated?")
    for name, focal, size in (("fx", fx, info.width), ("fy", fy, info.height)):
        fov = math.degrees(2.0 * math.atan(size / (2.0 * focal)))
        if not MIN_FIELD_OF_VIEW_DEG <= fov <= MAX_FIELD_OF_VIEW_DEG:
            raise ImageError(
                f"camera_info {name}={focal:g} px gives a {fov:.3g} degree field of view over {size} px; "
                f"a camera has {MIN_FIELD_OF_VIEW_DEG}-{MAX_FIELD_OF_VIEW_DEG} degrees: is K in pixels?"
            )
    if not (0.0 <= cx <= info.width and 0.0 <= cy <= info.height):
        raise ImageError(
            f"camera_info principal point ({cx:g}, {cy:g}) lies outside the {info.width}x{info.height} image"
        )
    return {
        "width": int(info.width),
        "height": int(info.height),
        "fx": float(fx),
        "fy": float(fy),
        "cx": float(cx),
        "cy": float(cy),
    }


def camera_info_from_model(camera, header: Any = None) -> CameraInfo:
    """A CameraInfo (plumb_bob, no distortion) for a CameraModel, as a simulated RealSense would publish."""
    info = CameraInfo()
    if header is not None:
        info.header = header
    info.width, info.height = camera.width, camera.height
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = [camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info
