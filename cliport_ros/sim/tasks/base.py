"""The task interface: build a scene for a seed, say what to do, score progress, and act as the oracle.

A family (e.g. put-block-in-bowl) is one subclass in one module under ``cliport_ros/sim/tasks/``,
registered with ``@register``; its variants (e.g. seen-colors / unseen-colors) make the task keys
``<family>-<variant>``. The environment only talks to this interface.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from cliport_ros.geometry.transforms import yaw_to_quaternion
from cliport_ros.sim.scene import SEEN_COLORS, UNSEEN_COLORS, Scene
from cliport_ros.types import PickPlace, Pose

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Goal:
    """Objects that must each end at one of ``targets`` (base-frame position, yaw); ``weight`` of the score."""

    objects: tuple[int, ...]
    targets: tuple[tuple[tuple[float, float, float], float], ...]
    weight: float
    position_tolerance: float
    check_yaw: bool = False
    yaw_tolerance: float = math.radians(15.0)
    z_tolerance: float | None = None  # None: compare x, y only (as Ravens)
    instruction: str = ""


# A near miss (``Task.mistake`` for pose-checked goals): the target shifted by this many position tolerances,
# or turned by this many radians (past the goals' 15 degrees even modulo a 90-degree symmetry; a policy's
# turned places are mostly 15-20 degrees off).
NEAR_MISS_SHIFT = (1.5, 3.0)
NEAR_MISS_TURN = (math.radians(16.0), math.radians(45.0))
# How often a pose-checked mistake of a sequential task goes to another open spot of the row (a later goal's
# target at the active one's height, nothing on it) where there is one: a policy that misreads the place
# words (stack-block-pyramid: "on the red and green blocks") makes this mistake more than any other.
OTHER_SPOT_SHARE = 0.5


def wrap_angle(a: float, period: float = 2 * math.pi) -> float:
    """``a`` mapped into [-period/2, period/2)."""
    return (a + period / 2) % period - period / 2


class Task(ABC):
    """One task family; ``variant`` selects the split of colors/objects."""

    family: str = ""
    variants: tuple[str, ...] = ()
    #: The primitive that executes this family's decisions ("pick_place" or "push", cliport_ros.types).
    primitive: str = "pick_place"
    #: Carry a picked object this low (m) instead of lifting it clear (PrimitiveConfig.carry_height); None:
    #: the primitive's own setting.
    carry_height: float | None = None

    def __init__(self, variant: str) -> None:
        if variant not in self.variants:
            raise ValueError(f"{self.family}: unknown variant {variant!r}; choose from {self.variants}")
        self.variant = variant
        self.goals: list[Goal] = []
        self.max_steps = 1
        self.sequential = False

    @property
    def key(self) -> str:
        return f"{self.family}-{self.variant}"

    # --- what a family defines ---------------------------------------------------------------------------
    @abstractmethod
    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        """Add the objects, set ``self.goals`` and ``self.max_steps``."""

    # --- shared behaviour -----------------------------------------------------------------------------------
    def colors(self, split: str) -> tuple[str, ...]:
        """Color set of a split: seen colors always, unless the variant is unseen-colors on val/test."""
        if self.variant.endswith("unseen-colors") and split != "train":
            return UNSEEN_COLORS
        return SEEN_COLORS

    def reset(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
        self.goals = []
        self.build(scene, rng, split)
        self._done_goals = 0
        self._matched = [0.0] * len(self.goals)

    def active_goals(self) -> list[Goal]:
        """Goals currently asked for: the next one for sequential tasks, all of them otherwise."""
        if self.sequential:
            return self.goals[self._done_goals : self._done_goals + 1]
        return self.goals

    @property
    def instruction(self) -> str:
        active = self.active_goals()
        if active:
            return active[0].instruction
        return self.goals[-1].instruction if self.goals else ""

    def _matches(self, scene: Scene, goal: Goal) -> list[tuple[int, int]]:
        """Greedy one-to-one assignment of goal objects to targets they satisfy."""
        used: set[int] = set()
        pairs = []
        for obj in goal.objects:
            pos, yaw = scene.pose(obj)
            symmetry = scene.objects[obj].symmetry
            for t, (tpos, tyaw) in enumerate(goal.targets):
                if t in used:
                    continue
                if math.hypot(pos[0] - tpos[0], pos[1] - tpos[1]) > goal.position_tolerance:
                    continue
                if goal.z_tolerance is not None and abs(pos[2] - tpos[2]) > goal.z_tolerance:
                    continue
                if goal.check_yaw and symmetry > 0:
                    if abs(wrap_angle(yaw - tyaw, symmetry)) > goal.yaw_tolerance:
                        continue
                used.add(t)
                pairs.append((obj, t))
                break
        return pairs

    def progress(self, scene: Scene) -> float:
        """Score in [0, 1] (partial credit). Sequential tasks lock in each goal once met, in order."""
        if self.sequential:
            while self._done_goals < len(self.goals):
                goal = self.goals[self._done_goals]
                if len(self._matches(scene, goal)) < len(goal.objects):
                    break
                self._done_goals += 1
            return min(1.0, round(sum(g.weight for g in self.goals[: self._done_goals]), 9))
        total = 0.0
        for goal in self.goals:
            total += goal.weight * len(self._matches(scene, goal)) / max(len(goal.objects), 1)
        return min(1.0, round(total, 9))

    def places_left(self, scene: Scene) -> int:
        """How many places the goal-driven oracle has left to make: one per goal object not where it must be,
        in the goals still to meet (for sequential tasks, the active goal and those after it)."""
        goals = self.goals[self._done_goals :] if self.sequential else self.goals
        return sum(len(goal.objects) - len(self._matches(scene, goal)) for goal in goals)

    def pending_objects(self, scene: Scene) -> set[int]:
        """Objects of the active goals that are not yet where they must be."""
        pending: set[int] = set()
        for goal in self.active_goals():
            placed = {obj for obj, _ in self._matches(scene, goal)}
            pending.update(obj for obj in goal.objects if obj not in placed)
        return pending

    # --- the oracle -----------------------------------------------------------------------------------------
    def oracle(self, scene: Scene, rng: np.random.Generator) -> PickPlace:
        """Privileged expert: move the unmatched object farthest from a free target onto it."""
        obj, tpos, tyaw = self._oracle_choice(scene)
        return self._oracle_action(scene, rng, obj, tpos, tyaw)

    @property
    def supports_mistakes(self) -> bool:
        """Whether :meth:`mistake` applies: the family uses the goal-driven oracle above."""
        return type(self).oracle is Task.oracle

    def mistake(self, scene: Scene, rng: np.random.Generator) -> PickPlace:
        """The oracle's pick, placed wrong: near its target for goals that check the pose (see
        ``_near_miss``), else onto another object that is no target (a bowl of another color), or onto free
        table when there is none. Recovery demos execute it unrecorded, then show the oracle
        putting things right, so the policy sees the states its own mistakes lead to (as DAgger does)."""
        if not self.supports_mistakes:
            raise NotImplementedError(f"{self.key}: its oracle is its own, so it has no mistake() to go with it")
        obj, tpos, tyaw = self._oracle_choice(scene)
        tolerance = max((goal.position_tolerance for goal in self.active_goals()), default=0.0)
        if any(goal.check_yaw for goal in self.active_goals()):
            return self._near_miss(scene, rng, obj, tpos, tyaw, tolerance)
        targets = [t for goal in self.active_goals() for t, _ in goal.targets]
        wrong = []
        for body in sorted(scene.objects):
            if body == obj or scene.is_pickable(body):
                continue
            pos, _ = scene.pose(body)
            if all(math.hypot(pos[0] - t[0], pos[1] - t[1]) > tolerance for t in targets):
                wrong.append((float(pos[0]), float(pos[1])))
        if wrong:
            xy = wrong[int(rng.integers(len(wrong)))]
        else:
            free = scene.sample_free_xy(rng, max(scene.objects[obj].size[:2]) / 2)
            if free is None:
                raise RuntimeError(f"{self.key}: no wrong place for a mistake (no other object, no free table)")
            xy = free
        return self._oracle_action(scene, rng, obj, (xy[0], xy[1], tpos[2]), float(rng.uniform(0, 2 * math.pi)))

    def _near_miss(
        self,
        scene: Scene,
        rng: np.random.Generator,
        obj: int,
        tpos: tuple[float, float, float],
        tyaw: float,
        tolerance: float,
    ) -> PickPlace:
        """For pose-checked goals, a mistake as a policy makes one: in a sequential task, half the time the
        block put on another open spot of its row where there is one (``OTHER_SPOT_SHARE``); else the target
        shifted by 1.5-3 tolerances, or (objects that look different turned) turned by 16-45 degrees, beyond the
        15 degrees the goals allow."""
        spots = self._open_spots(scene, obj, tpos)
        if spots and rng.random() < OTHER_SPOT_SHARE:
            spos, syaw = spots[int(rng.integers(len(spots)))]
            return self._oracle_action(scene, rng, obj, spos, syaw)
        if scene.objects[obj].symmetry > 0 and rng.random() < 0.5:
            turn = float(rng.uniform(NEAR_MISS_TURN[0], NEAR_MISS_TURN[1])) * (1.0 if rng.random() < 0.5 else -1.0)
            return self._oracle_action(scene, rng, obj, tpos, tyaw + turn)
        heading = float(rng.uniform(0, 2 * math.pi))
        dist = float(rng.uniform(NEAR_MISS_SHIFT[0], NEAR_MISS_SHIFT[1])) * tolerance
        shifted = (tpos[0] + dist * math.cos(heading), tpos[1] + dist * math.sin(heading), tpos[2])
        return self._oracle_action(scene, rng, obj, shifted, tyaw)

    def _open_spots(
        self, scene: Scene, obj: int, tpos: tuple[float, float, float]
    ) -> list[tuple[tuple[float, float, float], float]]:
        """Targets of a sequential task's later goals at the height of ``tpos`` with no object on them (``obj``
        aside): where a block meant for ``tpos`` can stand, on the wrong spot."""
        if not self.sequential:
            return []
        others = [(scene.pose(body)[0], info.size) for body, info in scene.objects.items() if body != obj]

        def occupied(spot: tuple[float, float, float]) -> bool:
            return any(
                math.hypot(pos[0] - spot[0], pos[1] - spot[1]) < max(size[:2]) / 2
                and abs(pos[2] - spot[2]) < size[2] / 2
                for pos, size in others
            )

        return [
            (spos, syaw)
            for goal in self.goals[self._done_goals + 1 :]
            for spos, syaw in goal.targets
            if abs(spos[2] - tpos[2]) <= 1e-3 and not occupied(spos)
        ]

    def _oracle_choice(self, scene: Scene) -> tuple[int, tuple[float, float, float], float]:
        """The object the oracle moves next and its target (position, yaw)."""
        choices = []
        for goal in self.active_goals():
            matched = self._matches(scene, goal)
            done_objs = {o for o, _ in matched}
            free_targets = [t for t in range(len(goal.targets)) if t not in {t for _, t in matched}]
            for obj in goal.objects:
                if obj in done_objs or not free_targets:
                    continue
                pos, _ = scene.pose(obj)
                dists = [
                    math.hypot(pos[0] - goal.targets[t][0][0], pos[1] - goal.targets[t][0][1]) for t in free_targets
                ]
                best = int(np.argmin(dists))
                choices.append((dists[best], obj, goal.targets[free_targets[best]]))
        if not choices:
            raise RuntimeError(f"{self.key}: the oracle has nothing left to do (all goals met)")
        choices.sort(key=lambda c: (-c[0], c[1]))
        _, obj, (tpos, tyaw) = choices[0]
        return obj, tpos, tyaw

    def _oracle_action(
        self, scene: Scene, rng: np.random.Generator, obj: int, tpos: tuple[float, float, float], tyaw: float
    ) -> PickPlace:
        """Pick a uniform point on the object's top face; place it so the object lands on the target."""
        info = scene.objects[obj]
        pos, yaw = scene.pose(obj)
        half_x, half_y, half_z = (s / 2 for s in info.size)
        # Keep the cup fully on the face: stay a cup radius inside the edges (blocks are 4 cm).
        inset = 0.4
        local = np.array([rng.uniform(-inset, inset) * half_x, rng.uniform(-inset, inset) * half_y])
        c, s = math.cos(yaw), math.sin(yaw)
        offset = np.array([c * local[0] - s * local[1], s * local[0] + c * local[1]])
        pick_xyz = (pos[0] + offset[0], pos[1] + offset[1], pos[2] + half_z)
        if info.symmetry > 0:
            delta = wrap_angle(tyaw - yaw, info.symmetry)
        else:
            delta = 0.0
        cd, sd = math.cos(delta), math.sin(delta)
        moved = np.array([cd * offset[0] - sd * offset[1], sd * offset[0] + cd * offset[1]])
        place_xyz = (tpos[0] + moved[0], tpos[1] + moved[1], tpos[2] + half_z)
        return PickPlace(
            pick=Pose(pick_xyz, (0.0, 0.0, 0.0, 1.0)),
            place=Pose(place_xyz, yaw_to_quaternion(delta)),
            instruction=self.instruction,
        )
