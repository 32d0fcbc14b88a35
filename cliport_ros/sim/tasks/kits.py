"""assembling-kits-seq (seen/unseen colors): colored shapes into the matching holes of a kit, in order."""

from __future__ import annotations

import math

import numpy as np

from cliport_ros.sim.scene import Scene
from cliport_ros.sim.shapes import SHAPE_HEIGHT, SHAPES, add_shape, shape_oracle_action
from cliport_ros.sim.tasks import register
from cliport_ros.sim.tasks.base import Goal, Task
from cliport_ros.sim.tasks.blocks import COLOR_VARIANTS, _place
from cliport_ros.types import PickPlace

KIT_RGBA = (0.86, 0.85, 0.82, 1.0)
HOLE_RGBA = (0.12, 0.12, 0.12, 1.0)
# Hole positions in the kit frame, named as they appear in the top-down image (rows = +y down, columns =
# +x right) when the kit is not turned; kits turn at most ``max_kit_yaw`` so the names stay true.
HOLES = (
    ("top left", (-0.1, -0.05)),
    ("top middle", (0.0, -0.05)),
    ("top right", (0.1, -0.05)),
    ("bottom left", (-0.05, 0.05)),
    ("bottom right", (0.05, 0.05)),
)


@register
class AssemblingKitsSeq(Task):
    """ "put the {color} {shape} in the {position} {shape} hole", five shapes one after another; the shapes
    are drawn from all 20 (the variants split colors, not shapes)."""

    family = "assembling-kits-seq"
    variants = COLOR_VARIANTS
    kit_size = (0.31, 0.21, 0.01)  # holes 10 cm apart: turned shapes (up to 10 cm across) never overlap
    max_kit_yaw = math.radians(30.0)
    position_tolerance = 0.01  # the paper's default pose tolerance, with 15 degrees of yaw

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        self.sequential = True
        self.max_steps = 5
        palette = list(self.colors(split))
        colors = [palette[i] for i in rng.choice(len(palette), len(HOLES), replace=False)]
        shapes = [SHAPES[i] for i in rng.choice(len(SHAPES), len(HOLES), replace=False)]
        sx, sy, sz = self.kit_size
        kit_xy = _place(scene, rng, math.hypot(sx, sy) / 2 + 0.01)
        kit_yaw = float(rng.uniform(-self.max_kit_yaw, self.max_kit_yaw))
        plate = [((sx / 2, sy / 2, sz / 2), (0.0, 0.0, sz / 2), KIT_RGBA)]
        scene.add_box_compound("kit", plate, kit_xy, kit_yaw, self.kit_size, color="white")
        c, s = math.cos(kit_yaw), math.sin(kit_yaw)
        z_min = scene.workspace.z_min
        order = [int(i) for i in rng.permutation(len(HOLES))]
        self.goals = []
        for k in order:
            name, (lx, ly) = HOLES[k]
            shape, color = shapes[k], colors[k]
            hole_xy = (kit_xy[0] + c * lx - s * ly, kit_xy[1] + s * lx + c * ly)
            hole_yaw = kit_yaw + float(rng.uniform(0, 2 * math.pi))
            # The hole is drawn on the plate (a drawing, no cavity): the shape comes to rest on top of it.
            z_hole = z_min + sz + 0.001  # its underside clear of the plate top (no z-fighting)
            add_shape(scene, shape, "white", hole_xy, hole_yaw, height=0.001, z=z_hole, hole_rgba=HOLE_RGBA)
            xy = _place(scene, rng, math.hypot(*shape.half_extents) + 0.005)
            body = add_shape(scene, shape, color, xy, float(rng.uniform(0, 2 * math.pi)))
            target = ((hole_xy[0], hole_xy[1], z_min + sz + SHAPE_HEIGHT / 2), hole_yaw)
            self.goals.append(
                Goal(
                    (body,),
                    (target,),
                    1.0 / len(HOLES),
                    self.position_tolerance,
                    check_yaw=True,
                    instruction=f"put the {color} {shape.name} in the {name} {shape.name} hole",
                )
            )

    def _oracle_action(
        self, scene: Scene, rng: np.random.Generator, obj: int, tpos: tuple[float, float, float], tyaw: float
    ) -> PickPlace:
        return shape_oracle_action(scene, rng, obj, tpos, tyaw, self.instruction)
