"""Calibrated RGB-D views -> the top-down color and height maps CLIPort sees.

One code path for the simulator and for real cameras (the ROS node calls ``fuse_views`` with the images of
its RealSense views and their calibrated ``CameraModel``).

Rules (as CLIPort/Ravens): every valid depth pixel is back-projected into the base frame; points outside the
workspace box are dropped; per view, each cell keeps its *highest* point (height and that point's color);
across views the height is the maximum and the color is the mean of the views that saw the cell. Cells no
view saw have height 0 and color 0. Depth that is NaN, +-inf, zero or negative is ignored.

Points down to ``TABLE_TOLERANCE`` below ``workspace.z_min`` are kept with height 0: a table surface at
exactly z_min comes back a hair below it from the depth buffer, and dropping it would leave the table black.

Speed: the per-camera ray directions are cached (keyed by the frozen ``CameraModel``), and the per-cell
maximum is one ``np.maximum.at`` over integer keys that pack (height in micrometres, pixel index), so the
winning key names the highest point and its color without a sort.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.perception.camera import CameraModel

#: Points this far (m) below the workspace floor still count, with height 0 (see the module docstring).
TABLE_TOLERANCE = 0.01
#: Height quantum of the packed keys (m); heights keep full float precision, this only breaks ties.
_HEIGHT_QUANTUM = 1e-6


@dataclass(frozen=True)
class TopDownView:
    """Orthographic top-down maps over ``workspace``: rows = world y, columns = world x."""

    color: np.ndarray  # (rows, cols, 3) uint8, RGB
    height: np.ndarray  # (rows, cols) float32, metres above workspace.z_min, 0 where nothing was seen
    workspace: Workspace

    def __post_init__(self) -> None:
        rows, cols = self.workspace.shape
        if self.color.shape != (rows, cols, 3) or self.color.dtype != np.uint8:
            raise ValueError(
                f"TopDownView.color must be uint8 of shape {(rows, cols, 3)}, got {self.color.dtype} {self.color.shape}"
            )
        if self.height.shape != (rows, cols) or self.height.dtype != np.float32:
            raise ValueError(
                f"TopDownView.height must be float32 of shape {(rows, cols)}, "
                f"got {self.height.dtype} {self.height.shape}"
            )

    def xyz(self, pixel: tuple[int, int]) -> tuple[float, float, float]:
        """Base-frame point of a cell: its centre at the observed height."""
        return self.workspace.pixel_to_xyz(pixel, self.height)


@functools.lru_cache(maxsize=32)
def _ray_directions(camera: CameraModel) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel base-frame vectors d such that point = position + depth * d; and the position.

    Depth is along the optical axis (z), so the camera-frame vector is ((u-cx)/fx, (v-cy)/fy, 1).
    Returned as a (3, H*W) float32 array (one contiguous row per axis: the fusion loop runs per axis).
    """
    u = (np.arange(camera.width, dtype=np.float64) - camera.cx) / camera.fx
    v = (np.arange(camera.height, dtype=np.float64) - camera.cy) / camera.fy
    uu, vv = np.meshgrid(u, v)
    rays = np.stack([uu.ravel(), vv.ravel(), np.ones(uu.size)], axis=0)
    dirs = (camera.rotation @ rays).astype(np.float32)
    dirs.setflags(write=False)
    position = np.asarray(camera.position, dtype=np.float32)
    position.setflags(write=False)
    return dirs, position


def _check_view(index: int, rgb: np.ndarray | None, depth: np.ndarray, camera: CameraModel) -> None:
    if not isinstance(camera, CameraModel):
        raise ValueError(f"view {index}: camera must be a CameraModel, got {type(camera).__name__}")
    if not isinstance(depth, np.ndarray) or depth.ndim != 2:
        raise ValueError(f"view {index} ({camera.name}): depth must be a 2-D array (H, W) in metres")
    if depth.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"view {index} ({camera.name}): depth must be float32/float64 metres, got {depth.dtype} "
            "(convert 16UC1 millimetres with depth.astype(np.float32) / 1000)"
        )
    if depth.shape != (camera.height, camera.width):
        raise ValueError(
            f"view {index} ({camera.name}): depth is {depth.shape[1]}x{depth.shape[0]} but the camera model is "
            f"{camera.width}x{camera.height}"
        )
    if rgb is None:
        return
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise ValueError(f"view {index} ({camera.name}): rgb must be uint8 (H, W, 3), got {dtype} {shape}")
    if rgb.shape[:2] != depth.shape:
        raise ValueError(f"view {index} ({camera.name}): rgb {rgb.shape[:2]} and depth {depth.shape} differ in size")


def depth_to_points(depth: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Back-project a depth image (metres along the optical axis) into base-frame points, (N, 3) float64.

    Only valid pixels (finite, > 0) are returned, in row-major pixel order.
    """
    _check_view(0, None, depth, camera)
    dirs, position = _ray_directions(camera)
    d = depth.reshape(-1)
    valid = np.isfinite(d) & (d > 0)
    d = d[valid].astype(np.float64)
    return position.astype(np.float64)[None, :] + d[:, None] * dirs[:, valid].T.astype(np.float64)


def fuse_views(views: Sequence[tuple[np.ndarray, np.ndarray, CameraModel]], workspace: Workspace) -> TopDownView:
    """Fuse calibrated RGB-D views ``(rgb uint8 HxWx3, depth metres HxW, camera)`` into a TopDownView."""
    if not isinstance(workspace, Workspace):
        raise ValueError(f"workspace must be a Workspace, got {type(workspace).__name__}")
    if len(views) == 0:
        raise ValueError("fuse_views needs at least one (rgb, depth, camera) view")
    rows, cols = workspace.shape
    ncell = rows * cols
    x_lo, y_lo = workspace.x_min, workspace.y_min
    z_floor = workspace.z_min - TABLE_TOLERANCE
    inv_pix = 1.0 / workspace.pixel_size

    keys_all, cells_all, heights, colors = [], [], [], []
    any_depth = False
    for k, view in enumerate(views):
        if len(view) != 3:
            raise ValueError(f"view {k}: expected a (rgb, depth, camera) triple, got {len(view)} items")
        rgb, depth, camera = view
        _check_view(k, rgb, depth, camera)
        dirs, pos = _ray_directions(camera)
        d = depth.reshape(-1)
        if d.dtype != np.float32:
            d = d.astype(np.float32)
        x = pos[0] + d * dirs[0]
        y = pos[1] + d * dirs[1]
        z = pos[2] + d * dirs[2]
        # NaN/inf depth makes x, y or z NaN/inf and fails these comparisons; d > 0 drops zero/negative depth.
        keep = (
            (d > 0)
            & (x >= x_lo)
            & (x < workspace.x_max)
            & (y >= y_lo)
            & (y < workspace.y_max)
            & (z >= z_floor)
            & (z <= workspace.z_max)
        )
        idx = np.flatnonzero(keep)
        # Valid depth that misses the workspace is fine (an empty view); no valid depth at all is not.
        any_depth = any_depth or idx.size > 0 or bool(np.any(np.isfinite(d) & (d > 0)))
        col = ((x[idx] - x_lo) * inv_pix).astype(np.int64)
        row = ((y[idx] - y_lo) * inv_pix).astype(np.int64)
        # Float rounding can put a point at x_max - eps into column `cols`.
        np.minimum(col, cols - 1, out=col)
        np.minimum(row, rows - 1, out=row)
        h = np.maximum(z[idx] - workspace.z_min, 0.0)
        bits = max(int(depth.size - 1).bit_length(), 1)
        key = (np.rint(h / _HEIGHT_QUANTUM).astype(np.int64) << bits) | idx
        keys_all.append(key)
        cells_all.append(k * ncell + row * cols + col)
        heights.append((z.reshape(-1), bits))
        colors.append(rgb.reshape(-1, 3))
    if not any_depth:
        raise ValueError("fuse_views: no view has any valid depth (all NaN, inf, zero or negative)")

    nviews = len(keys_all)
    flat_best = np.full(nviews * ncell, -1, dtype=np.int64)
    if nviews:
        np.maximum.at(flat_best, np.concatenate(cells_all), np.concatenate(keys_all))
    best = flat_best.reshape(nviews, ncell)

    height = np.zeros(ncell, dtype=np.float32)
    color_sum = np.zeros((ncell, 3), dtype=np.float32)
    count = np.zeros(ncell, dtype=np.float32)
    for k in range(nviews):
        z, bits = heights[k]
        seen = np.flatnonzero(best[k] >= 0)
        pidx = best[k, seen] & ((1 << bits) - 1)
        h = np.maximum(z[pidx] - workspace.z_min, 0.0)
        height[seen] = np.maximum(height[seen], h)
        color_sum[seen] += colors[k][pidx]
        count[seen] += 1.0
    seen_any = count > 0
    color = np.zeros((ncell, 3), dtype=np.uint8)
    color[seen_any] = np.rint(color_sum[seen_any] / count[seen_any, None]).astype(np.uint8)
    return TopDownView(color.reshape(rows, cols, 3), height.reshape(rows, cols), workspace)


def project_points(points: np.ndarray, colors: np.ndarray, workspace: Workspace) -> TopDownView:
    """Top-down maps of one colored point cloud (N x 3 base frame, N x 3 uint8): highest point per cell."""
    pts = np.asarray(points, dtype=np.float64)
    cols_ = np.asarray(colors)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got {pts.shape}")
    if cols_.shape != pts.shape or cols_.dtype != np.uint8:
        raise ValueError(f"colors must be uint8 of the points' shape {pts.shape}, got {cols_.dtype} {cols_.shape}")
    rows, cols = workspace.shape
    pix = workspace.points_to_pixels(pts)
    keep = (
        np.isfinite(pts).all(axis=1)
        & (pix[:, 0] >= 0)
        & (pix[:, 0] < rows)
        & (pix[:, 1] >= 0)
        & (pix[:, 1] < cols)
        & (pts[:, 2] >= workspace.z_min - TABLE_TOLERANCE)
        & (pts[:, 2] <= workspace.z_max)
    )
    idx = np.flatnonzero(keep)
    h = np.maximum(pts[idx, 2] - workspace.z_min, 0.0)
    bits = max(int(len(pts) - 1).bit_length(), 1)
    key = (np.rint(h / _HEIGHT_QUANTUM).astype(np.int64) << bits) | idx
    best = np.full(rows * cols, -1, dtype=np.int64)
    np.maximum.at(best, pix[idx, 0] * cols + pix[idx, 1], key)
    seen = np.flatnonzero(best >= 0)
    pidx = best[seen] & ((1 << bits) - 1)
    height = np.zeros(rows * cols, dtype=np.float32)
    color = np.zeros((rows * cols, 3), dtype=np.uint8)
    height[seen] = np.maximum(pts[pidx, 2] - workspace.z_min, 0.0)
    color[seen] = cols_[pidx]
    return TopDownView(color.reshape(rows, cols, 3), height.reshape(rows, cols), workspace)
