"""Collision objects for the planning scene, computed from the cell: the table under the workspace (so free
motions never sweep through it) and an optional ceiling over it (so they stay low)."""

from __future__ import annotations

from dataclasses import dataclass

from cliport_ros.execution.cell import CellConfig


@dataclass(frozen=True)
class Box:
    id: str
    size: tuple[float, float, float]  # x, y, z extents (m)
    center: tuple[float, float, float]  # in the cell's base frame, axis-aligned


def collision_boxes(config: CellConfig) -> list[Box]:
    ws, scene = config.workspace, config.scene
    sx = ws.x_max - ws.x_min + 2 * scene.table_margin
    sy = ws.y_max - ws.y_min + 2 * scene.table_margin
    cx, cy = (ws.x_min + ws.x_max) / 2, (ws.y_min + ws.y_max) / 2
    boxes = []
    if scene.add_table:
        # The table's top is the workspace floor.
        thickness = scene.table_thickness
        boxes.append(Box("table", (sx, sy, thickness), (cx, cy, ws.z_min - thickness / 2)))
    if scene.ceiling_height > 0.0:
        boxes.append(Box("ceiling", (sx, sy, 0.02), (cx, cy, scene.ceiling_height + 0.01)))
    return boxes
