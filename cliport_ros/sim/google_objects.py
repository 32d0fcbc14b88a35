"""Google Scanned Objects for the packing-google-objects tasks: find the user's meshes, split their names into
seen and unseen, and load one as a movable PyBullet body.

The meshes are not part of this package and it never downloads them: they are the Google Scanned Objects set
(Google Research, CC-BY-4.0), from ``DATA_URL`` (Gazebo Fuel, "Scanned Objects by Google Research"), or
Ravens'/CLIPort's ``google`` asset folder. Point the environment variable ``CLIPORT_GOOGLE_OBJECTS`` at
the folder (or set ``objects_dir`` on the task: ``env.task.objects_dir = path``). One object per entry:

    <folder>/<name>/meshes/model.obj   texture: <name>/materials/textures/texture.png   (GSO as downloaded)
    <folder>/<name>/model.obj          texture: <name>/texture.png
    <folder>/<name>.obj                texture: <name>.png beside it, or ../textures/<name>.png (Ravens'
                                       google/meshes_fixed folder)

The object's name is the entry's name with "_" read as a space, in lower case (``alarm_clock`` -> "alarm
clock"); it is what the instructions say. Meshes are Wavefront OBJ with z up, in any unit: each is rescaled
(``add_google_object``). A texture is optional; without one the object takes a color picked from its name.

Seen/unseen rule (deterministic, independent of what else is in the folder): a name in Ravens' lists follows
Ravens (its 19 held-out names, ``RAVENS_UNSEEN``, are unseen; its other 37 are seen); any other name is unseen
when crc32(name) % 5 == 0 (about one in five). ``python -m cliport_ros.sim.google_objects DIR`` writes a few
generated stand-in meshes (boxes and prisms under Ravens' names) for trying the tasks without the data set.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cliport_ros.geometry.transforms import yaw_to_quaternion
from cliport_ros.sim.objects import prism_mesh
from cliport_ros.sim.scene import COLORS, Scene, SceneObject, rgba

ENV_VAR = "CLIPORT_GOOGLE_OBJECTS"
DATA_URL = "https://app.gazebosim.org/GoogleResearch/fuel/collections/Scanned%20Objects%20by%20Google%20Research"
LAYOUT = (
    "one entry per object: <folder>/<name>/meshes/model.obj (Google Scanned Objects as downloaded), "
    "<folder>/<name>/model.obj, or <folder>/<name>.obj (Ravens' google/meshes_fixed); the name is the "
    "entry's name with '_' for spaces (e.g. alarm_clock)"
)

# Ravens' packing-unseen-google-objects split: the val/test-only names (its other 37 names are train names).
RAVENS_UNSEEN: frozenset[str] = frozenset(
    (
        "ball puzzle",
        "black and blue sneakers",
        "black shoe with green stripes",
        "brown fedora",
        "dinosaur figure",
        "hammer",
        "light brown boot with golden laces",
        "lion figure",
        "pepsi max box",
        "pepsi next box",
        "porcelain salad plate",
        "porcelain spoon",
        "red and white striped towel",
        "red cup",
        "screwdriver",
        "toy train",
        "unicorn toy",
        "white razer mouse",
        "yoshi figure",
    )
)
RAVENS_SEEN: frozenset[str] = frozenset(
    (
        "alarm clock",
        "android toy",
        "black boot with leopard print",
        "black fedora",
        "black razer mouse",
        "black sandal",
        "black shoe with orange stripes",
        "bull figure",
        "butterfinger chocolate",
        "c clamp",
        "can opener",
        "crayon box",
        "dog statue",
        "frypan",
        "green and white striped towel",
        "grey soccer shoe with cleats",
        "hard drive",
        "honey dipper",
        "magnifying glass",
        "mario figure",
        "nintendo 3ds",
        "nintendo cartridge",
        "office depot box",
        "orca plush toy",
        "pepsi gold caffeine free box",
        "pepsi wild cherry box",
        "porcelain cup",
        "purple tape",
        "red and white flashlight",
        "rhino figure",
        "rocket racoon figure",
        "scissors",
        "silver tape",
        "spatula with purple head",
        "spiderman figure",
        "tablet",
        "toy school bus",
    )
)
# Colors of untextured objects (never the box's brown).
FALLBACK_COLORS: tuple[str, ...] = tuple(c for c in COLORS if c != "brown")
MAX_HEIGHT = 0.08  # scaled objects are at most this tall (carried objects clear the others at travel height)
FOOTPRINT_STEP = 0.005
GRASP_INSET = 0.012  # pick candidates stay a suction cup's radius inside the footprint's outline


class GoogleObjectsError(ValueError):
    """The Google Scanned Objects folder is missing, empty, or holds no usable mesh."""


def is_unseen(name: str) -> bool:
    """The seen/unseen rule of the module docstring."""
    if name in RAVENS_UNSEEN:
        return True
    if name in RAVENS_SEEN:
        return False
    return zlib.crc32(name.encode("utf-8")) % 5 == 0


@dataclass(frozen=True)
class MeshAsset:
    name: str
    mesh: Path
    texture: Path | None


@dataclass(frozen=True)
class ObjectLibrary:
    folder: Path
    assets: dict[str, MeshAsset]  # by name, sorted

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.assets)

    @property
    def seen(self) -> tuple[str, ...]:
        return tuple(n for n in self.assets if not is_unseen(n))

    @property
    def unseen(self) -> tuple[str, ...]:
        return tuple(n for n in self.assets if is_unseen(n))


def _object_name(stem: str) -> str:
    return " ".join(stem.replace("_", " ").lower().split())


def _first_file(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def scan_folder(folder: str | os.PathLike) -> dict[str, MeshAsset]:
    """The objects of a folder laid out as the module docstring says, by name (sorted); {} when none."""
    root = Path(folder)
    found: dict[str, MeshAsset] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            mesh = _first_file(entry / "meshes" / "model.obj", entry / "model.obj")
            texture = _first_file(
                entry / "materials" / "textures" / "texture.png",
                entry / "meshes" / "texture.png",
                entry / "texture.png",
            )
        elif entry.suffix.lower() == ".obj":
            mesh = entry
            texture = _first_file(entry.with_suffix(".png"), root.parent / "textures" / f"{entry.stem}.png")
        else:
            continue
        name = _object_name(entry.stem if entry.is_file() else entry.name)
        if mesh is not None and name and name not in found:
            found[name] = MeshAsset(name, mesh, texture)
    return dict(sorted(found.items()))


def _missing(reason: str) -> GoogleObjectsError:
    return GoogleObjectsError(
        f"packing-google-objects: {reason}. These tasks need the Google Scanned Objects meshes, which are "
        f"not shipped: download them (CC-BY-4.0) from {DATA_URL}, and set {ENV_VAR} (or the task's "
        f"objects_dir) to their folder ({LAYOUT}). To try the tasks without them, "
        "python -m cliport_ros.sim.google_objects DIR writes stand-in meshes."
    )


def load_library(folder: str | os.PathLike | None = None) -> ObjectLibrary:
    """The objects of ``folder`` (default: $CLIPORT_GOOGLE_OBJECTS); GoogleObjectsError with what to do when
    the folder is unset, missing or has no mesh."""
    if folder is None or str(folder) == "":
        folder = os.environ.get(ENV_VAR, "")
        if not folder:
            raise _missing(f"{ENV_VAR} is not set")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise _missing(f"{ENV_VAR}/objects_dir {str(root)!r} is not a folder")
    assets = scan_folder(root)
    if not assets:
        raise _missing(f"no object mesh found in {str(root)!r}")
    return ObjectLibrary(root, assets)


# --- geometry -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeshGeometry:
    """What loading needs from an OBJ file: its bounding box and the convex hull of its x, y outline."""

    lo: np.ndarray
    hi: np.ndarray
    hull_xy: np.ndarray  # (N, 2) counter-clockwise, in the file's units and frame


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull of (N, 2) points (Andrew's monotone chain)."""
    pts = sorted(set(map(tuple, points)))
    if len(pts) < 3:
        return np.asarray(pts, dtype=np.float64)

    def half(seq):
        out: list = []
        for p in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(reversed(pts))
    return np.asarray(lower[:-1] + upper[:-1], dtype=np.float64)


@lru_cache(maxsize=256)
def _geometry_cached(path: str, mtime_ns: int, size: int) -> MeshGeometry:
    rows = []
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"v "):
                rows.append(line.split()[1:4])
    try:
        vertices = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    except ValueError as exc:
        raise GoogleObjectsError(f"{path}: unreadable vertex lines ({exc})") from None
    if len(vertices) < 4 or not np.all(np.isfinite(vertices)):
        raise GoogleObjectsError(f"{path}: not a usable mesh (fewer than 4 finite vertices)")
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    extent = hi - lo
    if min(extent) <= 1e-9 * max(max(extent), 1e-12):
        raise GoogleObjectsError(f"{path}: a flat mesh (extents {extent.tolist()}) cannot be packed")
    # Round to 1/500 of the size before the hull: scanned meshes have many vertices, the outline needs few.
    step = max(extent[:2]) / 500.0
    xy = np.unique(np.round(vertices[:, :2] / step), axis=0) * step
    return MeshGeometry(lo, hi, _convex_hull(xy))


def mesh_geometry(path: Path) -> MeshGeometry:
    """Bounding box and outline of an OBJ file (parsed once per file version)."""
    stat = Path(path).stat()
    return _geometry_cached(str(path), stat.st_mtime_ns, stat.st_size)


def _inside_convex(poly: np.ndarray, xy: np.ndarray) -> np.ndarray:
    edges = np.roll(poly, -1, axis=0) - poly
    cross = edges[:, 0][None] * (xy[:, 1][:, None] - poly[:, 1][None]) - edges[:, 1][None] * (
        xy[:, 0][:, None] - poly[:, 0][None]
    )
    return np.all(cross >= -1e-12, axis=1)


def footprint_and_grasps(hull: np.ndarray, step: float = FOOTPRINT_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Grid points (local x, y) inside a convex outline, and those at least ``GRASP_INSET`` inside it."""
    lo, hi = hull.min(axis=0), hull.max(axis=0)
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0] + 1e-9, step), np.arange(lo[1], hi[1] + 1e-9, step))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    inside = grid[_inside_convex(hull, grid)]
    if len(inside) == 0:
        inside = hull.mean(axis=0, keepdims=True)
    ok = np.ones(len(inside), dtype=bool)
    for a in np.arange(8) * math.pi / 4:
        ok &= _inside_convex(hull, inside + GRASP_INSET * np.array([math.cos(a), math.sin(a)]))
    grasps = inside[ok] if ok.any() else hull.mean(axis=0, keepdims=True)
    return inside, grasps


def fallback_color(name: str) -> str:
    """Color of an untextured object: the first color its name says ("red cup"), else one from a hash."""
    named = [w for w in name.split() if w in FALLBACK_COLORS]
    if named:
        return named[0]
    return FALLBACK_COLORS[int(hashlib.sha256(name.encode("utf-8")).hexdigest(), 16) % len(FALLBACK_COLORS)]


def add_google_object(
    scene: Scene,
    asset: MeshAsset,
    xy: tuple[float, float],
    yaw: float,
    size: float,
    mass: float = 0.08,
) -> int:
    """The object as a movable, pickable body standing on the table, scaled so its larger horizontal extent
    is ``size`` (and its height at most ``MAX_HEIGHT``); its origin is its bounding box's centre."""
    geom = mesh_geometry(asset.mesh)
    extent = geom.hi - geom.lo
    scale = min(size / max(extent[0], extent[1]), MAX_HEIGHT / extent[2])
    offset = [float(-(geom.lo[k] + geom.hi[k]) / 2 * scale) for k in range(3)]
    dims = tuple(float(e * scale) for e in extent)
    c = scene.client
    color = fallback_color(asset.name)
    col = c.createCollisionShape(
        c.GEOM_MESH, fileName=str(asset.mesh), meshScale=[scale] * 3, collisionFramePosition=offset
    )
    vis = c.createVisualShape(
        c.GEOM_MESH,
        fileName=str(asset.mesh),
        meshScale=[scale] * 3,
        visualFramePosition=offset,
        rgbaColor=rgba(color),
    )
    if col < 0 or vis < 0:
        raise GoogleObjectsError(f"{asset.mesh}: PyBullet could not load this mesh")
    z = scene.workspace.z_min + dims[2] / 2 + 0.002
    body = c.createMultiBody(mass, col, vis, basePosition=[xy[0], xy[1], z], baseOrientation=yaw_to_quaternion(yaw))
    c.changeDynamics(body, -1, lateralFriction=0.8, spinningFriction=0.001)
    if asset.texture is not None:
        try:
            texture = c.loadTexture(str(asset.texture))
        except Exception:  # pybullet.error: an unreadable image keeps the fallback color
            texture = -1
        if texture >= 0:
            c.changeVisualShape(body, -1, textureUniqueId=texture, rgbaColor=[1.0, 1.0, 1.0, 1.0])
            color = "textured"
    hull = (geom.hull_xy - (geom.lo[:2] + geom.hi[:2]) / 2) * scale
    footprint, grasps = footprint_and_grasps(hull)
    extras = dict(name=asset.name, footprint=footprint, grasp=grasps, mesh=str(asset.mesh))
    # Symmetry 2*pi: no symmetry assumed, so the oracle turns each object square to its slot.
    scene.objects[body] = SceneObject(body, "google_object", color, dims, True, 2 * math.pi, extras)
    return body


# --- stand-in meshes ----------------------------------------------------------------------------------------
def _regular(n: int, rx: float, ry: float, phase: float = 0.0) -> list[tuple[float, float]]:
    angles = [phase + 2 * math.pi * k / n for k in range(n)]
    return [(rx * math.cos(a), ry * math.sin(a)) for a in angles]


# Ravens names (seen, then unseen under Ravens' split) -> (outline, height, color), outline and height in
# centimetres: the files are in cm and off-centre on purpose, like a scan in its own units and frame.
SAMPLE_OBJECTS: dict[str, tuple[list[tuple[float, float]], float, str]] = {
    "alarm_clock": (_regular(12, 4.0, 4.0), 5.0, "white"),
    "crayon_box": ([(-5.0, -3.0), (5.0, -3.0), (5.0, 3.0), (-5.0, 3.0)], 2.0, "yellow"),
    "frypan": (_regular(16, 6.0, 6.0), 1.5, "gray"),
    "hard_drive": ([(-4.0, -6.0), (4.0, -6.0), (4.0, 6.0), (-4.0, 6.0)], 1.5, "blue"),
    "purple_tape": (_regular(10, 3.5, 3.5), 2.5, "purple"),
    "tablet": ([(-8.0, -5.0), (8.0, -5.0), (8.0, 5.0), (-8.0, 5.0)], 1.0, "cyan"),
    "hammer": (_regular(3, 5.0, 5.0, math.pi / 2), 3.0, "orange"),
    "red_cup": (_regular(8, 3.5, 3.5), 6.0, "red"),
    "screwdriver": (_regular(6, 6.0, 2.5), 2.5, "green"),
    "toy_train": (_regular(5, 4.5, 4.5, math.pi / 2), 3.5, "pink"),
}


def solid_png(rgb: tuple[int, int, int], side: int = 4) -> bytes:
    """A ``side`` x ``side`` PNG of one color (a stand-in's texture)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def sample_obj(points: list[tuple[float, float]], height: float, origin=(0.0, 0.0, 0.0)) -> str:
    """OBJ text of a convex prism standing on z = 0, moved by ``origin`` (no normals: PyBullet adds them)."""
    vertices, indices = prism_mesh(points, height)
    lines = ["# generated stand-in for a Google Scanned Objects mesh (cliport_ros)"]
    ox, oy, oz = origin[0], origin[1], origin[2] + height / 2
    lines += [f"v {x + ox:.5f} {y + oy:.5f} {z + oz:.5f}" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in zip(indices[0::3], indices[1::3], indices[2::3])]
    return "\n".join(lines) + "\n"


def write_sample_objects(folder: str | os.PathLike, names: list[str] | None = None) -> Path:
    """Write stand-in meshes (``SAMPLE_OBJECTS``, or the ``names`` among them) in the Google Scanned Objects
    layout: ``<folder>/<name>/meshes/model.obj`` and a one-color ``<name>/materials/textures/texture.png``;
    returns the folder."""
    root = Path(folder)
    for k, name in enumerate(names or list(SAMPLE_OBJECTS)):
        points, height, color = SAMPLE_OBJECTS[name]
        mesh = root / name / "meshes" / "model.obj"
        texture = root / name / "materials" / "textures" / "texture.png"
        for path in (mesh, texture):
            path.parent.mkdir(parents=True, exist_ok=True)
        mesh.write_text(sample_obj(points, height, origin=(3.0 * k, -2.0 * k, 1.0)), encoding="utf-8")
        texture.write_bytes(solid_png(COLORS[color]))
    return root


if __name__ == "__main__":  # python -m cliport_ros.sim.google_objects DIR
    if len(sys.argv) != 2:
        print("usage: python -m cliport_ros.sim.google_objects DIR  (writes stand-in meshes into DIR)")
        sys.exit(2)
    out = write_sample_objects(sys.argv[1])
    print(f"wrote {len(SAMPLE_OBJECTS)} stand-in meshes to {out}; export {ENV_VAR}={out.resolve()}")
