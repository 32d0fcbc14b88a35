"""separating-piles (seen/unseen colors): push a pile of small blocks into the square of a named color."""

from __future__ import annotations

import math

import numpy as np

from cliport_ros.sim.objects import add_square_outline
from cliport_ros.sim.scene import Scene
from cliport_ros.sim.tasks import register
from cliport_ros.sim.tasks.base import Goal
from cliport_ros.sim.tasks.blocks import COLOR_VARIANTS, SceneFullError, _place
from cliport_ros.sim.tasks.zone import Zone, ZoneTask
from cliport_ros.types import PickPlace, Pose


@register
class SeparatingPiles(ZoneTask):
    """ "push the pile of {color} blocks into the {color} square": one pile, two squares; pushes only."""

    family = "separating-piles"
    variants = COLOR_VARIANTS
    primitive = "push"
    n_blocks = 12
    block_size = 0.02
    pile_radius = 0.05
    square_side = 0.15
    behind = 0.03  # the push starts this far behind the block (cup radius + half a block + room)
    stop_short = 0.02  # the cup radius and half a block
    max_pile_distance = 0.3  # between the pile's and the target square's centres

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        self.max_steps = 20
        palette = list(self.colors(split))
        chosen = rng.choice(len(palette), 3, replace=False)
        block_color, square_color, other_color = (palette[i] for i in chosen)
        radius = self.square_side / math.sqrt(2) + 0.01
        squares = []
        for color in (square_color, other_color):
            xy = _place(scene, rng, radius)
            yaw = float(rng.uniform(0, math.pi / 2))
            add_square_outline(scene, color, xy, yaw, self.square_side)
            squares.append((xy, yaw))
        # Long pushes lose blocks off the cup's sides: the pile starts within reach of a few pushes.
        target_xy = squares[0][0]
        pile = scene.sample_free_xy(
            rng, self.pile_radius + self.block_size, near=(target_xy[0], target_xy[1], self.max_pile_distance)
        )
        if pile is None:
            raise SceneFullError("no free table space for the pile near its square")
        blocks = []
        for _ in range(self.n_blocks):
            r = self.pile_radius * math.sqrt(float(rng.random()))
            a = float(rng.uniform(0, 2 * math.pi))
            xy = (pile[0] + r * math.cos(a), pile[1] + r * math.sin(a))
            yaw = float(rng.uniform(0, math.pi / 2))
            blocks.append(scene.add_block(block_color, xy, yaw, self.block_size))
        (xy, yaw) = squares[0]
        half = self.square_side / 2
        self.zones = [Zone(xy, yaw, (half, half))]
        target = ((xy[0], xy[1], scene.workspace.z_min + self.block_size / 2), yaw)
        self.goals = [
            Goal(
                tuple(blocks),
                (target,) * len(blocks),
                1.0,
                0.0,
                instruction=f"push the pile of {block_color} blocks into the {square_color} square",
            )
        ]

    def oracle(self, scene: Scene, rng: np.random.Generator) -> PickPlace:
        """Push the block farthest from the square's centre straight towards the centre, from behind it
        (blocks on the way go along)."""
        goal, zone = self.goals[0], self.zones[0]
        centre = np.asarray(zone.centre)
        outside = [o for o in goal.objects if self.fraction_inside(scene, o, zone) < 1.0]
        if not outside:
            raise RuntimeError(f"{self.key}: the oracle has nothing left to do (all goals met)")
        _, obj = max((float(np.linalg.norm(scene.pose(o)[0][:2] - centre)), o) for o in outside)
        pos = scene.pose(obj)[0][:2]
        u = (centre - pos) / max(float(np.linalg.norm(centre - pos)), 1e-6)
        start = pos - self.behind * u
        # Stop short of the centre: the pushed block rides ahead of the cup and comes to rest near it.
        end = centre - self.stop_short * u
        z = scene.workspace.z_min
        # The suction cup is round: the push keeps the tool's yaw at 0 (big turns from the home pose can
        # leave the arm's reach near the base).
        return PickPlace(
            pick=Pose((float(start[0]), float(start[1]), z), (0.0, 0.0, 0.0, 1.0)),
            place=Pose((float(end[0]), float(end[1]), z), (0.0, 0.0, 0.0, 1.0)),
            instruction=self.instruction,
            primitive="push",
        )
