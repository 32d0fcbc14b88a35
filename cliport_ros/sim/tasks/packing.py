"""Packing tasks of the paper (zone metric): packing-boxes-pairs (seen/unseen colors), packing-shapes."""

from __future__ import annotations

import math

import numpy as np

from cliport_ros.sim.objects import add_container, add_cuboid
from cliport_ros.sim.scene import Scene
from cliport_ros.sim.shapes import (
    SHAPE_HEIGHT,
    SHAPES,
    TEST_SHAPES,
    TRAIN_SHAPES,
    add_shape,
    shape_oracle_action,
)
from cliport_ros.sim.tasks import register
from cliport_ros.sim.tasks.base import Goal
from cliport_ros.sim.tasks.blocks import COLOR_VARIANTS, _place
from cliport_ros.sim.tasks.zone import Zone, ZoneTask
from cliport_ros.types import PickPlace

BOX_COLOR = "brown"  # "the brown box": blocks never take the box's color


def split_rectangle(
    rng: np.random.Generator, size: tuple[float, float], min_side: float, depth: int
) -> list[tuple[float, float, float, float]]:
    """Cut a rectangle (centred at 0) into pieces (cx, cy, sx, sy) by random guillotine cuts, each at least
    ``min_side``; the first cut is always made when the rectangle allows it."""
    pieces = []

    def cut(x0: float, y0: float, x1: float, y1: float, level: int) -> None:
        sides = (x1 - x0, y1 - y0)
        axis = int(np.argmax(sides))
        if level >= depth or sides[axis] < 2 * min_side or (level > 0 and rng.random() < 0.15):
            pieces.append(((x0 + x1) / 2, (y0 + y1) / 2, sides[0], sides[1]))
            return
        f = float(rng.uniform(min_side / sides[axis], 1 - min_side / sides[axis]))
        if axis == 0:
            m = x0 + f * sides[0]
            cut(x0, y0, m, y1, level + 1)
            cut(m, y0, x1, y1, level + 1)
        else:
            m = y0 + f * sides[1]
            cut(x0, y0, x1, m, level + 1)
            cut(x0, m, x1, y1, level + 1)

    cut(-size[0] / 2, -size[1] / 2, size[0] / 2, size[1] / 2, 0)
    return pieces


@register
class PackingBoxesPairs(ZoneTask):
    """ "pack all the {c1} and {c2} blocks into the brown box": the blocks of two colors tile the box;
    blocks of other colors are distractors that may stay where they are."""

    family = "packing-boxes-pairs"
    variants = COLOR_VARIANTS
    inner_range = (0.12, 0.20)  # box inside, per side (m)
    min_piece = 0.04  # leaves blocks of at least 3 cm: wider than the suction cup
    gap = 0.005  # per side between a block and its slot's edges
    height_range = (0.03, 0.05)
    max_distractors = 4

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        self.max_steps = 20
        palette = [c for c in self.colors(split) if c != BOX_COLOR]
        chosen = [palette[i] for i in rng.choice(len(palette), 2, replace=False)]
        inner = tuple(float(rng.uniform(*self.inner_range)) for _ in range(2))
        box_xy = _place(scene, rng, math.hypot(*inner) / 2 + 0.02)
        box_yaw = float(rng.uniform(0, math.pi))
        add_container(scene, box_xy, box_yaw, inner, color=BOX_COLOR)
        pieces = split_rectangle(rng, inner, self.min_piece, depth=3)
        colors = [chosen[int(rng.integers(2))] for _ in pieces]
        if len(set(colors)) < 2:
            colors[-1] = chosen[1] if colors[0] == chosen[0] else chosen[0]
        c, s = math.cos(box_yaw), math.sin(box_yaw)
        blocks, targets = [], []
        for (px, py, sx, sy), color in zip(pieces, colors):
            size = (sx - 2 * self.gap, sy - 2 * self.gap, float(rng.uniform(*self.height_range)))
            xy = _place(scene, rng, math.hypot(size[0], size[1]) / 2)
            blocks.append(add_cuboid(scene, color, xy, float(rng.uniform(0, 2 * math.pi)), size))
            z = scene.workspace.z_min + size[2] / 2
            targets.append(((box_xy[0] + c * px - s * py, box_xy[1] + s * px + c * py, z), box_yaw))
        others = [col for col in palette if col not in chosen]
        for _ in range(int(rng.integers(1, self.max_distractors + 1))):
            _, _, sx, sy = pieces[int(rng.integers(len(pieces)))]
            size = (sx - 2 * self.gap, sy - 2 * self.gap, float(rng.uniform(*self.height_range)))
            xy = scene.sample_free_xy(rng, math.hypot(size[0], size[1]) / 2)
            if xy is not None:
                color = others[int(rng.integers(len(others)))]
                add_cuboid(scene, color, xy, float(rng.uniform(0, 2 * math.pi)), size)
        self.zones = [Zone(box_xy, box_yaw, (inner[0] / 2, inner[1] / 2))]
        self.goals = [
            Goal(
                tuple(blocks),
                tuple(targets),
                1.0,
                0.0,  # unused: zone goals count the footprint inside the box
                instruction=f"pack all the {chosen[0]} and {chosen[1]} blocks into the brown box",
            )
        ]


@register
class PackingShapes(ZoneTask):
    """ "pack the {shape} in the brown box": five different shapes, a box that fits the named one; train
    scenes draw shapes 0-13, validation and test scenes shapes 14-19 (the paper's unseen shapes)."""

    # The key is "packing-shapes": the registry joins family and variant with "-".
    family = "packing"
    variants = ("shapes",)
    n_shapes = 5
    box_margin = 0.02  # free space around the shape's bounding box, per side

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        self.max_steps = 1
        pool = TRAIN_SHAPES if split == "train" else TEST_SHAPES
        picked = [pool[i] for i in rng.choice(len(pool), self.n_shapes, replace=False)]
        palette = [c for c in self.colors(split) if c != BOX_COLOR]
        shape = SHAPES[picked[0]]
        hx, hy = shape.half_extents
        inner = (2 * (hx + self.box_margin), 2 * (hy + self.box_margin))
        box_xy = _place(scene, rng, math.hypot(*inner) / 2 + 0.02)
        box_yaw = float(rng.uniform(0, math.pi))
        add_container(scene, box_xy, box_yaw, inner, color=BOX_COLOR)
        bodies = []
        for index in picked:
            other = SHAPES[index]
            xy = _place(scene, rng, math.hypot(*other.half_extents) + 0.005)
            color = palette[int(rng.integers(len(palette)))]
            bodies.append(add_shape(scene, other, color, xy, float(rng.uniform(0, 2 * math.pi))))
        target = ((box_xy[0], box_xy[1], scene.workspace.z_min + SHAPE_HEIGHT / 2), box_yaw)
        self.zones = [Zone(box_xy, box_yaw, (inner[0] / 2, inner[1] / 2))]
        instruction = f"pack the {shape.name} in the brown box"
        self.goals = [Goal((bodies[0],), (target,), 1.0, 0.0, instruction=instruction)]

    def _oracle_action(
        self, scene: Scene, rng: np.random.Generator, obj: int, tpos: tuple[float, float, float], tyaw: float
    ) -> PickPlace:
        return shape_oracle_action(scene, rng, obj, tpos, tyaw, self.instruction)
