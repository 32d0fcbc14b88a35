"""Exact synthetic RGB-D views of a flat table with axis-aligned boxes, for any calibrated camera.

Ray-cast against horizontal planes (the table at z=0 and each box's top), so every pixel's depth is known
exactly: tests and benchmarks use it to check fusion and the ROS path without a simulator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cliport_ros.perception.camera import CameraModel, look_at_quaternion

TABLE_COLOR = (90, 90, 90)
Box = tuple[float, float, float, float, tuple[int, int, int]]  # (x, y, half_size, height, rgb)


def overhead_camera(name: str = "top", width: int = 160, height: int = 320, z: float = 1.0) -> CameraModel:
    """A camera ``z`` m above the default workspace's centre; image columns along +x, rows along +y."""
    orientation = look_at_quaternion((0.5, 0.0, z), (0.5, 0.0, 0.0), up=(0.0, -1.0, 0.0))
    f = width / (0.5 / z)  # the image spans 0.5 m of x at table height
    return CameraModel(name, width, height, f, f, width / 2.0, height / 2.0, (0.5, 0.0, z), orientation)


def table_frame(camera: CameraModel, boxes: Sequence[Box] = (), table_z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8 (H, W, 3), depth float32 metres (H, W)) of the table and boxes seen by ``camera``."""
    u = (np.arange(camera.width, dtype=np.float64) - camera.cx) / camera.fx
    v = (np.arange(camera.height, dtype=np.float64) - camera.cy) / camera.fy
    rays = camera.rotation @ np.stack(
        [
            np.broadcast_to(u[None, :], (camera.height, camera.width)).ravel(),
            np.broadcast_to(v[:, None], (camera.height, camera.width)).ravel(),
            np.ones(camera.height * camera.width),
        ]
    )
    px, py, pz = camera.position
    depth = np.full(rays.shape[1], np.inf)
    rgb = np.zeros((rays.shape[1], 3), np.uint8)
    down = rays[2] < -1e-9
    # Optical-frame depth equals the ray parameter t because the camera-frame ray has z = 1.
    t_table = np.where(down, (table_z - pz) / np.where(down, rays[2], -1.0), np.inf)
    depth = np.where(t_table > 0, t_table, np.inf)
    rgb[np.isfinite(depth)] = TABLE_COLOR
    for x, y, half, h, color in sorted(boxes, key=lambda b: b[3]):
        t = np.where(down, (table_z + h - pz) / np.where(down, rays[2], -1.0), np.inf)
        hit_x, hit_y = px + t * rays[0], py + t * rays[1]
        inside = (t > 0) & (np.abs(hit_x - x) <= half) & (np.abs(hit_y - y) <= half) & (t < depth)
        depth[inside] = t[inside]
        rgb[inside] = color
    depth = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
    return rgb.reshape(camera.height, camera.width, 3), depth.reshape(camera.height, camera.width)
