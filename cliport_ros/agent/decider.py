"""Turn the latest camera frames and an instruction into a pick-and-place decision, or a clear refusal.

Everything the CLIPort node checks before it lets the arm move lives here, so it is tested without ROS:
the instruction (empty, whitespace, not text, over-long), the images (none yet, stale, malformed, no valid
depth), and the decision (outside the workspace, confidence below the threshold).
"""

from __future__ import annotations

import enum
import math
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.perception.camera import CameraModel
from cliport_ros.types import PRIMITIVES, PickPlace


class DecisionCode(enum.IntEnum):
    """Why a decision was refused; the values equal FollowInstruction.Result's codes (a test checks)."""

    UNKNOWN = 0  # never set: an empty result reads as a failure
    SUCCESS = 1
    INVALID_INSTRUCTION = 2
    NO_OBSERVATION = 3
    LOW_CONFIDENCE = 4
    OUT_OF_WORKSPACE = 5
    EXECUTION_FAILED = 6
    CANCELED = 7
    BUSY = 8
    INTERNAL_ERROR = 9
    INACTIVE = 10


class DecisionError(Exception):
    """A refused decision: ``code`` says which check failed, the message says why in words."""

    def __init__(self, code: DecisionCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AgentConfig:
    """Checks applied around the policy. Validated on construction."""

    max_instruction_length: int = 1000
    max_image_age: float = 2.0  # seconds between the newest image and "now"; 0 disables the check
    max_stamp_lead: float = 0.5  # seconds an image stamp may lie ahead of "now" (clock skew between computers)
    min_view_coverage: float = 0.05  # fraction of the top-down view that the cameras must see
    min_confidence: float = 0.0  # refuse decisions whose pick or place confidence is below this
    workspace_margin: float = 0.0  # metres kept clear of the workspace edges
    primitive: str = "pick_place"  # what executes the decisions: "pick_place", or "push" (separating-piles)

    def __post_init__(self) -> None:
        if not isinstance(self.max_instruction_length, int) or not 1 <= self.max_instruction_length <= 100_000:
            raise ValueError(
                f"max_instruction_length must be an integer in [1, 100000], got {self.max_instruction_length!r}"
            )
        if not (math.isfinite(self.max_image_age) and self.max_image_age >= 0):
            raise ValueError(f"max_image_age must be >= 0 seconds (0 disables), got {self.max_image_age!r}")
        if not (math.isfinite(self.max_stamp_lead) and 0.0 <= self.max_stamp_lead <= 10.0):
            raise ValueError(f"max_stamp_lead must be in [0, 10] seconds, got {self.max_stamp_lead!r}")
        if not 0.0 <= self.min_view_coverage <= 1.0:
            raise ValueError(f"min_view_coverage must be in [0, 1], got {self.min_view_coverage!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        if not (math.isfinite(self.workspace_margin) and 0.0 <= self.workspace_margin < 0.25):
            raise ValueError(f"workspace_margin must be in [0, 0.25) m, got {self.workspace_margin!r}")
        if self.primitive not in PRIMITIVES:
            raise ValueError(f"primitive must be one of {PRIMITIVES}, got {self.primitive!r}")


@dataclass(frozen=True)
class CameraFrame:
    """One synchronised RGB-D pair with the camera that took it. ``stamp`` in seconds."""

    camera: CameraModel
    rgb: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 metres
    stamp: float
    stamp_ns: int | None = None  # the exact stamp (integer ns) where the source has one, to restamp outputs


class PolicyLike(Protocol):
    def act(self, view: Any, instruction: str) -> Any: ...


@dataclass(frozen=True)
class Decision:
    """A checked decision with what it was computed from."""

    pick_place: PickPlace
    output: Any  # the policy's PolicyOutput (heatmaps, pixels, timings)
    view: Any  # the fused TopDownView
    stamp: float  # stamp of the newest image used, seconds
    stamp_ns: int | None = None  # the same, exact, when the frames carried it
    timings: dict = field(default_factory=dict)


def validate_instruction(text: Any, max_length: int = 1000) -> str:
    """The instruction, stripped; raises DecisionError(INVALID_INSTRUCTION) saying what is wrong."""
    if not isinstance(text, str):
        raise DecisionError(DecisionCode.INVALID_INSTRUCTION, f"instruction must be text, got {type(text).__name__}")
    bad = [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") and ch != " "]
    if bad:
        # Line breaks, terminal escapes and bidi overrides would forge log lines or hide text from an operator.
        raise DecisionError(
            DecisionCode.INVALID_INSTRUCTION,
            f"instruction contains control or format characters ({quote_text(''.join(bad[:5]))}); "
            "send one line of plain text",
        )
    stripped = " ".join(text.split())
    if not stripped:
        raise DecisionError(
            DecisionCode.INVALID_INSTRUCTION,
            "instruction is empty or whitespace only; say what to do, e.g. 'put the red block in the green bowl'",
        )
    if len(text) > max_length:
        raise DecisionError(
            DecisionCode.INVALID_INSTRUCTION, f"instruction is {len(text)} characters long; the limit is {max_length}"
        )
    if not any(ch.isalpha() for ch in stripped):
        raise DecisionError(DecisionCode.INVALID_INSTRUCTION, "instruction must be words (letters)")
    return stripped


def quote_text(text: str, limit: int = 80) -> str:
    """``text`` safe for one log line: control, format and separator characters escaped, cut at ``limit``."""
    out = []
    for ch in text[:limit]:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out) + ("..." if len(text) > limit else "")


class Decider:
    """Fuses frames into the top-down view, runs the policy, checks the result."""

    def __init__(self, policy: PolicyLike, workspace: Workspace, config: AgentConfig | None = None, fuse=None) -> None:
        if fuse is None:
            from cliport_ros.perception.fusion import fuse_views as fuse
        self.policy = policy
        self.workspace = workspace
        self.config = config or AgentConfig()
        self._fuse = fuse

    def check_frames(self, frames: Sequence[CameraFrame], now: float) -> float:
        """Raise NO_OBSERVATION if frames are missing or stale; return the newest stamp."""
        if not frames:
            raise DecisionError(DecisionCode.NO_OBSERVATION, "no camera images received yet")
        newest = max(f.stamp for f in frames)
        for frame in frames:
            if frame.stamp - now > self.config.max_stamp_lead:
                raise DecisionError(
                    DecisionCode.NO_OBSERVATION,
                    f"images from camera '{frame.camera.name}' are stamped {frame.stamp - now:.2f} s in the future "
                    f"(max_stamp_lead is {self.config.max_stamp_lead:.2f} s): are the computers' clocks in sync?",
                )
        if self.config.max_image_age > 0:
            for frame in frames:
                age = now - frame.stamp
                if age > self.config.max_image_age:
                    raise DecisionError(
                        DecisionCode.NO_OBSERVATION,
                        f"images from camera '{frame.camera.name}' are {age:.2f} s old "
                        f"(max_image_age is {self.config.max_image_age:.2f} s)",
                    )
        return newest

    def observe(self, frames: Sequence[CameraFrame], now: float) -> tuple[Any, float, int | None]:
        """The fused top-down view of fresh frames (checked as for a decision) and the newest frame's stamp, in
        seconds and exactly (as ``Decision.stamp``, ``Decision.stamp_ns``); what an operator demonstrates on when
        no policy runs."""
        stamp = self.check_frames(frames, now)
        return self._fuse_checked(frames), stamp, max(frames, key=lambda f: f.stamp).stamp_ns

    def _fuse_checked(self, frames: Sequence[CameraFrame]) -> Any:
        try:
            view = self._fuse([(f.rgb, f.depth, f.camera) for f in frames], self.workspace)
        except ValueError as exc:
            raise DecisionError(DecisionCode.NO_OBSERVATION, f"camera images unusable: {exc}") from exc
        coverage = float(np.mean((view.height > 0) | np.any(view.color > 0, axis=-1)))
        if coverage == 0.0:
            raise DecisionError(
                DecisionCode.NO_OBSERVATION, "no camera sees the workspace: every depth point falls outside its bounds"
            )
        if coverage < self.config.min_view_coverage:
            raise DecisionError(
                DecisionCode.NO_OBSERVATION,
                f"the cameras see {100 * coverage:.1f} % of the workspace (min_view_coverage is "
                f"{100 * self.config.min_view_coverage:.1f} %): check camera poses and intrinsics",
            )
        return view

    def decide(self, frames: Sequence[CameraFrame], instruction: Any, now: float) -> Decision:
        text = validate_instruction(instruction, self.config.max_instruction_length)
        stamp = self.check_frames(frames, now)
        t0 = time.perf_counter()
        view = self._fuse_checked(frames)
        t1 = time.perf_counter()
        try:
            output = self.policy.act(view, text)
        except Exception as exc:  # the node must stay up; the message names the failure
            raise DecisionError(DecisionCode.INTERNAL_ERROR, f"policy failed: {type(exc).__name__}: {exc}") from exc
        t2 = time.perf_counter()
        decision = output.pick_place
        decision = PickPlace(
            decision.pick,
            decision.place,
            decision.pick_confidence,
            decision.place_confidence,
            instruction=text,
            primitive=self.config.primitive,
            frame_id=self.workspace.frame_id,
        )
        self.check_decision(decision)
        newest = max(frames, key=lambda f: f.stamp)
        return Decision(decision, output, view, stamp, newest.stamp_ns, {"fuse_s": t1 - t0, "policy_s": t2 - t1})

    def check_decision(self, decision: PickPlace) -> None:
        margin = self.config.workspace_margin
        for name, pose in (("pick", decision.pick), ("place", decision.place)):
            if not self.workspace.contains(pose.position, margin=margin, check_z=False):
                x, y, _ = pose.position
                raise DecisionError(
                    DecisionCode.OUT_OF_WORKSPACE,
                    f"{name} at ({x:.3f}, {y:.3f}) m is outside the workspace x [{self.workspace.x_min}, "
                    f"{self.workspace.x_max}], y [{self.workspace.y_min}, {self.workspace.y_max}] "
                    f"(margin {margin} m); not sent to the arm",
                )
        low = min(decision.pick_confidence, decision.place_confidence)
        if low < self.config.min_confidence:
            raise DecisionError(
                DecisionCode.LOW_CONFIDENCE,
                f"confidence {low:.3f} is below min_confidence {self.config.min_confidence:.3f}",
            )
