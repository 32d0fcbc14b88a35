"""The operator console's logic, ROS-free: what the operator sees, what may move the arm, what gets recorded.

The console shows the cell's fused top-down view with the policy's proposal; the operator executes it, corrects
it (a clicked pick, a clicked place, a place rotation), or demonstrates without a policy. Every executed step is
kept with the observation it was chosen on and who chose it, and "done" / "failed" writes the episode in the
project's dataset format (``cliport_ros.data.episodes``), so ``cliport train`` reads it like simulated demos.

Safety rules enforced here, whatever the page does:

- nothing moves except through :meth:`ConsoleSession.execute`, which needs the id of the observation the
  operator looked at, and that observation must be the newest and not yet acted on (no stale or double act);
- one execution at a time; :meth:`ConsoleSession.stop` cancels it.

The cell is reached through a :class:`CellLink` (``cliport_ros.ros.console_node.RosCellLink`` on a ROS graph).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cliport_ros.agent.decider import DecisionError, validate_instruction
from cliport_ros.data.episodes import Episode, Step, list_episodes, write_episode
from cliport_ros.geometry.workspace import Workspace
from cliport_ros.types import PickPlace, Pose

#: Steps of one recorded episode at most: a forgotten "done" must not grow memory without bound.
MAX_EPISODE_STEPS = 200
#: The operator's score range (the paper's task score).
SCORE_RANGE = (0.0, 100.0)


class ConsoleError(Exception):
    """A refused console request: ``status`` is the HTTP status the server answers with, the message why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Proposal:
    """The policy's decision on an observation, with its evidence."""

    pick_place: PickPlace
    pick_pixel: tuple[int, int]
    place_pixel: tuple[int, int]
    place_rotation: float  # radians, the place yaw relative to the pick
    pick_heatmap: np.ndarray  # (rows, cols) float32
    place_heatmap: np.ndarray  # (rows, cols) float32


@dataclass(frozen=True)
class Observation:
    """The fused top-down view the cell's CLIPort node saw, and its proposal when the policy ran."""

    color: np.ndarray  # (rows, cols, 3) uint8
    height: np.ndarray  # (rows, cols) float32, metres above workspace.z_min
    workspace: Workspace
    stamp_ns: int
    instruction: str
    proposal: Proposal | None = None


@dataclass(frozen=True)
class ExecutionResult:
    """How the arm's ExecutePickPlace ended."""

    success: bool
    error_code: int
    message: str
    moved: bool  # whether the arm ran the motion (a refusal before any motion is not a step)


@dataclass(frozen=True)
class CellStatus:
    """What a simulated cell reports about its episode (a real cell reports nothing)."""

    task: str
    split: str
    seed: int
    instruction: str
    step: int
    score: float
    done: bool


class CellLink(Protocol):
    """The console's way to the cell. Every method may raise ConsoleError with the cell's reason. The session
    sets ``on_status`` to a function the link calls (on the session's event loop) when ``status()`` changed."""

    on_status: Callable[[], None] | None

    async def propose(self, instruction: str, run_policy: bool) -> Observation: ...

    async def execute(self, action: PickPlace, source: str) -> ExecutionResult: ...

    async def stop(self) -> bool: ...

    def status(self) -> CellStatus | None: ...

    def can_reset(self) -> bool: ...

    async def reset(self, seed: int | None) -> CellStatus: ...


@dataclass
class _Recorded:
    step: Step
    outcome: dict[str, Any]
    workspace: Workspace


@dataclass
class ConsoleConfig:
    """Where episodes go and what they are called. Validated on construction."""

    record_dir: str = "recorded"
    task: str = ""  # the task name recorded episodes carry; empty: the simulated cell's task, else "cell"
    split: str = "train"

    def __post_init__(self) -> None:
        if not self.record_dir:
            raise ValueError("record_dir must name a folder for the recorded episodes")
        if self.task and not all(c.isalnum() or c == "-" for c in self.task) or self.task != self.task.lower():
            raise ValueError(f"task must be lower-case letters, digits and '-', got {self.task!r}")
        if self.split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {self.split!r}")


class ConsoleSession:
    """The console's state; every public coroutine is safe to call from any request handler."""

    def __init__(self, link: CellLink, config: ConsoleConfig | None = None, clock: Callable[[], float] = time.time):
        self.link = link
        self.config = config or ConsoleConfig()
        self._clock = clock
        self.observation: Observation | None = None
        self.observation_id = 0
        self._acted_on = True  # no observation yet: nothing to act on
        self._steps: list[_Recorded] = []
        self._episode_started: float | None = None
        self.executing: dict[str, Any] | None = None
        self.last_message = "ready: ask for a proposal, or observe to demonstrate"
        self.last_error = False
        self.saved: list[str] = []
        self._lock = asyncio.Lock()  # one proposal or execution at a time
        self._listeners: list[Callable[[], None]] = []
        link.on_status = self._notify  # the cell's own news (a simulated episode's score) reaches the page too

    # ----- events ----------------------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after every change; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, message: str, error: bool = False) -> None:
        self.last_message, self.last_error = message, error
        self._notify()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    # ----- reading ---------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-able data (the images are fetched by observation id)."""
        obs = self.observation
        status = self.link.status()
        out: dict[str, Any] = {
            "observation_id": self.observation_id if obs is not None else None,
            "can_execute": obs is not None and not self._acted_on and self.executing is None,
            "executing": self.executing,
            "message": self.last_message,
            "error": self.last_error,
            "episode": {
                "steps": len(self._steps),
                "sources": [r.step.source for r in self._steps],
                "outcomes": [r.outcome for r in self._steps],
                "saved": list(self.saved[-5:]),
            },
            "cell": None if status is None else status.__dict__.copy(),
            "can_reset": self.link.can_reset(),
            "record_dir": self.config.record_dir,
        }
        if obs is not None:
            out["view"] = {
                "rows": int(obs.color.shape[0]),
                "cols": int(obs.color.shape[1]),
                "pixel_size": obs.workspace.pixel_size,
                "instruction": obs.instruction,
            }
            if obs.proposal is not None:
                p = obs.proposal
                out["proposal"] = {
                    "pick_pixel": list(p.pick_pixel),
                    "place_pixel": list(p.place_pixel),
                    "rotation_deg": math.degrees(p.place_rotation),
                    "pick_confidence": p.pick_place.pick_confidence,
                    "place_confidence": p.pick_place.place_confidence,
                    "pick": list(p.pick_place.pick.position),
                    "place": list(p.pick_place.place.position),
                }
        return out

    # ----- observing -------------------------------------------------------------------------------------
    async def propose(self, instruction: Any, run_policy: bool = True) -> dict[str, Any]:
        """A fresh observation of the cell, with the policy's proposal when ``run_policy``."""
        try:
            text = validate_instruction(instruction) if run_policy or instruction else ""
        except DecisionError as exc:
            raise ConsoleError(exc.message) from exc
        if self._lock.locked():
            raise ConsoleError("busy: a proposal or an execution is under way", status=409)
        async with self._lock:
            try:
                obs = await self.link.propose(text, run_policy)
            except ConsoleError as exc:
                self._changed(f"no observation: {exc.message}", error=True)
                raise
            self.observation = obs
            self.observation_id += 1
            self._acted_on = False
            if self._episode_started is None:
                self._episode_started = self._clock()
            what = "proposal" if run_policy else "observation (demonstration mode)"
            self._changed(f"{what} {self.observation_id} ready: execute, correct, or ask again")
        return self.state()

    # ----- acting ----------------------------------------------------------------------------------------
    @staticmethod
    def _correction(obs: Observation, correction: Any) -> tuple[PickPlace, tuple[int, int], tuple[int, int]]:
        """An operator's pick-and-place from clicked pixels on ``obs``, and the two pixels (ConsoleError if bad)."""
        if not isinstance(correction, dict):
            raise ConsoleError("a correction is an object with pick, place and rotation")
        if not obs.instruction:
            raise ConsoleError("say what the step does: type the instruction, then observe again")
        pick, place = _pixel(obs, "pick", correction.get("pick")), _pixel(obs, "place", correction.get("place"))
        rotation_deg = correction.get("rotation", 0.0)
        try:
            rotation = float(rotation_deg)
        except (TypeError, ValueError) as exc:
            raise ConsoleError(f"rotation must be a number of degrees, got {rotation_deg!r}") from exc
        if not (math.isfinite(rotation) and -360.0 <= rotation <= 360.0):
            raise ConsoleError(f"rotation must be in [-360, 360] degrees, got {rotation_deg!r}")
        ws = obs.workspace
        action = PickPlace(
            pick=Pose.from_xyz_yaw(ws.pixel_to_xyz(pick, obs.height), 0.0),
            place=Pose.from_xyz_yaw(ws.pixel_to_xyz(place, obs.height), math.radians(rotation)),
            instruction=obs.instruction,
            frame_id=ws.frame_id,
        )
        return action, pick, place

    async def execute(self, observation_id: Any, correction: dict[str, Any] | None = None) -> dict[str, Any]:
        """Execute the proposal of observation ``observation_id`` as it is, or the operator's ``correction``
        (``pick``, ``place``: [row, col]; ``rotation``: degrees). The only way the console moves the arm."""
        obs = self.observation
        if obs is None:
            raise ConsoleError("no observation yet: ask for a proposal or observe first", status=409)
        if observation_id != self.observation_id:
            raise ConsoleError(
                f"observation {observation_id!r} is not the newest ({self.observation_id}): look again before acting",
                status=409,
            )
        if self._acted_on:
            raise ConsoleError(
                f"observation {self.observation_id} was already acted on: ask for a new proposal (the scene has "
                "changed)",
                status=409,
            )
        if len(self._steps) >= MAX_EPISODE_STEPS:
            raise ConsoleError(f"the episode has {MAX_EPISODE_STEPS} steps: mark it done or failed first", 409)
        if correction is None:
            if obs.proposal is None:
                raise ConsoleError("this observation has no proposal (demonstration mode): click a pick and a place")
            p = obs.proposal
            action, source = p.pick_place, "policy"
            pixels = (p.pick_pixel, p.place_pixel)
        else:
            action, pick, place = self._correction(obs, correction)
            source, pixels = "operator", (pick, place)
        if self._lock.locked():
            raise ConsoleError("busy: a proposal or an execution is under way", status=409)
        async with self._lock:
            self._acted_on = True  # whatever happens next, this observation is spent
            before = self.link.status()
            self.executing = {"source": source, "pick_pixel": list(pixels[0]), "place_pixel": list(pixels[1])}
            self._changed(f"executing the {'proposal' if source == 'policy' else 'correction'}")
            try:
                result = await self.link.execute(action, source)
            except ConsoleError as exc:
                result = ExecutionResult(False, 0, exc.message, moved=False)
            finally:
                self.executing = None
            after = self.link.status()
            reward = 0.0
            if before is not None and after is not None and after.seed == before.seed:
                reward = (after.score - before.score) / 100.0
            outcome = {
                "success": result.success,
                "error_code": result.error_code,
                "message": result.message,
                "source": source,
            }
            if result.moved:
                self._steps.append(
                    _Recorded(
                        Step(
                            color=obs.color,
                            height=obs.height,
                            instruction=action.instruction,
                            pick=action.pick,
                            place=action.place,
                            pick_pixel=(int(pixels[0][0]), int(pixels[0][1])),
                            place_pixel=(int(pixels[1][0]), int(pixels[1][1])),
                            reward=float(reward),
                            source=source,
                        ),
                        outcome,
                        obs.workspace,
                    )
                )
            verdict = "done" if result.success else "failed"
            kept = f"step {len(self._steps)} recorded" if result.moved else "nothing moved, nothing recorded"
            self._changed(f"execution {verdict}: {result.message} ({kept})", error=not result.success)
        return {"result": outcome, "recorded": result.moved, "state": self.state()}

    async def stop(self) -> dict[str, Any]:
        """Cancel the running execution (the arm stops); say whether there was one."""
        stopped = await self.link.stop()
        self._changed("stop sent: the arm is stopping" if stopped else "nothing is executing", error=False)
        return {"stopped": stopped, "state": self.state()}

    # ----- episodes --------------------------------------------------------------------------------------
    def finish(self, outcome: Any, score: Any) -> dict[str, Any]:
        """Write the episode (atomically) with the operator's outcome and score; start a new one."""
        if outcome not in ("done", "failed"):
            raise ConsoleError(f"outcome must be 'done' or 'failed', got {outcome!r}")
        try:
            value = float(score)
        except (TypeError, ValueError) as exc:
            raise ConsoleError(f"score must be a number in [0, 100], got {score!r}") from exc
        if not (math.isfinite(value) and SCORE_RANGE[0] <= value <= SCORE_RANGE[1]):
            raise ConsoleError(f"score must be in [0, 100], got {score!r}")
        if self.executing is not None:
            raise ConsoleError("an execution is under way: wait for it (or stop it) first", status=409)
        if not self._steps:
            raise ConsoleError("the episode has no executed step: nothing to record", status=409)
        status = self.link.status()
        task = self.config.task or (status.task if status is not None else "cell")
        folder = Path(self.config.record_dir)
        taken = [p.name for p in list_episodes(folder, task, self.config.split)]
        number = 1 + max((int(n.rsplit("-", 1)[1].split(".")[0]) for n in taken), default=-1)
        info: dict[str, Any] = {
            "recorded_by": "cliport console",
            "outcome": outcome,
            "operator_score": value,
            "started": self._episode_started,
            "finished": self._clock(),
            "executions": [r.outcome for r in self._steps],
        }
        if status is not None:
            info["cell"] = status.__dict__.copy()
        episode = Episode(
            task=task,
            split=self.config.split,
            seed=number,
            score=value,
            steps=tuple(r.step for r in self._steps),
            workspace=self._steps[0].workspace,
            info=info,
        )
        path = write_episode(episode, folder)
        self.saved.append(str(path))
        n = len(self._steps)
        self._steps, self._episode_started = [], None
        self._acted_on = True  # the next episode starts from a fresh look
        self._changed(f"episode {outcome} (score {value:g}, {n} steps) saved as {path.name}")
        return {"path": str(path), "steps": n, "state": self.state()}

    async def reset(self, seed: Any = None, discard: bool = False) -> dict[str, Any]:
        """A new simulated episode (simulated cells only); unsaved steps are refused unless ``discard``."""
        if not self.link.can_reset():
            raise ConsoleError("this cell cannot be reset from the console (not a simulated cell)", status=409)
        if self._steps and not discard:
            raise ConsoleError(
                f"{len(self._steps)} executed step(s) are not saved: mark the episode done or failed, or discard",
                status=409,
            )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ConsoleError(f"seed must be a non-negative integer, got {seed!r}")
        if self._lock.locked():
            raise ConsoleError("busy: a proposal or an execution is under way", status=409)
        async with self._lock:
            status = await self.link.reset(seed)
            self._steps, self._episode_started = [], None
            self.observation, self._acted_on = None, True
            self._changed(f"new episode: {status.task} seed {status.seed}: '{status.instruction}'")
        return self.state()


def _pixel(obs: Observation, name: str, value: Any) -> tuple[int, int]:
    rows, cols = obs.color.shape[:2]
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ConsoleError(f"{name} must be [row, column] integers, got {value!r}")
    row, col = int(value[0]), int(value[1])
    if not (0 <= row < rows and 0 <= col < cols):
        raise ConsoleError(f"{name} [{row}, {col}] is outside the {rows} x {cols} view")
    return (row, col)


def render_layers(obs: Observation) -> dict[str, bytes]:
    """The observation as PNGs: ``color``, ``height`` (grey, scaled to 0.2 m), and with a proposal ``pick`` and
    ``place`` (jet colour map with opacity following the probability, to lay over the view)."""
    import cv2

    def png(image: np.ndarray) -> bytes:
        ok, data = cv2.imencode(".png", image)
        if not ok:
            raise RuntimeError("PNG encoding failed")
        return data.tobytes()

    out = {"color": png(cv2.cvtColor(obs.color, cv2.COLOR_RGB2BGR))}
    grey = np.clip(np.asarray(obs.height, np.float32) / 0.2, 0.0, 1.0)
    out["height"] = png((grey * 255).astype(np.uint8))
    if obs.proposal is not None:
        for name, heat in (("pick", obs.proposal.pick_heatmap), ("place", obs.proposal.place_heatmap)):
            values = np.asarray(heat, np.float32)
            peak = float(values.max()) if values.size else 0.0
            scaled = np.zeros(values.shape, np.float32) if peak <= 0 else values / peak
            bgr = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_JET)
            alpha = (np.sqrt(scaled) * 200).astype(np.uint8)  # sqrt: the tails stay visible
            out[name] = png(np.dstack([bgr, alpha]))
    return out
