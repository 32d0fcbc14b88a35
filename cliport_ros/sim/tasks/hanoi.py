"""towers-of-hanoi-seq (seen/unseen colors): three rings on a three-peg stand, one move per instruction."""

from __future__ import annotations

import math

import numpy as np

from cliport_ros.geometry.transforms import yaw_to_quaternion
from cliport_ros.sim.objects import add_ring
from cliport_ros.sim.scene import Scene
from cliport_ros.sim.tasks import register
from cliport_ros.sim.tasks.base import Goal, Task
from cliport_ros.sim.tasks.blocks import COLOR_VARIANTS, StackBlockPyramidSeq, _place
from cliport_ros.types import PickPlace, Pose

PEG_NAMES = ("the lighter brown side", "the middle", "the darker brown side")


def hanoi_moves(n: int, source: int, target: int) -> list[tuple[int, int]]:
    """The optimal solution as (ring, peg) moves; ring 0 is the smallest."""
    if n < 1:
        raise ValueError(f"need at least one ring, got {n}")
    spare = 3 - source - target
    if n == 1:
        return [(0, target)]
    return hanoi_moves(n - 1, source, spare) + [(n - 1, target)] + hanoi_moves(n - 1, spare, target)


@register
class TowersOfHanoiSeq(Task):
    """ "move the {color} ring to the {lighter brown side | middle | darker brown side}", 7 moves in order."""

    family = "towers-of-hanoi-seq"
    variants = COLOR_VARIANTS
    n_rings = 3
    ring_outer = (0.034, 0.042, 0.050)  # smallest first; the wall leaves the suction cup clear of the peg
    ring_wall = 0.014
    ring_height = 0.015
    peg_half = 0.006
    peg_height = 0.055
    peg_spacing = 0.12  # the largest rings on neighbouring pegs must not touch
    base_height = 0.01
    # A ring cannot leave its peg by more than its clearance; 2 cm still tells the pegs (12 cm apart) apart.
    position_tolerance = 0.02

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        self.sequential = True
        self.max_steps = 14
        palette = list(self.colors(split))
        colors = [palette[i] for i in rng.choice(len(palette), self.n_rings, replace=False)]
        p, h = self.peg_spacing, self.base_height
        stand_xy = _place(scene, rng, math.hypot(p / 2, 1.5 * p) + 0.01)
        stand_yaw = float(rng.uniform(0, 2 * math.pi))
        peg_rgba = (0.55, 0.55, 0.55, 1.0)
        browns = StackBlockPyramidSeq.stand_browns  # light -> dark, as the instructions name them
        peg_half = (self.peg_half, self.peg_half, self.peg_height / 2)
        parts = [((p / 2, p / 2, h / 2), (0.0, (k - 1) * p, h / 2), browns[k]) for k in range(3)]
        parts += [(peg_half, (0.0, (k - 1) * p, h + self.peg_height / 2), peg_rgba) for k in range(3)]
        scene.add_box_compound("hanoi-stand", parts, stand_xy, stand_yaw, (p, 3 * p, h + self.peg_height))
        c, s = math.cos(stand_yaw), math.sin(stand_yaw)
        pegs = [(stand_xy[0] - s * (k - 1) * p, stand_xy[1] + c * (k - 1) * p) for k in range(3)]
        source, target = (int(k) for k in rng.choice(3, 2, replace=False))
        z0 = scene.workspace.z_min + h + self.ring_height / 2
        rings = []
        for level, r in enumerate(reversed(range(self.n_rings))):  # largest at the bottom
            outer = self.ring_outer[r]
            inner = outer - self.ring_wall
            z = z0 + level * self.ring_height
            ring = add_ring(scene, colors[r], pegs[source], z, outer, inner, self.ring_height)
            rings.append((r, ring))
        body = dict(rings)
        stacks: list[list[int]] = [[], [], []]
        stacks[source] = list(reversed(range(self.n_rings)))
        self.goals = []
        moves = hanoi_moves(self.n_rings, source, target)
        for ring, peg in moves:
            for stack in stacks:
                if stack and stack[-1] == ring:
                    stack.pop()
            z = z0 + len(stacks[peg]) * self.ring_height
            stacks[peg].append(ring)
            self.goals.append(
                Goal(
                    (body[ring],),
                    (((pegs[peg][0], pegs[peg][1], z), 0.0),),
                    1.0 / len(moves),
                    self.position_tolerance,
                    z_tolerance=self.ring_height / 2,
                    instruction=f"move the {colors[ring]} ring to {PEG_NAMES[peg]}",
                )
            )

    def _oracle_action(
        self, scene: Scene, rng: np.random.Generator, obj: int, tpos: tuple[float, float, float], tyaw: float
    ) -> PickPlace:
        """Pick a point on the ring's wall (its middle is the hole), place it centred on the target peg."""
        info = scene.objects[obj]
        pos, _ = scene.pose(obj)
        mid = (info.extras["outer"] + info.extras["inner"]) / 2
        a = float(rng.uniform(0, 2 * math.pi))
        offset = (mid * math.cos(a), mid * math.sin(a))
        top = self.ring_height / 2
        return PickPlace(
            pick=Pose((pos[0] + offset[0], pos[1] + offset[1], pos[2] + top), (0.0, 0.0, 0.0, 1.0)),
            place=Pose((tpos[0] + offset[0], tpos[1] + offset[1], tpos[2] + top), yaw_to_quaternion(0.0)),
            instruction=self.instruction,
        )
