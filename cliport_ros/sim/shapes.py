"""Twenty generated flat shapes (the packing-shapes / kit objects): letters, polygons, a disc and a ring.

Each shape is a 2D outline made of rectangles, discs, an annulus or one convex polygon, centred on its
bounding box; ``add_shape`` extrudes it into a movable body from PyBullet primitives (convex prisms from
generated vertices), so no mesh file is needed. The footprint points serve the zone metric and the
oracle's pick points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cliport_ros.geometry.transforms import yaw_to_quaternion
from cliport_ros.sim.objects import Part, add_compound, add_prism, ring_parts
from cliport_ros.sim.scene import Scene
from cliport_ros.types import PickPlace, Pose

STROKE = 0.02  # letter stroke width (m)
SHAPE_HEIGHT = 0.02
GRASP_CLEARANCE = 0.006  # a pick point lies this far inside the outline (the cup may overhang a stroke)
FOOTPRINT_STEP = 0.005


def _regular(n: int, radius: float, phase: float = 0.0) -> tuple[tuple[float, float], ...]:
    return tuple(
        (radius * math.cos(phase + 2 * math.pi * k / n), radius * math.sin(phase + 2 * math.pi * k / n))
        for k in range(n)
    )


def _semicircle(radius: float) -> tuple[tuple[float, float], ...]:
    """A half disc centred on its bounding box."""
    return tuple((radius * math.cos(a), radius * math.sin(a) - radius / 2) for a in np.linspace(0, math.pi, 9))


@dataclass(frozen=True)
class Shape:
    """A flat shape: ``rects`` (cx, cy, sx, sy), or ``polygon`` (convex, counter-clockwise), or a disc
    (``radius``) with an optional hole (``inner``)."""

    name: str
    symmetry: float  # yaw period (rad); 0 = any yaw
    rects: tuple[tuple[float, float, float, float], ...] = ()
    polygon: tuple[tuple[float, float], ...] = ()
    radius: float = 0.0
    inner: float = 0.0

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Which (N, 2) local points lie inside the outline."""
        x, y = xy[:, 0], xy[:, 1]
        inside = np.zeros(len(xy), dtype=bool)
        for cx, cy, sx, sy in self.rects:
            inside |= (np.abs(x - cx) <= sx / 2 + 1e-9) & (np.abs(y - cy) <= sy / 2 + 1e-9)
        if self.polygon:
            poly = np.asarray(self.polygon)
            edges = np.roll(poly, -1, axis=0) - poly
            cross = edges[:, 0][None] * (y[:, None] - poly[:, 1][None]) - edges[:, 1][None] * (
                x[:, None] - poly[:, 0][None]
            )
            inside |= np.all(cross >= -1e-9, axis=1)
        if self.radius > 0:
            r = np.hypot(x, y)
            inside |= (r <= self.radius + 1e-9) & (r >= self.inner - 1e-9)
        return inside

    @property
    def half_extents(self) -> tuple[float, float]:
        if self.rects:
            return (
                max(abs(cx) + sx / 2 for cx, _, sx, _ in self.rects),
                max(abs(cy) + sy / 2 for _, cy, _, sy in self.rects),
            )
        if self.polygon:
            return (max(abs(p[0]) for p in self.polygon), max(abs(p[1]) for p in self.polygon))
        return (self.radius, self.radius)

    def footprint(self, step: float = FOOTPRINT_STEP) -> np.ndarray:
        """Local (N, 2) grid points inside the outline."""
        hx, hy = self.half_extents
        gx, gy = np.meshgrid(np.arange(-hx, hx + 1e-9, step), np.arange(-hy, hy + 1e-9, step))
        grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
        return grid[self.contains(grid)]

    def grasp_points(self) -> np.ndarray:
        """Footprint points with the outline at least ``GRASP_CLEARANCE`` away in eight directions."""
        pts = self.footprint()
        ok = np.ones(len(pts), dtype=bool)
        for a in np.arange(8) * math.pi / 4:
            ok &= self.contains(pts + GRASP_CLEARANCE * np.array([math.cos(a), math.sin(a)]))
        return pts[ok]


def _letters() -> dict[str, tuple[tuple[float, float, float, float], ...]]:
    w, h, s = 0.06, 0.08, STROKE
    return {
        "letter T": ((0, h / 2 - s / 2, w, s), (0, -s / 2, s, h - s)),
        "letter L": (((s - w) / 2, 0, s, h), (0, (s - h) / 2, w, s)),
        "letter U": (((s - w) / 2, 0, s, h), ((w - s) / 2, 0, s, h), (0, (s - h) / 2, w, s)),
        "letter H": (((s - w) / 2, 0, s, h), ((w - s) / 2, 0, s, h), (0, 0, w, s)),
        "letter E": (((s - w) / 2, 0, s, h), (0, (h - s) / 2, w, s), (0, 0, w, s), (0, (s - h) / 2, w, s)),
        "letter S": (
            (0, (h - s) / 2, w, s),
            ((s - w) / 2, h / 4, s, h / 2),
            (0, 0, w, s),
            ((w - s) / 2, -h / 4, s, h / 2),
            (0, (s - h) / 2, w, s),
        ),
        "letter F": (((s - w) / 2, 0, s, h), (0, (h - s) / 2, w, s), (0, 0, w, s)),
        "letter I": ((0, 0, s, h), (0, (h - s) / 2, w, s), (0, (s - h) / 2, w, s)),
    }


def make_shapes() -> tuple[Shape, ...]:
    """The 20 shapes in their fixed order (train shapes 0-13, test shapes 14-19)."""
    letters = _letters()
    half_pi, pi, full = math.pi / 2, math.pi, 2 * math.pi
    return (
        Shape("square", half_pi, rects=((0, 0, 0.06, 0.06),)),
        Shape("rectangle", pi, rects=((0, 0, 0.08, 0.04),)),
        Shape("circle", 0.0, radius=0.035),
        Shape("triangle", full / 3, polygon=_regular(3, 0.045, math.pi / 2)),
        Shape("plus", half_pi, rects=((0, 0, 0.07, STROKE), (0, 0, STROKE, 0.07))),
        Shape("letter T", full, rects=letters["letter T"]),
        Shape("letter L", full, rects=letters["letter L"]),
        Shape("pentagon", full / 5, polygon=_regular(5, 0.038, math.pi / 2)),
        Shape("hexagon", full / 6, polygon=_regular(6, 0.036)),
        Shape("diamond", pi, polygon=((0.0, -0.045), (0.03, 0.0), (0.0, 0.045), (-0.03, 0.0))),
        Shape("letter U", full, rects=letters["letter U"]),
        Shape("letter H", pi, rects=letters["letter H"]),
        Shape("letter E", full, rects=letters["letter E"]),
        Shape("letter S", pi, rects=letters["letter S"]),
        Shape("letter F", full, rects=letters["letter F"]),
        Shape("ring", 0.0, radius=0.036, inner=0.016),
        Shape("octagon", full / 8, polygon=_regular(8, 0.036, math.pi / 8)),
        Shape("trapezoid", full, polygon=((-0.04, -0.025), (0.04, -0.025), (0.02, 0.025), (-0.02, 0.025))),
        Shape("letter I", pi, rects=letters["letter I"]),
        Shape("semicircle", full, polygon=_semicircle(0.04)),
    )


SHAPES: tuple[Shape, ...] = make_shapes()
TRAIN_SHAPES = tuple(range(14))
TEST_SHAPES = tuple(range(14, 20))


def add_shape(
    scene: Scene,
    shape: Shape,
    color: str,
    xy: tuple[float, float],
    yaw: float,
    height: float = SHAPE_HEIGHT,
    mass: float = 0.05,
    z: float | None = None,
    hole_rgba: tuple[float, float, float, float] | None = None,
) -> int:
    """The shape as a movable, pickable body resting on the table (or centred at ``z``); with
    ``hole_rgba``, a static drawing of the shape in that color instead (a kit's hole)."""
    if z is None:
        z = scene.workspace.z_min + height / 2
    hole = hole_rgba is not None
    kind = "hole" if hole else "shape"
    mass = 0.0 if hole else mass
    hx, hy = shape.half_extents
    extras = dict(shape=shape.name, footprint=shape.footprint(), grasp=shape.grasp_points())
    if shape.polygon:
        return add_prism(
            scene,
            kind,
            color,
            shape.polygon,
            height,
            (xy[0], xy[1], z),
            yaw,
            mass,
            shape.symmetry,
            extras,
            color_rgba=hole_rgba,
            collide=not hole,
        )
    if shape.inner > 0:
        parts: list[Part] = ring_parts(shape.radius, shape.inner, height)
    elif shape.radius > 0:
        parts = [("cylinder", dict(radius=shape.radius, length=height), (0.0, 0.0, 0.0), 0.0)]
    else:
        parts = [
            ("box", dict(half_extents=(sx / 2, sy / 2, height / 2)), (cx, cy, 0.0), 0.0)
            for cx, cy, sx, sy in shape.rects
        ]
    return add_compound(
        scene,
        kind,
        color,
        parts,
        (xy[0], xy[1], z),
        yaw,
        (2 * hx, 2 * hy, height),
        mass=mass,
        symmetry=shape.symmetry,
        pickable=not hole,
        extras=extras,
        color_rgba=hole_rgba,
        collide=not hole,
    )


def shape_oracle_action(
    scene: Scene,
    rng: np.random.Generator,
    obj: int,
    tpos: tuple[float, float, float],
    tyaw: float,
    instruction: str,
) -> PickPlace:
    """The oracle's move of a shape: pick a random grasp point (well inside the outline, not over a hole
    or between strokes), place so the shape's centre lands on ``tpos`` turned to ``tyaw`` (modulo its
    symmetry)."""
    info = scene.objects[obj]
    pos, yaw = scene.pose(obj)
    grasps = info.extras["grasp"]
    grasp = grasps[int(rng.integers(len(grasps)))]
    c, s = math.cos(yaw), math.sin(yaw)
    offset = (c * grasp[0] - s * grasp[1], s * grasp[0] + c * grasp[1])
    period = info.symmetry if info.symmetry > 0 else None
    delta = 0.0 if period is None else (tyaw - yaw + period / 2) % period - period / 2
    cd, sd = math.cos(delta), math.sin(delta)
    moved = (cd * offset[0] - sd * offset[1], sd * offset[0] + cd * offset[1])
    top = info.size[2] / 2
    return PickPlace(
        pick=Pose((pos[0] + offset[0], pos[1] + offset[1], pos[2] + top), (0.0, 0.0, 0.0, 1.0)),
        place=Pose((tpos[0] + moved[0], tpos[1] + moved[1], tpos[2] + top), yaw_to_quaternion(delta)),
        instruction=instruction,
    )
