"""Workspace grid conversions and rotations."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from cliport_ros.geometry import (
    Workspace,
    matrix_to_quaternion,
    quaternion_multiply,
    quaternion_to_matrix,
    quaternion_to_yaw,
    yaw_to_quaternion,
)


def test_default_workspace_is_the_papers_grid():
    ws = Workspace()
    assert ws.shape == (320, 160)
    assert ws.bounds.tolist() == [[0.25, 0.75], [-0.5, 0.5], [0.0, 0.28]]
    assert ws.frame_id == "base_link"


def test_pixel_and_point_round_trip():
    ws = Workspace()
    assert ws.pixel_to_xyz((0, 0)) == pytest.approx((0.25 + 0.0015625, -0.5 + 0.0015625, 0.0))
    rng = np.random.default_rng(0)
    for _ in range(200):
        pixel = (int(rng.integers(0, 320)), int(rng.integers(0, 160)))
        assert ws.xyz_to_pixel(ws.pixel_to_xyz(pixel)) == pixel
    point = (0.5123, 0.1037, 0.05)
    back = ws.pixel_to_xyz(ws.xyz_to_pixel(point))
    assert abs(back[0] - point[0]) <= ws.pixel_size / 2 and abs(back[1] - point[1]) <= ws.pixel_size / 2
    pts = rng.uniform([0.25, -0.5, 0], [0.75, 0.5, 0.2], size=(50, 3))
    assert ws.points_to_pixels(pts).tolist() == [list(ws.xyz_to_pixel(p)) for p in pts]


def test_pixel_to_xyz_reads_height():
    ws = Workspace()
    height = np.zeros(ws.shape, np.float32)
    height[10, 20] = 0.04
    assert ws.pixel_to_xyz((10, 20), height)[2] == pytest.approx(0.04)
    assert ws.pixel_to_xyz((10, 20), 0.02)[2] == pytest.approx(0.02)


def test_contains_and_margin():
    ws = Workspace()
    assert ws.contains((0.5, 0.0, 0.1))
    assert not ws.contains((0.8, 0.0, 0.1))
    assert not ws.contains((0.26, 0.0, 0.1), margin=0.02)
    assert not ws.contains((0.5, 0.0, 0.5))
    assert ws.contains((0.5, 0.0, 0.5), check_z=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x_min": 0.8}, "x_min (0.8) must be below Workspace.x_max"),
        ({"pixel_size": 0.0}, "pixel_size must be in"),
        ({"pixel_size": 0.003}, "not a whole number of pixels"),
        ({"z_max": float("nan")}, "z_max must be a finite number"),
        ({"frame_id": " "}, "frame_id must be a non-empty frame name"),
        ({"x_max": 1000.25}, "Workspace grid must be at most 4096 x 4096 pixels, got 320 x 320000"),
        ({"y_min": -100.5, "pixel_size": 0.0005}, "got 202000 x 1000"),
    ],
)
def test_workspace_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Workspace(**kwargs)


def test_workspace_from_dict_rejects_unknown_fields():
    assert Workspace.from_dict(Workspace().to_dict()) == Workspace()
    with pytest.raises(ValueError, match="unknown Workspace field"):
        Workspace.from_dict({"x_lo": 0.2})


def test_yaw_quaternion_round_trip_and_composition():
    for yaw in np.linspace(-math.pi + 1e-6, math.pi, 37):
        assert quaternion_to_yaw(yaw_to_quaternion(yaw)) == pytest.approx(yaw, abs=1e-9)
    q = quaternion_multiply(yaw_to_quaternion(0.3), yaw_to_quaternion(0.4))
    assert quaternion_to_yaw(q) == pytest.approx(0.7)
    m = quaternion_to_matrix(yaw_to_quaternion(math.pi / 2))
    assert m @ np.array([1.0, 0, 0]) == pytest.approx([0.0, 1.0, 0.0])


def test_matrix_quaternion_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[3] >= 0 else -q
        assert matrix_to_quaternion(quaternion_to_matrix(q)) == pytest.approx(tuple(q), abs=1e-9)
