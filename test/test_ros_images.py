"""Image and CameraInfo conversions, including malformed messages."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from cliport_ros.perception import load_camera_rig
from cliport_ros.ros.images import (
    ImageError,
    array_to_image,
    camera_info_from_model,
    camera_info_intrinsics,
    color_to_array,
    depth_to_array,
    float_image_to_array,
)


def test_rgb_round_trip_and_bgr_order():
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    assert np.array_equal(color_to_array(array_to_image(rgb, "rgb8")), rgb)
    bgr = array_to_image(np.ascontiguousarray(rgb[:, :, ::-1]), "bgr8")
    assert np.array_equal(color_to_array(bgr), rgb)


def test_rgba_and_row_padding():
    msg = Image(height=2, width=2, encoding="rgba8", step=12)  # 8 bytes of pixels + 4 of padding per row
    row = [1, 2, 3, 255, 4, 5, 6, 255, 0, 0, 0, 0]
    msg.data = bytes(row + row)
    assert color_to_array(msg).tolist() == [[[1, 2, 3], [4, 5, 6]]] * 2


def test_depth_millimetres_and_metres():
    mm = np.array([[1000, 250], [0, 65535]], np.uint16)
    assert np.allclose(depth_to_array(array_to_image(mm, "16UC1")), [[1.0, 0.25], [0.0, 65.535]])
    metres = np.array([[0.5, np.nan]], np.float32)
    out = depth_to_array(array_to_image(metres, "32FC1"))
    assert out.dtype == np.float32 and out[0, 0] == 0.5 and np.isnan(out[0, 1])


def test_big_endian_depth():
    msg = Image(height=1, width=2, encoding="16UC1", is_bigendian=1, step=4)
    msg.data = np.array([1000, 2000], ">u2").tobytes()
    assert np.allclose(depth_to_array(msg), [[1.0, 2.0]])


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Image(height=2, width=2, encoding="mono16", step=4, data=bytes(8)),
            "unsupported color encoding 'mono16'",
        ),
        (lambda: Image(height=2, width=2, encoding="rgb8", step=6, data=bytes(5)), "image data has 5 bytes"),
        (lambda: Image(height=2, width=2, encoding="rgb8", step=4, data=bytes(8)), "step 4 is shorter than a row"),
        (lambda: Image(height=0, width=0, encoding="rgb8", step=0, data=b""), "image is empty"),
    ],
)
def test_malformed_color_images(make, message):
    with pytest.raises(ImageError, match=message):
        color_to_array(make())


def test_wrong_depth_encoding():
    with pytest.raises(ImageError, match=r"unsupported depth encoding 'rgb8'; expected 16UC1 \(mm\) or 32FC1 \(m\)"):
        depth_to_array(Image(height=1, width=1, encoding="rgb8", step=3, data=bytes(3)))


def test_camera_info_round_trip_and_uncalibrated():
    cam = load_camera_rig()["front"]
    assert camera_info_intrinsics(camera_info_from_model(cam)) == {
        "width": 640,
        "height": 480,
        "fx": 450.0,
        "fy": 450.0,
        "cx": 320.0,
        "cy": 240.0,
    }
    with pytest.raises(ImageError, match="is the camera calibrated"):
        camera_info_intrinsics(CameraInfo(width=640, height=480))
    with pytest.raises(ImageError, match="zero width or height"):
        camera_info_intrinsics(CameraInfo())


@pytest.mark.parametrize(
    "fx, fy, cx, cy, message",
    [
        (1e-300, 450.0, 320.0, 240.0, "fx=1e-300 px gives a 180 degree field of view"),
        (450.0, 1e9, 320.0, 240.0, "fy=1e\\+09 px gives a 2.75e-05 degree field of view"),
        (450.0, 450.0, 5000.0, 240.0, "principal point \\(5000, 240\\) lies outside the 640x480 image"),
    ],
)
def test_camera_info_that_no_camera_has_is_refused(fx, fy, cx, cy, message):
    info = CameraInfo(width=640, height=480, k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0])
    with pytest.raises(ImageError, match=message):
        camera_info_intrinsics(info)


def test_array_to_image_checks_dtype():
    with pytest.raises(ImageError, match="rgb8 needs a uint8 array with 3 channel"):
        array_to_image(np.zeros((2, 2, 3), np.float32), "rgb8")


def test_float_maps_are_read_with_row_padding_and_other_encodings_refused():
    values = np.array([[0.25, 0.5], [0.125, 0.125]], np.float32)
    rows = [row.tobytes() + bytes(4) for row in values]  # 8 bytes of values + 4 of padding per row
    msg = Image(height=2, width=2, encoding="32FC1", step=12, data=b"".join(rows))
    np.testing.assert_array_equal(float_image_to_array(msg), values)
    np.testing.assert_array_equal(float_image_to_array(array_to_image(values, "32FC1")), values)
    with pytest.raises(ImageError, match="expected 32FC1"):
        float_image_to_array(Image(height=1, width=1, encoding="16UC1", step=2, data=bytes(2)))
    with pytest.raises(ImageError, match="image data has 15 bytes"):
        float_image_to_array(Image(height=2, width=2, encoding="32FC1", step=8, data=bytes(15)))
