"""The workspace: bounds in the robot base frame and the top-down pixel grid over them.

This is the single source of truth for the bounds and the pixel size (CLIPort's defaults: x 0.25-0.75 m,
y -0.5-0.5 m, z 0-0.28 m, 3.125 mm per pixel -> 320 rows (world y) x 160 columns (world x)).

Pixel convention: pixel (u, v) = (row, column) covers x in [x_min + v*pix, x_min + (v+1)*pix) and
y in [y_min + u*pix, y_min + (u+1)*pix). ``pixel_to_xyz`` returns the cell centre, so that
``xyz_to_pixel(pixel_to_xyz(p)) == p`` and a point round-trips to within half a pixel. (The Ravens code
returns the cell corner; the half-pixel difference, 1.6 mm, is below the task tolerances.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Most pixels along each side of the grid. Checkpoints and configs carry a workspace, and the policy
# allocates images of its grid (``Policy.warm_up`` at start-up); this refuses a crafted or mistyped extent
# (a grid of millions of pixels a side) up front. CLIPort's grid is 320 x 160; 4096 is 2 m at the finest
# allowed pixel (0.5 mm) and 12.8 m at CLIPort's.
MAX_GRID_SIDE = 4096


@dataclass(frozen=True)
class Workspace:
    """Axis-aligned workspace box in ``frame_id`` and its top-down grid."""

    x_min: float = 0.25
    x_max: float = 0.75
    y_min: float = -0.5
    y_max: float = 0.5
    z_min: float = 0.0
    z_max: float = 0.28
    pixel_size: float = 0.003125
    frame_id: str = "base_link"

    def __post_init__(self) -> None:
        for name in ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max", "pixel_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"Workspace.{name} must be a finite number, got {value!r}")
        for lo, hi in (("x_min", "x_max"), ("y_min", "y_max"), ("z_min", "z_max")):
            if not getattr(self, lo) < getattr(self, hi):
                raise ValueError(
                    f"Workspace.{lo} ({getattr(self, lo)}) must be below Workspace.{hi} ({getattr(self, hi)})"
                )
        if not 0.0005 <= self.pixel_size <= 0.05:
            raise ValueError(f"Workspace.pixel_size must be in [0.0005, 0.05] m, got {self.pixel_size}")
        for axis, extent in (("x", self.x_max - self.x_min), ("y", self.y_max - self.y_min)):
            cells = extent / self.pixel_size
            if abs(cells - round(cells)) > 1e-6:
                raise ValueError(
                    f"Workspace {axis} extent {extent} m is not a whole number of pixels of {self.pixel_size} m"
                )
        if max(self.rows, self.cols) > MAX_GRID_SIDE:
            raise ValueError(
                f"Workspace grid must be at most {MAX_GRID_SIDE} x {MAX_GRID_SIDE} pixels, got {self.rows} x "
                f"{self.cols} ({self.y_max - self.y_min:g} x {self.x_max - self.x_min:g} m of "
                f"{self.pixel_size} m pixels)"
            )
        if not isinstance(self.frame_id, str) or not self.frame_id.strip():
            raise ValueError("Workspace.frame_id must be a non-empty frame name such as 'base_link'")

    @property
    def rows(self) -> int:
        """Image height: pixels along world y."""
        return int(round((self.y_max - self.y_min) / self.pixel_size))

    @property
    def cols(self) -> int:
        """Image width: pixels along world x."""
        return int(round((self.x_max - self.x_min) / self.pixel_size))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def bounds(self) -> np.ndarray:
        """3x2 array [[x_min, x_max], [y_min, y_max], [z_min, z_max]]."""
        return np.array(
            [[self.x_min, self.x_max], [self.y_min, self.y_max], [self.z_min, self.z_max]], dtype=np.float64
        )

    def contains(self, xyz: np.ndarray | tuple[float, ...], margin: float = 0.0, check_z: bool = True) -> bool:
        """Whether a point lies inside the box shrunk by ``margin`` metres."""
        x, y, z = (float(c) for c in xyz[:3])
        inside = self.x_min + margin <= x <= self.x_max - margin and self.y_min + margin <= y <= self.y_max - margin
        if check_z:
            inside = inside and self.z_min <= z <= self.z_max
        return inside

    def pixel_in_bounds(self, pixel: tuple[int, int]) -> bool:
        u, v = pixel
        return 0 <= u < self.rows and 0 <= v < self.cols

    def xyz_to_pixel(self, xyz: np.ndarray | tuple[float, ...]) -> tuple[int, int]:
        """Base-frame point -> (row, column) of the cell holding it (may be outside the image)."""
        u = int(math.floor((float(xyz[1]) - self.y_min) / self.pixel_size))
        v = int(math.floor((float(xyz[0]) - self.x_min) / self.pixel_size))
        return (u, v)

    def xyz_to_point(self, xyz: np.ndarray | tuple[float, ...]) -> tuple[float, float]:
        """Base-frame point -> fractional (row, column), pixel centres at whole numbers (rounded: xyz_to_pixel)."""
        return (
            (float(xyz[1]) - self.y_min) / self.pixel_size - 0.5,
            (float(xyz[0]) - self.x_min) / self.pixel_size - 0.5,
        )

    def pixel_to_xyz(
        self, pixel: tuple[int, int], height: np.ndarray | float | None = None
    ) -> tuple[float, float, float]:
        """(row, column) -> base-frame centre of that cell; z from a heightmap (or a number), else z_min."""
        u, v = int(pixel[0]), int(pixel[1])
        x = self.x_min + (v + 0.5) * self.pixel_size
        y = self.y_min + (u + 0.5) * self.pixel_size
        if height is None:
            z = self.z_min
        elif np.ndim(height) == 0:
            z = self.z_min + float(height)
        else:
            z = self.z_min + float(np.asarray(height)[u, v])
        return (x, y, z)

    def points_to_pixels(self, points: np.ndarray) -> np.ndarray:
        """Vectorised ``xyz_to_pixel``: Nx3 -> Nx2 int (row, column)."""
        pts = np.asarray(points, dtype=np.float64)
        u = np.floor((pts[:, 1] - self.y_min) / self.pixel_size).astype(np.int64)
        v = np.floor((pts[:, 0] - self.x_min) / self.pixel_size).astype(np.int64)
        return np.stack([u, v], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Workspace:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown Workspace field(s) {sorted(unknown)}; allowed: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**dict(data))
