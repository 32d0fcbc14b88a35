"""Zone goals (the paper's packing metric): credit is the fraction of each object's footprint inside a zone.

Not a family: ``ZoneTask`` is the base of the packing families. Each goal object has its own slot in the
goal's targets (``goal.targets[k]`` belongs to ``goal.objects[k]``: sizes differ, so slots are not shared);
the slots are where the oracle puts the objects, the score only asks that they are inside the zone.

Sequential zone tasks (``self.sequential``) score as Ravens does: the goals in order, each locked in once all
its objects are fully inside its zone, the current one adding partial credit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cliport_ros.sim.scene import Scene
from cliport_ros.sim.tasks.base import Task
from cliport_ros.types import PickPlace

FOOTPRINT_GRID = 5  # points per side sampled on a box footprint


@dataclass(frozen=True)
class Zone:
    """A rectangle on the table: centre (x, y), yaw, and half extents."""

    centre: tuple[float, float]
    yaw: float
    half: tuple[float, float]

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """Which of the (N, 2) base-frame points lie inside (edges included)."""
        d = np.asarray(xy, dtype=np.float64) - np.asarray(self.centre)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        local_x = c * d[:, 0] + s * d[:, 1]
        local_y = -s * d[:, 0] + c * d[:, 1]
        return (np.abs(local_x) <= self.half[0] + 1e-9) & (np.abs(local_y) <= self.half[1] + 1e-9)


def footprint_points(scene: Scene, obj: int) -> np.ndarray:
    """Base-frame (N, 2) points covering the object's footprint: its ``extras['footprint']`` (local x, y
    points) when it has one, else a grid over its bounding box."""
    info = scene.objects[obj]
    local = info.extras.get("footprint")
    if local is None:
        hx, hy = info.size[0] / 2, info.size[1] / 2
        gx, gy = np.meshgrid(np.linspace(-hx, hx, FOOTPRINT_GRID), np.linspace(-hy, hy, FOOTPRINT_GRID))
        local = np.stack([gx.ravel(), gy.ravel()], axis=1)
    local = np.asarray(local, dtype=np.float64)
    pos, yaw = scene.pose(obj)
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[c, -s], [s, c]])
    return local @ rot.T + pos[:2]


class ZoneTask(Task):
    """A task whose goals are zones: ``self.zones[i]`` is the zone of ``self.goals[i]``."""

    def reset(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        self.zones: list[Zone] = []
        super().reset(scene, rng, split)
        if len(self.zones) != len(self.goals):
            raise RuntimeError(f"{self.key}: build() must give one zone per goal")

    def fraction_inside(self, scene: Scene, obj: int, zone: Zone) -> float:
        """Share of the object's footprint points inside the zone."""
        return float(zone.contains(footprint_points(scene, obj)).mean())

    def _goal_fraction(self, scene: Scene, index: int) -> float:
        """Mean share of goal ``index``'s objects' footprints inside its zone."""
        goal, zone = self.goals[index], self.zones[index]
        fractions = [self.fraction_inside(scene, o, zone) for o in goal.objects]
        return sum(fractions) / max(len(fractions), 1)

    def _active_indices(self) -> list[int]:
        if self.sequential:
            return list(range(self._done_goals, min(self._done_goals + 1, len(self.goals))))
        return list(range(len(self.goals)))

    def active_goals(self) -> list:
        return [self.goals[i] for i in self._active_indices()]

    def progress(self, scene: Scene) -> float:
        if self.sequential:
            while self._done_goals < len(self.goals) and self._goal_fraction(scene, self._done_goals) >= 1.0:
                self._done_goals += 1
            total = sum(g.weight for g in self.goals[: self._done_goals])
            if self._done_goals < len(self.goals):
                total += self.goals[self._done_goals].weight * self._goal_fraction(scene, self._done_goals)
            return min(1.0, round(total, 9))
        total = 0.0
        for index, goal in enumerate(self.goals):
            total += goal.weight * self._goal_fraction(scene, index)
        return min(1.0, round(total, 9))

    def pending_objects(self, scene: Scene) -> set[int]:
        """Objects of the active goals not yet fully inside their zone."""
        return {
            obj
            for i in self._active_indices()
            for obj in self.goals[i].objects
            if self.fraction_inside(scene, obj, self.zones[i]) < 1.0
        }

    def oracle(self, scene: Scene, rng: np.random.Generator) -> PickPlace:
        """Move the object least inside its zone (ties: farthest from its slot) into its slot."""
        choices = []
        for i in self._active_indices():
            goal, zone = self.goals[i], self.zones[i]
            for obj, (tpos, tyaw) in zip(goal.objects, goal.targets):
                inside = self.fraction_inside(scene, obj, zone)
                if inside >= 1.0:
                    continue
                pos, _ = scene.pose(obj)
                dist = math.hypot(pos[0] - tpos[0], pos[1] - tpos[1])
                choices.append((inside, -dist, obj, tpos, tyaw))
        if not choices:
            raise RuntimeError(f"{self.key}: the oracle has nothing left to do (all goals met)")
        choices.sort(key=lambda c: (c[0], c[1], c[2]))
        _, _, obj, tpos, tyaw = choices[0]
        return self._oracle_action(scene, rng, obj, tpos, tyaw)
