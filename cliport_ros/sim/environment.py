"""SimEnvironment: a seeded task scene with a robot, three cameras and the pick-and-place primitive."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.perception.camera import CameraRig, load_camera_rig
from cliport_ros.perception.fusion import TopDownView, fuse_views
from cliport_ros.sim.primitives import PrimitiveConfig, PrimitiveResult, pick_place, push
from cliport_ros.sim.rendering import RENDERERS, CameraImage, load_egl, render_camera
from cliport_ros.sim.robots import ROBOTS, MotionLimits, Suction, make_robot
from cliport_ros.sim.scene import Scene
from cliport_ros.sim.seeds import check_seed
from cliport_ros.sim.tasks import SPLITS, make_task
from cliport_ros.sim.tasks.blocks import SceneFullError
from cliport_ros.types import PickPlace

# Streams drawn from one episode seed: the scene layout and the oracle's pick points stay independent.
_SCENE_STREAM, _ORACLE_STREAM = 0, 1


@dataclass(frozen=True)
class Observation:
    instruction: str
    view: TopDownView
    images: tuple[CameraImage, ...]
    step: int


@dataclass(frozen=True)
class StepResult:
    observation: Observation
    reward: float  # score gained by this step, as a fraction of the full score (0-1)
    score: float  # episode score so far, 0-100
    done: bool
    success: bool  # the primitive's success
    message: str  # the primitive's failure reason ("" on success)


class SimEnvironment:
    """One PyBullet world (DIRECT, headless) running one task."""

    def __init__(
        self,
        task: str,
        robot: str = "ur5",
        renderer: str = "auto",
        rig: CameraRig | None = None,
        workspace: Workspace | None = None,
        primitive: PrimitiveConfig | None = None,
    ) -> None:
        import pybullet
        from pybullet_utils import bullet_client

        if robot not in ROBOTS:
            raise ValueError(f"unknown robot {robot!r}; choose from {ROBOTS}")
        if renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {renderer!r}; choose from {RENDERERS}")
        self.task = make_task(task)
        self.task_key = self.task.key
        self.robot_name = robot
        self.workspace = workspace or Workspace()
        self.rig = rig or load_camera_rig()
        self.primitive = primitive or PrimitiveConfig()
        self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self.use_egl = False
        if renderer in ("auto", "egl"):
            self.use_egl = load_egl(self.client) is not None
            if renderer == "egl" and not self.use_egl:
                self.client.disconnect()
                raise RuntimeError(
                    "renderer='egl' requested but the EGL renderer plugin did not load; use renderer='tiny' or 'auto'"
                )
        self.renderer = "egl" if self.use_egl else "tiny"
        self.scene: Scene | None = None
        self.robot = None
        self.suction: Suction | None = None
        self.seed: int | None = None
        self.split = "train"
        self.step_count = 0
        self.score = 0.0
        self.done = False
        self._oracle_rng = np.random.default_rng(0)

    # --- episode -----------------------------------------------------------------------------------------
    def reset(self, seed: int, split: str = "train") -> Observation:
        """A fresh scene for (task, split, seed); identical for identical arguments."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
        seed = check_seed(seed)
        scene_rng = np.random.default_rng([seed, _SCENE_STREAM])
        for _ in range(20):
            self._build_world()
            try:
                self.task.reset(self.scene, scene_rng, split)
                break
            except SceneFullError:
                continue  # the stream moves on: still a function of the seed
        else:
            raise RuntimeError(f"{self.task_key}: could not lay out a scene for seed {seed}")
        self.scene.settle()
        self.seed, self.split = seed, split
        self._oracle_rng = np.random.default_rng([seed, _ORACLE_STREAM])
        self.step_count = 0
        self.score = 100.0 * self.task.progress(self.scene)
        self.done = False
        return self.observe()

    def _build_world(self) -> None:
        c = self.client
        c.resetSimulation()
        c.setGravity(0, 0, -9.8)
        c.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        self.scene = Scene(c, self.workspace)
        self.robot = make_robot(self.robot_name, c, MotionLimits())
        self.suction = Suction(self.robot, self.scene.is_pickable)
        target, _ = self.robot.solve_ik(*self._home_pose())
        if target is not None:
            self.robot.reset(target)

    def _require_reset(self) -> None:
        if self.scene is None:
            raise RuntimeError("call reset(seed, split) before using the environment")

    @property
    def max_steps(self) -> int:
        return self.task.max_steps

    @property
    def instruction(self) -> str:
        return self.task.instruction

    # --- acting ------------------------------------------------------------------------------------------
    def execute(
        self,
        action: PickPlace,
        on_stage: Callable[[str], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> PrimitiveResult:
        """Run the primitive only (no scoring, no rendering): a pick-and-place, or a push from ``pick`` to
        ``place`` when ``action.primitive`` is "push"."""
        self._require_reset()
        if action.primitive not in ("pick_place", "push"):
            return PrimitiveResult(False, f"primitive {action.primitive!r} is not available in this task", "approach")
        if action.frame_id != self.workspace.frame_id:
            return PrimitiveResult(
                False,
                f"poses are in {action.frame_id!r}; the simulator takes {self.workspace.frame_id!r}",
                "approach",
            )
        # The decider checks its own decisions, but a goal can come from anywhere: the arm never goes outside.
        for name, pose in (("pick", action.pick), ("place", action.place)):
            if not self.workspace.contains(pose.position, check_z=False):
                x, y, _ = pose.position
                ws = self.workspace
                return PrimitiveResult(
                    False,
                    f"{name} at ({x:.3f}, {y:.3f}) m is outside the workspace x [{ws.x_min}, {ws.x_max}], "
                    f"y [{ws.y_min}, {ws.y_max}]: nothing moved",
                    "approach",
                )
        run = push if action.primitive == "push" else pick_place
        config = self.primitive
        if self.task.carry_height is not None:
            config = dataclasses.replace(config, carry_height=self.task.carry_height)
        result = run(
            self.robot,
            self.suction,
            action.pick,
            action.place,
            self.workspace.z_min,
            config,
            on_stage=on_stage,
            should_cancel=should_cancel,
            settle=self.scene.settle,
        )
        # Back to the home pose so the arm does not hide the workspace from the cameras.
        ok, _ = self.robot.movep(*self._home_pose())
        if not ok:
            self.robot.movej(self.robot.home)
        self.scene.settle()
        return result

    def _home_pose(self):
        from cliport_ros.sim.robots import tool_orientation

        # Beside the workspace, on the base's side, so the arm hides as little of it as possible.
        ws = self.workspace
        return (ws.x_min, (ws.y_min + ws.y_max) / 2, ws.z_min + 0.40), tool_orientation(0.0)

    def step(
        self,
        action: PickPlace,
        on_stage: Callable[[str], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> StepResult:
        """Execute one pick-and-place, score it, and observe."""
        self._require_reset()
        if self.done:
            raise RuntimeError("the episode is done; call reset()")
        result = self.execute(action, on_stage, should_cancel)
        before = self.score
        self.score = 100.0 * self.task.progress(self.scene)
        self.step_count += 1
        self.done = self.score >= 100.0 - 1e-6 or self.step_count >= self.max_steps
        reward = (self.score - before) / 100.0
        return StepResult(self.observe(), reward, self.score, self.done, result.success, result.reason)

    def pick_target(self, x: float, y: float, margin: float = 0.01) -> str:
        """What a pick at base-frame (x, y) would land on: 'goal' (an object the task still needs moved),
        'other' (any other object), or 'nothing'. Evaluation uses it to sort failures."""
        self._require_reset()
        best, best_d = None, math.inf
        for body, obj in self.scene.objects.items():
            pos, _ = self.scene.pose(body)
            d = math.hypot(pos[0] - x, pos[1] - y)
            if d <= max(obj.size[0], obj.size[1]) / 2 + margin and d < best_d:
                best, best_d = body, d
        if best is None:
            return "nothing"
        return "goal" if best in self.task.pending_objects(self.scene) else "other"

    def oracle(self) -> PickPlace:
        """The privileged expert's next action for the current state."""
        self._require_reset()
        return self.task.oracle(self.scene, self._oracle_rng)

    def mistake(self) -> PickPlace:
        """The oracle's next pick placed wrong (see ``Task.mistake``), for recovery demos."""
        self._require_reset()
        return self.task.mistake(self.scene, self._oracle_rng)

    # --- sensing -----------------------------------------------------------------------------------------
    def render(self) -> tuple[CameraImage, ...]:
        self._require_reset()
        return tuple(render_camera(self.client, cam, self.use_egl) for cam in self.rig)

    def observe(self) -> Observation:
        images = self.render()
        view = fuse_views([(im.rgb, im.depth, im.camera) for im in images], self.workspace)
        return Observation(self.instruction, view, images, self.step_count)

    def joint_state(self) -> tuple[list[str], list[float]]:
        self._require_reset()
        return self.robot.all_joint_state()

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.disconnect()
            except Exception:  # already disconnected
                pass
            self.client = None

    def __enter__(self) -> SimEnvironment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
