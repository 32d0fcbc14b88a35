"""align-rope: lay a rope along one side of a 3-sided square, from one named corner to the other (Ravens).

The rope is a chain of small spheres (beads) joined by point-to-point constraints, built from PyBullet
primitives. Bead i must end at the i-th of ``n_beads`` points spaced evenly along the named
side (or bead i at point n-1-i: the rope has no head and tail); the score is the fraction of beads in
place in the better of the two directions (Ravens counts beads within 2 cm of their points).
"""

from __future__ import annotations

import math

import numpy as np

from cliport_ros.geometry.transforms import yaw_to_quaternion
from cliport_ros.sim.objects import Part, add_compound
from cliport_ros.sim.scene import Scene, SceneObject, rgba
from cliport_ros.sim.tasks import register
from cliport_ros.sim.tasks.base import Goal, Task
from cliport_ros.sim.tasks.blocks import SceneFullError
from cliport_ros.types import PickPlace, Pose

# In the square's own frame the open side is the front (+y) and left is -x; its ends are the tips.
CORNERS: dict[str, tuple[float, float]] = {
    "front left tip": (-0.5, 0.5),
    "front right tip": (0.5, 0.5),
    "back left corner": (-0.5, -0.5),
    "back right corner": (0.5, -0.5),
}
SIDES = (
    ("front left tip", "front right tip"),  # the open side
    ("front left tip", "back left corner"),
    ("front right tip", "back right corner"),
    ("back left corner", "back right corner"),
)


@register
class AlignRope(Task):
    """ "align the rope from {corner} to {corner}": a rope dropped in a random curve, a 3-sided square; the
    rope must lie along one side of the square (the open side or a drawn one), end to end."""

    # The key is "align-rope": the registry joins family and variant with "-".
    family = "align"
    variants = ("rope",)
    n_beads = 20
    bead_half = 0.005  # a bead's collision radius (Ravens'); drawn 1.4 times as large
    link = 2 * 0.005 * math.sqrt(2)  # between neighbouring bead centres (Ravens): the square's side / n_beads
    bead_mass = 0.05
    bead_friction = 1.2
    bead_damping = 0.5  # linear and angular
    bead_rolling = 0.001  # rolling and spinning friction (m)
    link_force = 100.0  # N: the point-to-point constraints' force cap
    tolerance = 0.02  # m, Ravens' pos_eps for the rope tasks
    line = 0.004  # width of the square's drawn lines
    edge_margin = 0.03  # the square's corners stay this far inside the workspace (within the arm's reach)
    rope_radius = 0.09  # the rope starts coiled inside a disc this wide
    carry_height = 0.012  # the bead is dragged this far above the table: the rope follows on it (Ravens)
    end_tolerance = 0.008  # the oracle drags an end bead farther than this from its point back there
    slack = 0.002  # the second end stops this much short of its point: the rope is not pulled tight
    square_color = "green"
    rope_color = "red"
    end_color = "gray"

    @property
    def side(self) -> float:
        return self.n_beads * self.link

    def build(self, scene: Scene, rng: np.random.Generator, split: str) -> None:
        self.max_steps = 20
        ws = scene.workspace
        side = self.side
        yaw = float(rng.uniform(0, 2 * math.pi))
        # The square keeps the disc of its half diagonal clear of other objects, while its corners (not that
        # disc: it hardly fits the table) stay ``edge_margin`` inside the workspace.
        half_diagonal = (side / 2 + self.line) * math.sqrt(2)
        half_width = (side / 2 + self.line) * (abs(math.cos(yaw)) + abs(math.sin(yaw)))
        margin = self.edge_margin - (half_diagonal - half_width)
        centre = scene.sample_free_xy(rng, half_diagonal, margin=margin)
        if centre is None:
            raise SceneFullError("no free table space for the square")
        self._add_outline(scene, centre, yaw, side)
        first, second = SIDES[int(rng.integers(len(SIDES)))]
        if rng.random() < 0.5:
            first, second = second, first
        c, s = math.cos(yaw), math.sin(yaw)

        def corner(name: str) -> np.ndarray:
            u, v = (side * f for f in CORNERS[name])
            return np.array([centre[0] + c * u - s * v, centre[1] + s * u + c * v])

        a, b = corner(first), corner(second)
        z = ws.z_min + self.bead_half
        targets = []
        for i in range(self.n_beads):
            xy = a + (i + 0.5) / self.n_beads * (b - a)
            targets.append(((float(xy[0]), float(xy[1]), z), 0.0))
        rope_centre = scene.sample_free_xy(rng, self.rope_radius, margin=0.02)
        if rope_centre is None:
            raise SceneFullError("no free table space for the rope")
        beads = self._add_rope(scene, self._layout(rng, np.asarray(rope_centre)))
        self.goals = [
            Goal(
                tuple(beads),
                tuple(targets),
                1.0,
                self.tolerance,
                instruction=f"align the rope from {first} to {second}",
            )
        ]

    # --- the scene ------------------------------------------------------------------------------------------
    def _add_outline(self, scene: Scene, xy: tuple[float, float], yaw: float, side: float) -> int:
        """The square's back, left and right sides drawn on the table (no collision); the front is open.
        The lines run through the corners (the targets of a drawn side lie on its line)."""
        half, w, thin = side / 2, self.line / 2, 0.0005
        parts: list[Part] = [
            ("box", dict(half_extents=(half + w, w, thin)), (0.0, -half, 0.0), 0.0),
            ("box", dict(half_extents=(w, half + w, thin)), (-half, 0.0, 0.0), 0.0),
            ("box", dict(half_extents=(w, half + w, thin)), (half, 0.0, 0.0), 0.0),
        ]
        z = scene.workspace.z_min + thin + 0.0005  # just above the table top: no z-fighting
        size = (side, side, 2 * thin)
        return add_compound(scene, "zone", self.square_color, parts, (xy[0], xy[1], z), yaw, size, collide=False)

    def _layout(self, rng: np.random.Generator, centre: np.ndarray) -> list[np.ndarray]:
        """Bead centres (x, y) of a random curve inside the rope's disc, ``link`` apart, not crossing."""
        for _ in range(100):
            a, r = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0, self.rope_radius / 2))
            points = [centre + r * np.array([math.cos(a), math.sin(a)])]
            heading = float(rng.uniform(0, 2 * math.pi))
            for _bead in range(1, self.n_beads):
                for _ in range(30):
                    h = heading + float(rng.normal(0.0, 0.6))
                    q = points[-1] + self.link * np.array([math.cos(h), math.sin(h)])
                    if np.linalg.norm(q - centre) > self.rope_radius:
                        to_centre = centre - points[-1]
                        h = math.atan2(to_centre[1], to_centre[0]) + float(rng.normal(0.0, 0.5))
                        q = points[-1] + self.link * np.array([math.cos(h), math.sin(h)])
                    if np.linalg.norm(q - centre) > self.rope_radius:
                        continue
                    if any(np.linalg.norm(q - p) < 1.2 * self.link for p in points[:-1]):
                        continue
                    heading = h
                    points.append(q)
                    break
                else:
                    break
            if len(points) == self.n_beads:
                return points
        raise SceneFullError("no rope layout found")

    def _add_rope(self, scene: Scene, points: list[np.ndarray]) -> list[int]:
        c = scene.client
        r = self.bead_half
        col = c.createCollisionShape(c.GEOM_SPHERE, radius=r)
        z = scene.workspace.z_min + r + 0.001
        beads: list[int] = []
        for i, p in enumerate(points):
            ahead = points[i + 1] - p if i + 1 < len(points) else p - points[i - 1]
            yaw = math.atan2(ahead[1], ahead[0])
            color = self.end_color if i in (0, len(points) - 1) else self.rope_color
            vis = c.createVisualShape(c.GEOM_SPHERE, radius=1.4 * r, rgbaColor=rgba(color))
            body = c.createMultiBody(
                self.bead_mass, col, vis, basePosition=[p[0], p[1], z], baseOrientation=yaw_to_quaternion(yaw)
            )
            c.changeDynamics(
                body,
                -1,
                lateralFriction=self.bead_friction,
                spinningFriction=self.bead_rolling,
                rollingFriction=self.bead_rolling,
                linearDamping=self.bead_damping,
                angularDamping=self.bead_damping,
            )
            if beads:
                # The child's centre is pinned ``link`` ahead of its parent (along the parent's x axis).
                joint = c.createConstraint(
                    beads[-1], -1, body, -1, c.JOINT_POINT2POINT, (0, 0, 0), (self.link, 0, 0), (0, 0, 0)
                )
                c.changeConstraint(joint, maxForce=self.link_force)
            size = (2 * r, 2 * r, 2 * r)
            scene.objects[body] = SceneObject(body, "bead", color, size, True, 0.0, dict(index=i))
            beads.append(body)
        return beads

    # --- scoring --------------------------------------------------------------------------------------------
    def _orientation_matches(self, scene: Scene, goal: Goal) -> list[list[tuple[int, int]]]:
        """Beads at their points, bead i at point i (first list) and bead i at point n-1-i (second)."""
        n = len(goal.objects)
        xy = [scene.pose(obj)[0][:2] for obj in goal.objects]
        found: list[list[tuple[int, int]]] = [[], []]
        for k, order in enumerate((range(n), range(n - 1, -1, -1))):
            for i, t in enumerate(order):
                tx, ty = goal.targets[t][0][:2]
                if math.hypot(xy[i][0] - tx, xy[i][1] - ty) <= goal.position_tolerance:
                    found[k].append((goal.objects[i], t))
        return found

    def _matches(self, scene: Scene, goal: Goal) -> list[tuple[int, int]]:
        forward, backward = self._orientation_matches(scene, goal)
        return forward if len(forward) >= len(backward) else backward

    # --- the oracle -----------------------------------------------------------------------------------------
    def oracle(self, scene: Scene, rng: np.random.Generator) -> PickPlace:
        """Drag the end bead farther from its point there (the rope trails after it on the table); once both
        ends are in place the rope between lies nearly straight along the side, and the bead farthest from
        its point goes there (Ravens' rule). The rope goes the way round with more beads in place (then the
        nearer way)."""
        goal = self.goals[0]
        n = len(goal.objects)
        xy = np.array([scene.pose(obj)[0][:2] for obj in goal.objects])
        points = np.array([t[0][:2] for t in goal.targets])
        matched = self._orientation_matches(scene, goal)
        if max(len(m) for m in matched) == n:
            raise RuntimeError(f"{self.key}: the oracle has nothing left to do (all goals met)")
        ways = []
        for k, at in enumerate((points, points[::-1])):  # bead i at point i, or at point n-1-i
            error = np.linalg.norm(xy - at, axis=1)
            ways.append(((len(matched[k]), -float(error.sum())), at, error))
        _, at, error = max(ways, key=lambda w: w[0])
        ends = (0, n - 1)
        bead = max(ends, key=lambda i: (error[i], -i))
        other = n - 1 - bead
        target = at[bead]
        if error[bead] <= self.end_tolerance:
            bead = int(np.argmax(error))
            target = at[bead]
        elif error[other] <= self.end_tolerance:
            # The other end is in place: stop a little short of pulling the rope tight against it.
            inward = at[other] - at[bead]
            target = at[bead] + self.slack * inward / max(float(np.linalg.norm(inward)), 1e-9)
        z = goal.targets[0][0][2]
        return self._drag(scene, goal.objects[bead], (float(target[0]), float(target[1]), z))

    def _drag(self, scene: Scene, obj: int, target: tuple[float, float, float]) -> PickPlace:
        pos, _ = scene.pose(obj)
        top = self.bead_half
        return PickPlace(
            pick=Pose((float(pos[0]), float(pos[1]), float(pos[2]) + top), (0.0, 0.0, 0.0, 1.0)),
            place=Pose((target[0], target[1], target[2] + top), (0.0, 0.0, 0.0, 1.0)),
            instruction=self.instruction,
        )
