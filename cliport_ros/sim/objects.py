"""More generated objects for the task families: movable compounds (rings, kit shapes), containers, stands.

Everything is built from PyBullet primitives (boxes, cylinders) or convex hulls of generated vertices, so
the repository carries no third-party meshes. Each builder records the body in ``scene.objects`` like the
builders of ``scene.py`` do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cliport_ros.geometry.transforms import yaw_to_quaternion
from cliport_ros.sim.scene import Scene, SceneObject, rgba

# (geometry type name, parameters, local position, local yaw): geometry is "box" (half_extents),
# "cylinder" (radius, length) or "prism" (a convex polygon ``points`` extruded by ``length``).
Part = tuple[str, dict, tuple[float, float, float], float]
MAX_PARTS = 16  # PyBullet's limit for a shape array


def _shape_args(client, parts: Sequence[Part]) -> tuple[list, dict]:
    types, radii, lengths, halves = [], [], [], []
    for kind, params, _, _ in parts:
        if kind == "box":
            types.append(client.GEOM_BOX)
            halves.append(list(params["half_extents"]))
            radii.append(0.0)
            lengths.append(0.0)
        elif kind == "cylinder":
            types.append(client.GEOM_CYLINDER)
            halves.append([0.0, 0.0, 0.0])
            radii.append(float(params["radius"]))
            lengths.append(float(params["length"]))
        else:
            raise ValueError(f"unknown part geometry {kind!r}; choose box or cylinder")
    return types, dict(radii=radii, lengths=lengths, halfExtents=halves)


def prism_mesh(points: Sequence[tuple[float, float]], length: float) -> tuple[list, list]:
    """Vertices and triangle indices of a convex polygon (counter-clockwise) extruded along z, centred."""
    if len(points) < 3:
        raise ValueError("a prism needs at least 3 polygon points")
    h = length / 2
    n = len(points)
    vertices = [[x, y, -h] for x, y in points] + [[x, y, h] for x, y in points]
    indices: list[int] = []
    for k in range(1, n - 1):
        indices += [0, k + 1, k]  # bottom, facing down
        indices += [n, n + k, n + k + 1]  # top, facing up
    for k in range(n):
        j = (k + 1) % n
        indices += [k, j, n + j, k, n + j, n + k]
    return vertices, indices


def add_compound(
    scene: Scene,
    kind: str,
    color: str,
    parts: Sequence[Part],
    position: tuple[float, float, float],
    yaw: float,
    size: tuple[float, float, float],
    mass: float = 0.0,
    symmetry: float = 0.0,
    pickable: bool = False,
    extras: dict | None = None,
    part_rgba: Sequence[tuple[float, float, float, float]] | None = None,
) -> int:
    """One body made of box/cylinder parts (movable when ``mass`` > 0), recorded in the scene."""
    if not parts or len(parts) > MAX_PARTS:
        raise ValueError(f"a compound takes 1..{MAX_PARTS} parts, got {len(parts)}")
    c = scene.client
    types, shape_kw = _shape_args(c, parts)
    frames = dict(
        positions=[list(p[2]) for p in parts], orientations=[list(yaw_to_quaternion(p[3])) for p in parts]
    )
    col = c.createCollisionShapeArray(
        types,
        collisionFramePositions=frames["positions"],
        collisionFrameOrientations=frames["orientations"],
        **shape_kw,
    )
    vis = c.createVisualShapeArray(
        types,
        visualFramePositions=frames["positions"],
        visualFrameOrientations=frames["orientations"],
        **shape_kw,
    )
    body = c.createMultiBody(
        mass, col, vis, basePosition=list(position), baseOrientation=yaw_to_quaternion(yaw)
    )
    # Colour afterwards: createVisualShapeArray's rgbaColors crashes PyBullet 3.2.7 beyond 16 shapes.
    c.changeVisualShape(body, -1, rgbaColor=rgba(color))
    if mass > 0:
        c.changeDynamics(body, -1, lateralFriction=0.8, spinningFriction=0.001)
    scene.objects[body] = SceneObject(body, kind, color, size, pickable, symmetry, dict(extras or {}))
    return body


def add_prism(
    scene: Scene,
    kind: str,
    color: str,
    points: Sequence[tuple[float, float]],
    height: float,
    position: tuple[float, float, float],
    yaw: float,
    mass: float,
    symmetry: float,
    extras: dict | None = None,
) -> int:
    """A movable convex prism (e.g. a triangle or hexagon), pickable."""
    c = scene.client
    vertices, indices = prism_mesh(points, height)
    col = c.createCollisionShape(c.GEOM_MESH, vertices=vertices)
    vis = c.createVisualShape(c.GEOM_MESH, vertices=vertices, indices=indices, rgbaColor=rgba(color))
    body = c.createMultiBody(
        mass, col, vis, basePosition=list(position), baseOrientation=yaw_to_quaternion(yaw)
    )
    c.changeDynamics(body, -1, lateralFriction=0.8, spinningFriction=0.001)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    size = (max(xs) - min(xs), max(ys) - min(ys), height)
    scene.objects[body] = SceneObject(body, kind, color, size, True, symmetry, dict(extras or {}))
    return body


def ring_parts(outer: float, inner: float, height: float, segments: int = 12) -> list[Part]:
    """Box segments approximating an annulus of radii ``inner``..``outer`` and ``height``, centred."""
    if not 0 < inner < outer:
        raise ValueError(f"a ring needs 0 < inner < outer radius, got {inner}, {outer}")
    if not 3 <= segments <= MAX_PARTS:
        raise ValueError(f"a ring takes 3..{MAX_PARTS} segments, got {segments}")
    wall = outer - inner
    mid = (outer + inner) / 2
    # Segments slightly longer than the polygon side so neighbours overlap and leave no gaps.
    seg = 2 * outer * math.tan(math.pi / segments)
    parts: list[Part] = []
    for k in range(segments):
        a = 2 * math.pi * k / segments
        half = (wall / 2, seg / 2, height / 2)
        parts.append(("box", dict(half_extents=half), (mid * math.cos(a), mid * math.sin(a), 0.0), a))
    return parts


def add_ring(
    scene: Scene,
    color: str,
    xy: tuple[float, float],
    z: float,
    outer: float,
    inner: float,
    height: float,
    mass: float = 0.03,
) -> int:
    """A movable, pickable ring (a torus-like annulus) centred at (x, y, z)."""
    return add_compound(
        scene,
        "ring",
        color,
        ring_parts(outer, inner, height),
        (xy[0], xy[1], z),
        0.0,
        (2 * outer, 2 * outer, height),
        mass=mass,
        pickable=True,
        extras=dict(outer=outer, inner=inner),
    )


def add_container(
    scene: Scene,
    xy: tuple[float, float],
    yaw: float,
    inner: tuple[float, float],
    height: float = 0.03,
    wall: float = 0.008,
    color: str = "brown",
) -> int:
    """A static open box (four walls on the table) with an ``inner`` x, y free space, centred at ``xy``."""
    ix, iy = inner
    if ix <= 0 or iy <= 0:
        raise ValueError(f"container inner size must be positive, got {inner}")
    h = height / 2
    parts: list[Part] = [
        ("box", dict(half_extents=(ix / 2 + wall, wall / 2, h)), (0.0, s * (iy + wall) / 2, h), 0.0)
        for s in (-1, 1)
    ] + [
        ("box", dict(half_extents=(wall / 2, iy / 2, h)), (s * (ix + wall) / 2, 0.0, h), 0.0) for s in (-1, 1)
    ]
    ws = scene.workspace
    return add_compound(
        scene,
        "container",
        color,
        parts,
        (xy[0], xy[1], ws.z_min),
        yaw,
        (ix + 2 * wall, iy + 2 * wall, height),
        extras=dict(inner=inner),
    )


def add_cuboid(
    scene: Scene,
    color: str,
    xy: tuple[float, float],
    yaw: float,
    size: tuple[float, float, float],
    mass: float = 0.05,
) -> int:
    """A movable, pickable box of any size resting on the table (``scene.add_block`` makes cubes)."""
    if min(size) <= 0:
        raise ValueError(f"cuboid sizes must be positive, got {size}")
    c = scene.client
    half = [s / 2 for s in size]
    col = c.createCollisionShape(c.GEOM_BOX, halfExtents=half)
    vis = c.createVisualShape(c.GEOM_BOX, halfExtents=half, rgbaColor=rgba(color))
    z = scene.workspace.z_min + size[2] / 2
    body = c.createMultiBody(
        mass, col, vis, basePosition=[xy[0], xy[1], z], baseOrientation=yaw_to_quaternion(yaw)
    )
    c.changeDynamics(body, -1, lateralFriction=0.8, spinningFriction=0.001)
    square = abs(size[0] - size[1]) < 1e-6
    symmetry = math.pi / 2 if square else math.pi
    scene.objects[body] = SceneObject(body, "block", color, tuple(size), True, symmetry)
    return body
