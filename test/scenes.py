"""Synthetic RGB-D frames for tests: a camera straight above the table sees a flat table and coloured boxes.

Exact by construction (a pinhole looking straight down at planes), so tests can check where things land.
"""

from __future__ import annotations

import numpy as np

from cliport_ros.perception.camera import CameraModel, look_at_quaternion

TABLE_COLOUR = (90, 90, 90)


def overhead_camera(name: str = "top", width: int = 160, height: int = 320, z: float = 1.0) -> CameraModel:
    """A camera 1 m above the workspace centre whose image rows run along +y and columns along +x."""
    # Optical z points down; image x (columns) along base +x, image y (rows) along base +y.
    orientation = look_at_quaternion((0.5, 0.0, z), (0.5, 0.0, 0.0), up=(0.0, -1.0, 0.0))
    f = width / (0.5 / z)  # the image spans the workspace's 0.5 m of x at table height
    return CameraModel(name, width, height, f, f, width / 2.0, height / 2.0, (0.5, 0.0, z), orientation)


def overhead_frame(camera: CameraModel, boxes=()) -> tuple[np.ndarray, np.ndarray]:
    """(rgb, depth) of the table with axis-aligned boxes ((x, y, half_size, height, (r, g, b)), ...)."""
    cz = camera.position[2]
    cols = (np.arange(camera.width) - camera.cx) / camera.fx
    rows = (np.arange(camera.height) - camera.cy) / camera.fy
    rgb = np.empty((camera.height, camera.width, 3), np.uint8)
    rgb[:] = TABLE_COLOUR
    depth = np.full((camera.height, camera.width), cz, np.float32)
    r = camera.rotation
    for x, y, half, h, colour in boxes:
        d = cz - h
        # A ray through (col, row) at depth d hits base-frame position + d * R @ (u, v, 1).
        px = camera.position[0] + d * (r[0, 0] * cols[None, :] + r[0, 1] * rows[:, None] + r[0, 2])
        py = camera.position[1] + d * (r[1, 0] * cols[None, :] + r[1, 1] * rows[:, None] + r[1, 2])
        inside = (np.abs(px - x) <= half) & (np.abs(py - y) <= half)
        depth[inside] = d
        rgb[inside] = colour
    return rgb, depth
