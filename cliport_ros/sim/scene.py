"""The simulated scene: the table, generated objects (PyBullet primitives), and their bookkeeping.

Tasks build their objects through ``Scene`` so that every object is recorded with what the oracle and
the reward need (kind, color, size, symmetry) and pickable bodies are known to the suction gripper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cliport_ros.geometry.transforms import quaternion_to_yaw, yaw_to_quaternion
from cliport_ros.geometry.workspace import Workspace

# Color names and their RGB (the Tableau-10 palette, as the paper's tasks use).
COLORS: dict[str, tuple[int, int, int]] = {
    "blue": (78, 121, 167),
    "red": (255, 87, 89),
    "green": (89, 169, 79),
    "orange": (242, 142, 43),
    "yellow": (237, 201, 72),
    "purple": (176, 122, 161),
    "pink": (255, 157, 167),
    "cyan": (118, 183, 178),
    "brown": (156, 117, 95),
    "white": (255, 255, 255),
    "gray": (186, 176, 172),
}
SEEN_COLORS: tuple[str, ...] = ("blue", "red", "green", "yellow", "brown", "gray", "cyan")
UNSEEN_COLORS: tuple[str, ...] = ("blue", "red", "green", "orange", "purple", "pink", "white")
TABLE_RGBA = (0.30, 0.30, 0.32, 1.0)


def rgba(color: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    r, g, b = COLORS[color]
    return (r / 255.0, g / 255.0, b / 255.0, alpha)


@dataclass
class SceneObject:
    """What the scene knows about one body."""

    body: int
    kind: str  # "block", "bowl", "stand", ...
    color: str
    size: tuple[float, float, float]  # bounding box (m)
    pickable: bool
    symmetry: float  # yaw symmetry period (rad); 0 = fully symmetric about z
    extras: dict = field(default_factory=dict)


class Scene:
    """The table and the objects on it, inside one PyBullet client."""

    def __init__(self, client, workspace: Workspace) -> None:
        self.client = client
        self.workspace = workspace
        self.objects: dict[int, SceneObject] = {}
        self._footprints: list[tuple[float, float, float]] = []  # (x, y, radius) of placed objects
        self._build_table()

    def _build_table(self) -> None:
        ws = self.workspace
        c = self.client
        half = (0.75, 0.75, 0.05)
        centre = ((ws.x_min + ws.x_max) / 2, (ws.y_min + ws.y_max) / 2, ws.z_min - half[2])
        col = c.createCollisionShape(c.GEOM_BOX, halfExtents=half)
        vis = c.createVisualShape(c.GEOM_BOX, halfExtents=half, rgbaColor=TABLE_RGBA)
        self.table = c.createMultiBody(0, col, vis, basePosition=centre)
        c.changeDynamics(self.table, -1, lateralFriction=0.6)

    # --- objects -------------------------------------------------------------------------------------------
    def is_pickable(self, body: int) -> bool:
        obj = self.objects.get(body)
        return obj is not None and obj.pickable

    def pose(self, body: int) -> tuple[np.ndarray, float]:
        """Position and yaw of a body."""
        pos, orn = self.client.getBasePositionAndOrientation(body)
        return np.array(pos), quaternion_to_yaw(orn)

    def add_block(
        self, color: str, xy: tuple[float, float], yaw: float, size: float = 0.04, z: float | None = None
    ) -> int:
        """A cube resting on the table (or at ``z``), pickable."""
        c = self.client
        half = [size / 2] * 3
        col = c.createCollisionShape(c.GEOM_BOX, halfExtents=half)
        vis = c.createVisualShape(c.GEOM_BOX, halfExtents=half, rgbaColor=rgba(color))
        zc = self.workspace.z_min + size / 2 if z is None else z
        body = c.createMultiBody(
            0.05, col, vis, basePosition=[xy[0], xy[1], zc], baseOrientation=yaw_to_quaternion(yaw)
        )
        c.changeDynamics(body, -1, lateralFriction=0.8, spinningFriction=0.001)
        self.objects[body] = SceneObject(body, "block", color, (size, size, size), True, math.pi / 2)
        return body

    def add_bowl(
        self,
        color: str,
        xy: tuple[float, float],
        diameter: float = 0.12,
        height: float = 0.04,
        wall: float = 0.006,
        segments: int = 16,
    ) -> int:
        """A bowl: a disc and a ring of wall segments (one static compound body), not pickable."""
        c = self.client
        radius = diameter / 2
        shapes = [(c.GEOM_CYLINDER, dict(radius=radius, length=0.004), (0.0, 0.0, 0.002), (0, 0, 0, 1))]
        seg_len = 2 * radius * math.tan(math.pi / segments) + 0.002
        for k in range(segments):
            a = 2 * math.pi * k / segments
            r = radius - wall / 2
            shapes.append(
                (
                    c.GEOM_BOX,
                    dict(halfExtents=[wall / 2, seg_len / 2, height / 2]),
                    (r * math.cos(a), r * math.sin(a), height / 2),
                    yaw_to_quaternion(a),
                )
            )
        body = self._compound(shapes, rgba(color), (xy[0], xy[1], self.workspace.z_min), 0.0)
        self.objects[body] = SceneObject(body, "bowl", color, (diameter, diameter, height), False, 0.0)
        return body

    def add_box_compound(
        self,
        kind: str,
        parts: list[tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float, float]]],
        xy: tuple[float, float],
        yaw: float,
        size: tuple[float, float, float],
        color: str = "brown",
        extras: dict | None = None,
    ) -> int:
        """A static body made of boxes ``(half_extents, local_position, rgba)`` (e.g. the pyramid stand)."""
        c = self.client
        if len(parts) > 16:
            raise ValueError(f"a box compound takes at most 16 parts (PyBullet limit), got {len(parts)}")
        cols = c.createCollisionShapeArray(
            [c.GEOM_BOX] * len(parts),
            halfExtents=[p[0] for p in parts],
            collisionFramePositions=[p[1] for p in parts],
        )
        vis = c.createVisualShapeArray(
            [c.GEOM_BOX] * len(parts),
            halfExtents=[p[0] for p in parts],
            visualFramePositions=[p[1] for p in parts],
            rgbaColors=[p[2] for p in parts],
        )
        body = c.createMultiBody(
            0.0,
            cols,
            vis,
            basePosition=[xy[0], xy[1], self.workspace.z_min],
            baseOrientation=yaw_to_quaternion(yaw),
        )
        self.objects[body] = SceneObject(body, kind, color, size, False, 0.0, dict(extras or {}))
        return body

    def _compound(self, shapes, color_rgba, position, yaw) -> int:
        c = self.client
        types = [s[0] for s in shapes]
        kwargs_col = dict(
            collisionFramePositions=[s[2] for s in shapes], collisionFrameOrientations=[s[3] for s in shapes]
        )
        kwargs_vis = dict(visualFramePositions=[s[2] for s in shapes], visualFrameOrientations=[s[3] for s in shapes])
        radii = [s[1].get("radius", 0.0) for s in shapes]
        lengths = [s[1].get("length", 0.0) for s in shapes]
        halves = [s[1].get("halfExtents", [0.0, 0.0, 0.0]) for s in shapes]
        col = c.createCollisionShapeArray(types, radii=radii, lengths=lengths, halfExtents=halves, **kwargs_col)
        vis = c.createVisualShapeArray(types, radii=radii, lengths=lengths, halfExtents=halves, **kwargs_vis)
        body = c.createMultiBody(0.0, col, vis, basePosition=list(position), baseOrientation=yaw_to_quaternion(yaw))
        # Color afterwards: createVisualShapeArray's rgbaColors crashes PyBullet 3.2.7 beyond 16 shapes.
        c.changeVisualShape(body, -1, rgbaColor=color_rgba)
        return body

    # --- placement -----------------------------------------------------------------------------------------
    def sample_free_xy(
        self,
        rng: np.random.Generator,
        radius: float,
        margin: float = 0.05,
        max_reach: float = 0.78,
        tries: int = 200,
        near: tuple[float, float, float] | None = None,
    ) -> tuple[float, float] | None:
        """A table position whose disc of ``radius`` clears the placed objects and is within reach (and,
        with ``near`` = (x, y, distance), within that distance of (x, y))."""
        ws = self.workspace
        lo_x, hi_x = ws.x_min + margin + radius, ws.x_max - margin - radius
        lo_y, hi_y = ws.y_min + margin + radius, ws.y_max - margin - radius
        for _ in range(tries):
            x, y = float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))
            if math.hypot(x, y) + radius > max_reach:
                continue
            if near is not None and math.hypot(x - near[0], y - near[1]) > near[2]:
                continue
            if all(math.hypot(x - fx, y - fy) > radius + fr + 0.01 for fx, fy, fr in self._footprints):
                self._footprints.append((x, y, radius))
                return (x, y)
        return None

    def settle(self, max_steps: int = 480, speed_tolerance: float = 1e-3) -> None:
        """Step the physics until the pickable objects stop moving (or ``max_steps``)."""
        bodies = [b for b, o in self.objects.items() if o.pickable]
        for i in range(max_steps):
            self.client.stepSimulation()
            if i % 10 == 9:
                still = True
                for b in bodies:
                    v, w = self.client.getBaseVelocity(b)
                    if np.linalg.norm(v) > speed_tolerance or np.linalg.norm(w) > 10 * speed_tolerance:
                        still = False
                        break
                if still:
                    return
