"""Block tasks of the paper: put-block-in-bowl and stack-block-pyramid-seq (seen/unseen colors)."""

from __future__ import annotations

import math

import numpy as np

from cliport_ros.sim.scene import Scene
from cliport_ros.sim.tasks import register
from cliport_ros.sim.tasks.base import Goal, Task

BLOCK_SIZE = 0.04
BOWL_DIAMETER = 0.12
BOWL_FLOOR = 0.004  # thickness of the bowl's bottom disc (see Scene.add_bowl)
COLOR_VARIANTS = ("seen-colors", "unseen-colors")


class SceneFullError(RuntimeError):
    """The random layout found no free place for a required object (a different seed will)."""


def _place(scene: Scene, rng: np.random.Generator, radius: float) -> tuple[float, float]:
    xy = scene.sample_free_xy(rng, radius)
    if xy is None:
        raise SceneFullError(f"no free table space for an object of radius {radius} m")
    return xy


@register
class PutBlockInBowl(Task):
    """ "put the {block color} blocks in a {bowl color} bowl": 1-3 bowls, 1..#bowls blocks, distractors."""

    family = "put-block-in-bowl"
    variants = COLOR_VARIANTS
    position_tolerance = 0.05  # the paper's tolerance for this task (a block anywhere in the bowl)
    max_distractors = 6

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        palette = list(self.colors(split))
        bowl_color, block_color = (palette[i] for i in rng.choice(len(palette), 2, replace=False))
        n_bowls = int(rng.integers(1, 4))
        n_blocks = int(rng.integers(1, n_bowls + 1))
        bowl_radius = BOWL_DIAMETER / 2 + 0.01
        block_radius = BLOCK_SIZE * math.sqrt(0.5)
        bowls = [scene.add_bowl(bowl_color, _place(scene, rng, bowl_radius), BOWL_DIAMETER) for _ in range(n_bowls)]
        blocks = [
            scene.add_block(
                block_color, _place(scene, rng, block_radius), float(rng.uniform(0, 2 * math.pi)), BLOCK_SIZE
            )
            for _ in range(n_blocks)
        ]
        others = [c for c in palette if c not in (bowl_color, block_color)]
        for _ in range(self.max_distractors):
            is_block = bool(rng.random() < 0.5)
            color = others[int(rng.integers(len(others)))]
            xy = scene.sample_free_xy(rng, block_radius if is_block else bowl_radius)
            if xy is None:
                continue
            if is_block:
                scene.add_block(color, xy, float(rng.uniform(0, 2 * math.pi)), BLOCK_SIZE)
            else:
                scene.add_bowl(color, xy, BOWL_DIAMETER)
        targets = []
        for bowl in bowls:
            pos, _ = scene.pose(bowl)
            targets.append(((float(pos[0]), float(pos[1]), scene.workspace.z_min + BOWL_FLOOR + BLOCK_SIZE / 2), 0.0))
        self.goals = [
            Goal(
                tuple(blocks),
                tuple(targets),
                1.0,
                self.position_tolerance,
                instruction=f"put the {block_color} blocks in a {bowl_color} bowl",
            )
        ]
        self.max_steps = n_blocks + 1


@register
class StackBlockPyramidSeq(Task):
    """Build a 3-2-1 pyramid on the stand, one block per instruction, in order."""

    family = "stack-block-pyramid-seq"
    variants = COLOR_VARIANTS
    position_tolerance = 0.01  # the paper's default pose tolerance
    stand_height = 0.01
    stand_patch = 0.05
    stand_browns = (
        (0.80, 0.64, 0.45, 1.0),
        (0.62, 0.46, 0.33, 1.0),
        (0.44, 0.30, 0.20, 1.0),
    )  # light -> dark

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        self.sequential = True
        self.max_steps = 12
        palette = list(self.colors(split))
        colors = [palette[i] for i in rng.choice(len(palette), 6, replace=False)]
        half_len = 1.5 * self.stand_patch
        stand_xy = _place(scene, rng, math.hypot(self.stand_patch / 2, half_len) + 0.01)
        stand_yaw = float(rng.uniform(0, 2 * math.pi))
        h, p = self.stand_height, self.stand_patch
        parts = [((p / 2, p / 2, h / 2), (0.0, (k - 1) * p, h / 2), self.stand_browns[k]) for k in range(3)]
        scene.add_box_compound("stand", parts, stand_xy, stand_yaw, (p, 3 * p, h))
        block_radius = BLOCK_SIZE * math.sqrt(0.5)
        blocks = [
            scene.add_block(c, _place(scene, rng, block_radius), float(rng.uniform(0, 2 * math.pi)), BLOCK_SIZE)
            for c in colors
        ]
        z0 = scene.workspace.z_min + h + BLOCK_SIZE / 2
        local = [
            (0.0, -p, z0),
            (0.0, 0.0, z0),
            (0.0, p, z0),
            (0.0, -p / 2, z0 + BLOCK_SIZE),
            (0.0, p / 2, z0 + BLOCK_SIZE),
            (0.0, 0.0, z0 + 2 * BLOCK_SIZE),
        ]
        c, s = math.cos(stand_yaw), math.sin(stand_yaw)
        targets = [
            ((stand_xy[0] + c * lx - s * ly, stand_xy[1] + s * lx + c * ly, lz), stand_yaw) for lx, ly, lz in local
        ]
        places = [
            "the lighter brown side",
            "the middle of the stand",
            "the darker brown side",
            f"the {colors[0]} and {colors[1]} blocks",
            f"the {colors[1]} and {colors[2]} blocks",
            f"the {colors[3]} and {colors[4]} blocks",
        ]
        self.goals = [
            Goal(
                (blocks[k],),
                (targets[k],),
                1.0 / 6.0,
                self.position_tolerance,
                check_yaw=True,
                z_tolerance=BLOCK_SIZE / 2,
                instruction=f"put the {colors[k]} block on {places[k]}",
            )
            for k in range(6)
        ]


@register
class StackBlockPyramidAnyOrder(StackBlockPyramidSeq):
    """stack-block-pyramid-seq's scenes and instructions, with the goals in an order drawn from those the
    pyramid allows: the base row in any order, then the two middle blocks in either, the top last.

    Not one of the paper's tasks: demonstrations for training. In the paper's order a step's index alone says
    where its block goes (the fourth always on the lighter pair), so a policy can place without reading the
    place words; here only the instruction says it."""

    family = "stack-block-pyramid-any-order"

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        super().build(scene, rng, split)  # the same scene as stack-block-pyramid-seq's for the same seed
        base = [int(k) for k in rng.permutation(3)]
        middle = [3 + int(k) for k in rng.permutation(2)]
        self.goals = [self.goals[k] for k in (*base, *middle, 5)]
