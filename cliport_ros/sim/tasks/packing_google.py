"""packing-{seen,unseen}-google-objects-{seq,group}: the paper's Google Scanned Objects packing (zone metric).

The meshes are the user's (see ``cliport_ros.sim.google_objects`` for the folder, ``CLIPORT_GOOGLE_OBJECTS``,
and the seen/unseen rule); a missing folder is a ``GoogleObjectsError`` at reset that says what to do.

As Ravens: a brown box and a few objects at random places. seq: "pack the {object} in the brown box", one
object after another (sequential goals, weight 1/#goals each), 1-3 goal objects among 4-5 different objects.
group: "pack all the {object} objects in the brown box": two instances of the named object, two of a
distractor object and up to one more other object. Step cap: #goal objects + 1. Object names: the seen
variants draw every split from all the folder's objects (Ravens' "seen" lists hold all of its objects); the
unseen variants draw train from the seen names and val/test from the unseen ones.

Unlike Ravens, the box (inside 20-24 cm a side) is split into four cells, one per goal object, so the oracle
has a slot for each; objects are scaled to 6-8 cm across (at most 8 cm tall) and stand upright (Ravens tilts
them a little).
"""

from __future__ import annotations

import math

import numpy as np

from cliport_ros.geometry.transforms import yaw_to_quaternion
from cliport_ros.sim.google_objects import GoogleObjectsError, ObjectLibrary, add_google_object, load_library
from cliport_ros.sim.objects import add_container
from cliport_ros.sim.scene import Scene
from cliport_ros.sim.tasks import register
from cliport_ros.sim.tasks.base import Goal
from cliport_ros.sim.tasks.blocks import SceneFullError, _place
from cliport_ros.sim.tasks.packing import BOX_COLOR
from cliport_ros.sim.tasks.zone import Zone, ZoneTask
from cliport_ros.types import PickPlace, Pose


class _PackingGoogleObjects(ZoneTask):
    variants = ("seq", "group")
    unseen_split = False
    inner_range = (0.20, 0.24)  # box inside, per side (m): four cells of at least 10 cm
    size_range = (0.06, 0.08)  # larger horizontal extent of a scaled object (m)
    objects_range = (4, 6)  # objects on the table (numpy's high is exclusive)
    max_seq_goals = 3
    group_repeats = 2  # Ravens: randint(2, 3)

    def __init__(self, variant: str) -> None:
        super().__init__(variant)
        self.sequential = variant == "seq"
        #: The mesh folder; None reads $CLIPORT_GOOGLE_OBJECTS.
        self.objects_dir: str | None = None

    def pool(self, library: ObjectLibrary, split: str) -> tuple[str, ...]:
        if not self.unseen_split:
            names, which = library.names, "any"
        elif split == "train":
            names, which = library.seen, "seen"
        else:
            names, which = library.unseen, "unseen"
        if len(names) < 2:
            raise GoogleObjectsError(
                f"{self.key} on {split} needs at least 2 {which} objects; {library.folder} has "
                f"{len(names)} ({', '.join(names) or 'none'}) of {len(library.names)} "
                "(see cliport_ros/sim/google_objects.py for the seen/unseen rule)"
            )
        return names

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        library = load_library(self.objects_dir)
        pool = self.pool(library, split)
        inner = tuple(float(rng.uniform(*self.inner_range)) for _ in range(2))
        # Close to the workspace's edges (the disc is wider than the box's corners): the box is large.
        box_xy = scene.sample_free_xy(rng, math.hypot(*inner) / 2 + 0.01, margin=0.01)
        if box_xy is None:
            raise SceneFullError("no free table space for the box")
        box_yaw = float(rng.uniform(0, math.pi))
        add_container(scene, box_xy, box_yaw, inner, color=BOX_COLOR)
        n_objects = int(rng.integers(*self.objects_range))
        if self.sequential:
            n_objects = min(n_objects, len(pool))
            names = [pool[i] for i in rng.choice(len(pool), n_objects, replace=False)]
            n_goals = int(rng.integers(1, min(n_objects - 1, self.max_seq_goals) + 1))
        else:
            target, distractor = (pool[i] for i in rng.choice(len(pool), 2, replace=False))
            names = [target] * self.group_repeats + [distractor] * self.group_repeats
            others = [n for n in pool if n != target]
            names += [others[int(rng.integers(len(others)))] for _ in range(n_objects - len(names))]
            n_goals = self.group_repeats
        bodies = []
        for name in names:
            size = float(rng.uniform(*self.size_range))
            xy = _place(scene, rng, size * math.sqrt(0.5) + 0.005)
            yaw = float(rng.uniform(0, 2 * math.pi))
            bodies.append(add_google_object(scene, library.assets[name], xy, yaw, size))
        # The goal objects' slots: cell centres of the box split in 2 x 2, in random order.
        c, s = math.cos(box_yaw), math.sin(box_yaw)
        cells = [(sx * inner[0] / 4, sy * inner[1] / 4) for sx in (-1, 1) for sy in (-1, 1)]
        cells = [cells[i] for i in rng.permutation(len(cells))]
        targets = []
        for body, (px, py) in zip(bodies[:n_goals], cells):
            z = scene.workspace.z_min + scene.objects[body].size[2] / 2
            targets.append(((box_xy[0] + c * px - s * py, box_xy[1] + s * px + c * py, z), box_yaw))
        zone = Zone(box_xy, box_yaw, (inner[0] / 2, inner[1] / 2))
        self.max_steps = n_goals + 1
        if self.sequential:
            self.goals = [
                Goal((body,), (target,), 1.0 / n_goals, 0.0, instruction=f"pack the {name} in the brown box")
                for body, target, name in zip(bodies, targets, names)
            ]
            self.zones = [zone] * n_goals
        else:
            instruction = f"pack all the {names[0]} objects in the brown box"
            self.goals = [Goal(tuple(bodies[:n_goals]), tuple(targets), 1.0, 0.0, instruction=instruction)]
            self.zones = [zone]

    def _oracle_action(
        self, scene: Scene, rng: np.random.Generator, obj: int, tpos: tuple[float, float, float], tyaw: float
    ) -> PickPlace:
        """Pick where a ray from above meets the object's own surface, facing up (a random one of the grasp
        candidates); place so the object's centre lands on its slot, turned square to the box."""
        info = scene.objects[obj]
        pos, yaw = scene.pose(obj)
        c, s = math.cos(yaw), math.sin(yaw)
        grasps = np.asarray(info.extras["grasp"])
        order = rng.permutation(len(grasps))[:48]
        local = grasps[order]
        world = local @ np.array([[c, s], [-s, c]]) + pos[:2]
        top, bottom = pos[2] + info.size[2] + 0.1, scene.workspace.z_min - 0.01
        hits = scene.client.rayTestBatch([(x, y, top) for x, y in world], [(x, y, bottom) for x, y in world])
        pick = None
        for (x, y), hit in zip(world, hits):
            if hit[0] == obj and hit[4][2] >= 0.8:  # the object itself, a face that looks up
                pick = (float(x), float(y), float(hit[3][2]))
                break
        if pick is None:  # no face up within reach of the ray candidates: the centre's top
            pick = (float(pos[0]), float(pos[1]), float(pos[2] + info.size[2] / 2))
        offset = (pick[0] - pos[0], pick[1] - pos[1])
        # Any quarter turn fits a cell (objects at most 8 cm across, cells at least 10 cm): turn the least.
        delta = (tyaw - yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4
        cd, sd = math.cos(delta), math.sin(delta)
        moved = (cd * offset[0] - sd * offset[1], sd * offset[0] + cd * offset[1])
        place = (tpos[0] + moved[0], tpos[1] + moved[1], tpos[2] + (pick[2] - pos[2]))
        return PickPlace(
            pick=Pose(pick, (0.0, 0.0, 0.0, 1.0)),
            place=Pose(place, yaw_to_quaternion(delta)),
            instruction=self.instruction,
        )


@register
class PackingSeenGoogleObjects(_PackingGoogleObjects):
    """packing-seen-google-objects-{seq,group}: every split draws from all the folder's objects."""

    # Keys are "<family>-<variant>": packing-seen-google-objects-seq / -group.
    family = "packing-seen-google-objects"


@register
class PackingUnseenGoogleObjects(_PackingGoogleObjects):
    """packing-unseen-google-objects-{seq,group}: train draws seen objects, val and test unseen ones."""

    family = "packing-unseen-google-objects"
    unseen_split = True
