"""Robots in the simulator: the UR5 + suction authored here (default) and pybullet_data's Franka Panda.

Both expose the same small interface: joint-space motion by position control stepped in the physics
(``movej``), Cartesian targets by IK (``movep``, with a forward-kinematics check so that an unreachable
target is a reported failure, not a silent miss), and a suction gripper emulated Ravens-style
(``Suction``): attach on contact only, and only bodies the scene marks pickable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from cliport_ros.geometry.transforms import quaternion_multiply, yaw_to_quaternion
from cliport_ros.sim.assets import ur5_suction_urdf_path

ROBOTS = ("ur5", "panda")
# A held body has landed when a contact normal (on the other body, towards it) points this much upwards.
SUPPORT_NORMAL_Z = 0.7
# The tool pointing straight down (its z axis along -z of the base): a rotation of pi about x.
TOOL_DOWN = (1.0, 0.0, 0.0, 0.0)


# Turns (rad) of the unwound last arm joint that the IK starts from when the current joints do not reach a
# pose within MotionLimits' tolerances (see Robot._ik_starts).
IK_LAST_JOINT_TURNS = (0.0, math.pi, math.pi / 2, -math.pi / 2)


def tool_orientation(yaw: float) -> tuple[float, float, float, float]:
    """Tool pointing down, turned by ``yaw`` about the base z axis."""
    return quaternion_multiply(yaw_to_quaternion(yaw), TOOL_DOWN)


@dataclass(frozen=True)
class MotionLimits:
    """How joint motion is stepped: speed per physics step, tolerance, and a step budget."""

    max_velocity: float = 3.0  # rad/s per joint (position-control velocity cap)
    tolerance: float = 1e-3  # rad: a move is done when every joint is this close
    timeout_steps: int = 2400  # physics steps (10 s at 240 Hz) before a move reports a timeout
    force: float = 500.0  # N m: motor force cap, enough to hold the arm and a block
    ik_position_tolerance: float = 0.005  # m: larger IK errors mean the target is unreachable
    ik_orientation_tolerance: float = 0.05  # rad


class Robot:
    """A position-controlled arm with a tool tip link; subclasses say which URDF and which links."""

    name = "robot"

    def __init__(self, client, limits: MotionLimits = MotionLimits()) -> None:
        self.client = client
        self.limits = limits
        self.body = self._load()
        self.joint_indices: list[int] = []
        self.joint_names: list[str] = []
        lower, upper = [], []
        link_names = {}
        for j in range(client.getNumJoints(self.body)):
            info = client.getJointInfo(self.body, j)
            link_names[info[12].decode()] = j
            if info[2] == client.JOINT_REVOLUTE and info[1].decode() in self.arm_joint_names():
                self.joint_indices.append(j)
                self.joint_names.append(info[1].decode())
                lower.append(info[8])
                upper.append(info[9])
        self.link_index = link_names
        self.lower = np.array(lower)
        self.upper = np.array(upper)
        self.tip_link = link_names[self.tip_link_name()]
        self.contact_links = {link_names[n] for n in self.contact_link_names()}
        self.attach_link = link_names[self.attach_link_name()]
        # IK only moves the arm joints; other movable joints (fingers) must be listed for PyBullet's IK.
        self._movable = [
            j
            for j in range(client.getNumJoints(self.body))
            if client.getJointInfo(self.body, j)[2] != client.JOINT_FIXED
        ]
        self._arm_in_movable = [self._movable.index(j) for j in self.joint_indices]
        # Null-space IK needs every movable joint's limits (a zero range for the fingers hangs PyBullet's IK).
        infos = [client.getJointInfo(self.body, j) for j in self._movable]
        self._ik_lower = [float(i[8]) for i in infos]
        self._ik_upper = [float(i[9]) if i[9] > i[8] else float(i[8]) + 1e-3 for i in infos]
        self._ik_ranges = [u - lo for lo, u in zip(self._ik_lower, self._ik_upper)]
        self.home = np.array(self.home_joints(), dtype=np.float64)
        self.reset(self.home)

    # --- what a subclass defines -------------------------------------------------------------------------
    def _load(self) -> int:
        raise NotImplementedError

    def arm_joint_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def tip_link_name(self) -> str:
        raise NotImplementedError

    def contact_link_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def attach_link_name(self) -> str:
        raise NotImplementedError

    def home_joints(self) -> tuple[float, ...]:
        raise NotImplementedError

    # --- state ---------------------------------------------------------------------------------------------
    def reset(self, joints: Iterable[float]) -> None:
        """Teleport the arm (no physics) and hold it there."""
        for j, q in zip(self.joint_indices, joints):
            self.client.resetJointState(self.body, j, float(q))
        self._command(np.asarray(list(joints), dtype=np.float64))

    def joints(self) -> np.ndarray:
        return np.array([s[0] for s in self.client.getJointStates(self.body, self.joint_indices)])

    def all_joint_state(self) -> tuple[list[str], list[float]]:
        """Names and positions of every movable joint (arm and fingers), for joint_states."""
        names, values = [], []
        for j in self._movable:
            names.append(self.client.getJointInfo(self.body, j)[1].decode())
            values.append(float(self.client.getJointState(self.body, j)[0]))
        return names, values

    def tip_pose(self) -> tuple[np.ndarray, np.ndarray]:
        state = self.client.getLinkState(self.body, self.tip_link, computeForwardKinematics=True)
        return np.array(state[4]), np.array(state[5])

    # --- motion --------------------------------------------------------------------------------------------
    def _command(self, target: np.ndarray) -> None:
        for j, q in zip(self.joint_indices, target):
            self.client.setJointMotorControl2(
                self.body,
                j,
                self.client.POSITION_CONTROL,
                targetPosition=float(q),
                force=self.limits.force,
                maxVelocity=self.limits.max_velocity,
                positionGain=0.3,
            )

    def movej(self, target: np.ndarray, until: Callable[[], bool] | None = None) -> bool:
        """Drive the arm to joint ``target`` through the physics; True when there (or when ``until()`` turns
        true, e.g. on contact), False on timeout."""
        target = np.asarray(target, dtype=np.float64)
        self._command(target)
        for _ in range(self.limits.timeout_steps):
            if np.all(np.abs(self.joints() - target) < self.limits.tolerance):
                return True
            self.client.stepSimulation()
            if until is not None and until():
                self._command(self.joints())  # stop where the condition was met
                return True
        # Held there by a load (e.g. a carried block) just outside the tolerance: close enough.
        return bool(np.all(np.abs(self.joints() - target) < 10 * self.limits.tolerance))

    def solve_ik(self, position, orientation) -> tuple[np.ndarray | None, str]:
        """Joint angles reaching the tool-tip pose, or (None, reason) when the IK error is too large."""
        saved = [self.client.getJointState(self.body, j)[:2] for j in self._movable]
        current = self.joints()
        best = None
        try:
            for n, start in enumerate(self._ik_starts(current)):
                if n:  # the first start is the arm as it is (resetting it, velocities and all, changes the IK)
                    for j, q in zip(self.joint_indices, np.clip(start, self.lower, self.upper)):
                        self.client.resetJointState(self.body, j, float(q))
                found = self._refine_ik(position, orientation)
                if best is None or found[1] < best[1]:
                    best = found
                if self._within_ik_tolerance(found[1], found[2]):
                    break
        finally:
            for j, (q, dq) in zip(self._movable, saved):
                self.client.resetJointState(self.body, j, q, dq)
        solution, pos_err, orn_err = best
        if not self._within_ik_tolerance(pos_err, orn_err):
            return None, (
                f"unreachable: IK error {pos_err * 1000:.1f} mm / {math.degrees(orn_err):.1f} deg at "
                f"({position[0]:.3f}, {position[1]:.3f}, {position[2]:.3f})"
            )
        # Wrap each joint to the equivalent angle nearest the current one (the UR5 allows +-2 pi).
        wrapped = current + (solution - current + math.pi) % (2 * math.pi) - math.pi
        inside = (wrapped >= self.lower) & (wrapped <= self.upper)
        return np.where(inside, wrapped, solution), ""

    def _within_ik_tolerance(self, pos_err: float, orn_err: float) -> bool:
        return pos_err <= self.limits.ik_position_tolerance and orn_err <= self.limits.ik_orientation_tolerance

    def _ik_starts(self, current: np.ndarray):
        """Joints to start the IK from, in order. pybullet's damped least squares with joint limits, started
        from the current joints, can stall a few mm short of a tool yaw about half a turn away, or when the
        last joint (which turns the tool about its axis) has wound past a turn: then it starts again from that
        joint unwound, turned a half or quarter turn, and last from the home pose."""
        yield current
        unwound = current.copy()
        unwound[-1] = (unwound[-1] + math.pi) % (2 * math.pi) - math.pi
        for offset in IK_LAST_JOINT_TURNS:
            start = unwound.copy()
            start[-1] += offset
            yield start
        yield np.asarray(self.home, dtype=np.float64)

    def _refine_ik(self, position, orientation) -> tuple[np.ndarray, float, float]:
        """Up to four IK rounds from the joints as they are set; (solution, position error m, angle error rad)."""
        for _ in range(4):
            full = self.client.calculateInverseKinematics(
                self.body,
                self.tip_link,
                list(position),
                list(orientation),
                lowerLimits=self._ik_lower,
                upperLimits=self._ik_upper,
                jointRanges=self._ik_ranges,
                restPoses=self._full(self.home),
                maxNumIterations=100,
                residualThreshold=1e-6,
            )
            solution = np.clip(np.array(full)[self._arm_in_movable], self.lower, self.upper)
            for j, q in zip(self.joint_indices, solution):
                self.client.resetJointState(self.body, j, float(q))
            pos, orn = self.tip_pose()
            pos_err = float(np.linalg.norm(pos - np.asarray(position)))
            dot = abs(float(np.dot(orn, np.asarray(orientation) / np.linalg.norm(orientation))))
            orn_err = 2.0 * math.acos(min(1.0, dot))
            if pos_err < 5e-4 and orn_err < 5e-3:
                break
        return solution, pos_err, orn_err

    def _full(self, arm_values: np.ndarray) -> list[float]:
        """Arm values spread over all movable joints (others at their lower limit, e.g. closed fingers)."""
        values = list(self._ik_lower)
        for k, v in zip(self._arm_in_movable, arm_values):
            values[k] = float(v)
        return values

    def movep(self, position, orientation, until: Callable[[], bool] | None = None) -> tuple[bool, str]:
        """Move the tool tip to a pose (joint-space interpolation); (ok, reason)."""
        target, reason = self.solve_ik(position, orientation)
        if target is None:
            return False, reason
        if not self.movej(target, until):
            return False, "timeout: the arm did not reach its joint target"
        return True, ""


class UR5(Robot):
    """The UR5 + suction tool authored in this package (``assets.ur5_suction_urdf``)."""

    name = "ur5"

    def _load(self) -> int:
        return self.client.loadURDF(str(ur5_suction_urdf_path()), [0, 0, 0], useFixedBase=True)

    def arm_joint_names(self):
        from cliport_ros.sim.assets import UR5_JOINT_NAMES

        return UR5_JOINT_NAMES

    def tip_link_name(self) -> str:
        return "tool_tip"

    def contact_link_names(self):
        return ("suction_cup",)

    def attach_link_name(self) -> str:
        return "suction_cup"

    def home_joints(self):
        # Shoulder up, elbow bent, tool pointing down above the workspace (DH angles).
        return (math.pi, -0.5 * math.pi, 0.5 * math.pi, -0.5 * math.pi, -0.5 * math.pi, 0.0)


class Panda(Robot):
    """pybullet_data's Franka Panda (loaded from the pybullet package at run time); closed fingers = cup."""

    name = "panda"

    def _load(self) -> int:
        import pybullet_data

        path = f"{pybullet_data.getDataPath()}/franka_panda/panda.urdf"
        body = self.client.loadURDF(path, [0, 0, 0], useFixedBase=True)
        for j in range(self.client.getNumJoints(body)):
            if self.client.getJointInfo(body, j)[2] == self.client.JOINT_PRISMATIC:
                self.client.resetJointState(body, j, 0.0)
                self.client.setJointMotorControl2(
                    body, j, self.client.POSITION_CONTROL, targetPosition=0.0, force=200.0
                )
        return body

    def arm_joint_names(self):
        return tuple(f"panda_joint{i}" for i in range(1, 8))

    def tip_link_name(self) -> str:
        return "panda_grasptarget"

    def contact_link_names(self):
        return ("panda_leftfinger", "panda_rightfinger")

    def attach_link_name(self) -> str:
        return "panda_hand"

    def home_joints(self):
        return (0.0, -0.4, 0.0, -2.3, 0.0, 1.9, 0.785)


def make_robot(name: str, client, limits: MotionLimits = MotionLimits()) -> Robot:
    if name == "ur5":
        return UR5(client, limits)
    if name == "panda":
        return Panda(client, limits)
    raise ValueError(f"unknown robot {name!r}; choose from {ROBOTS}")


class Suction:
    """Ravens-style suction: weld a touched pickable body to the tool at its current relative pose."""

    def __init__(self, robot: Robot, is_pickable: Callable[[int], bool]) -> None:
        self.robot = robot
        self.client = robot.client
        self.is_pickable = is_pickable
        self.constraint: int | None = None
        self.held: int | None = None
        self._released: set[int] = set()  # bodies that still ignore the robot after a release

    def touching(self) -> list[int]:
        """Bodies (other than the robot) in contact with the cup links."""
        found = []
        for link in self.robot.contact_links:
            for c in self.client.getContactPoints(bodyA=self.robot.body, linkIndexA=link):
                if c[2] != self.robot.body and c[2] not in found:
                    found.append(c[2])
        return found

    def detect_contact(self) -> bool:
        """Cup touching something; while holding, the held body resting on something (not the robot).

        A held body counts as landed only on a contact that pushes it up (normal z > ``SUPPORT_NORMAL_Z``):
        brushing a neighbour's side while coming down between two blocks is not a place to let go.
        """
        if self.held is None:
            return bool(self.touching())
        return any(
            c[2] != self.robot.body and c[7][2] > SUPPORT_NORMAL_Z
            for c in self.client.getContactPoints(bodyA=self.held)
        )

    def activate(self) -> int | None:
        """Attach the touched pickable body nearest the cup's axis (a cup over a bead of a rope touches its
        neighbours too); its id, or None when nothing pickable is touched."""
        if self.held is not None:
            return self.held
        link_state = self.client.getLinkState(self.robot.body, self.robot.attach_link)
        link_pos, link_orn = link_state[4], link_state[5]

        def off_axis(body: int) -> float:
            pos = self.client.getBasePositionAndOrientation(body)[0]
            return math.hypot(pos[0] - link_pos[0], pos[1] - link_pos[1])

        candidates = sorted((b for b in self.touching() if self.is_pickable(b)), key=off_axis)
        if not candidates:
            return None
        body = candidates[0]
        obj_pos, obj_orn = self.client.getBasePositionAndOrientation(body)
        inv_pos, inv_orn = self.client.invertTransform(link_pos, link_orn)
        rel_pos, rel_orn = self.client.multiplyTransforms(inv_pos, inv_orn, obj_pos, obj_orn)
        self.constraint = self.client.createConstraint(
            self.robot.body,
            self.robot.attach_link,
            body,
            -1,
            self.client.JOINT_FIXED,
            (0, 0, 0),
            rel_pos,
            (0, 0, 0),
            rel_orn,
            (0, 0, 0, 1),
        )
        self.client.changeConstraint(self.constraint, maxForce=200.0)
        # The welded body must not also push on the tool (contact and constraint would fight).
        for link in range(-1, self.client.getNumJoints(self.robot.body)):
            self.client.setCollisionFilterPair(self.robot.body, body, link, -1, 0)
        self.held = body
        return body

    def release(self) -> None:
        """Detach. The body keeps ignoring the tool until ``restore_collisions`` (after the tool moved away):
        re-enabling contact while the cup still presses on it would kick it sideways."""
        if self.constraint is not None:
            self.client.removeConstraint(self.constraint)
        if self.held is not None:
            self._released.add(self.held)
        self.constraint = None
        self.held = None

    def restore_collisions(self, clearance: float = 0.005) -> None:
        """Let released bodies collide with the robot again, once they are ``clearance`` away from it."""
        for body in list(self._released):
            if self.client.getClosestPoints(self.robot.body, body, clearance):
                continue
            for link in range(-1, self.client.getNumJoints(self.robot.body)):
                self.client.setCollisionFilterPair(self.robot.body, body, link, -1, 1)
            self._released.discard(body)
