"""The decision checks around the policy, without ROS."""

from __future__ import annotations

import numpy as np
import pytest
from scenes import overhead_camera, overhead_frame

from cliport_ros.agent import (
    AgentConfig,
    CameraFrame,
    Decider,
    DecisionCode,
    DecisionError,
    quote_text,
    validate_instruction,
)
from cliport_ros.geometry import Workspace
from cliport_ros.types import PickPlace, Pose


class ScriptedPolicy:
    """Test double for the policy: returns a fixed decision, so the checks around it can be exercised."""

    def __init__(self, pick=(0.4, -0.1, 0.02), place=(0.6, 0.2, 0.02), confidence=0.6):
        self.decision = PickPlace(Pose(pick), Pose.from_xyz_yaw(place, 0.5), confidence, confidence, "x")
        self.calls = []

    def act(self, view, instruction):
        self.calls.append((view, instruction))
        return type("Output", (), {"pick_place": self.decision})()


def frames(stamp=100.0, boxes=((0.45, -0.1, 0.02, 0.04, (255, 0, 0)),)):
    cam = overhead_camera()
    rgb, depth = overhead_frame(cam, boxes)
    return [CameraFrame(cam, rgb, depth, stamp)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty or whitespace only"),
        ("   ", "empty or whitespace only"),
        ("   \t\n", "control or format characters"),
        (42, "instruction must be text, got int"),
        ("x" * 1001, "1001 characters long; the limit is 1000"),
        ("!!! ???", "must be words"),
        ("put the\x00 block", "control or format characters"),
        ("put it\n[ERROR] arm collided", "control or format characters"),
        ("put the \u202eblock", "control or format characters"),
    ],
)
def test_bad_instructions_are_refused_with_reasons(text, message):
    with pytest.raises(DecisionError, match=message) as info:
        validate_instruction(text)
    assert info.value.code == DecisionCode.INVALID_INSTRUCTION


def test_control_characters_are_named_escaped():
    with pytest.raises(DecisionError) as info:
        validate_instruction("put it\n[ERROR] arm collided\u202e")
    assert "(\\x0a\\u202e)" in info.value.message and "\n" not in info.value.message
    assert quote_text("a\nb\x1b[31m\u202e") == "a\\x0ab\\x1b[31m\\u202e"
    assert quote_text("x" * 100, limit=10) == "x" * 10 + "..."


def test_instruction_whitespace_is_normalised():
    assert validate_instruction("  put the red  block   in the bowl ") == "put the red block in the bowl"


def test_decision_goes_through_with_fused_view_and_base_frame():
    policy = ScriptedPolicy()
    decider = Decider(policy, Workspace())
    decision = decider.decide(frames(), "put the red block in the green bowl", now=100.5)
    assert decision.pick_place.instruction == "put the red block in the green bowl"
    assert decision.pick_place.frame_id == "base_link"
    assert decision.stamp == 100.0
    view = policy.calls[0][0]
    # The red box at (0.45, -0.1) is 4 cm high in the fused view.
    u, v = Workspace().xyz_to_pixel((0.45, -0.1, 0))
    assert view.height[u, v] == pytest.approx(0.04, abs=2e-3)
    assert tuple(view.color[u, v]) == (255, 0, 0)


def test_no_frames_and_stale_frames():
    decider = Decider(ScriptedPolicy(), Workspace(), AgentConfig(max_image_age=1.0))
    with pytest.raises(DecisionError, match="no camera images received yet") as info:
        decider.decide([], "put the red block in the bowl", now=0.0)
    assert info.value.code == DecisionCode.NO_OBSERVATION
    with pytest.raises(DecisionError, match=r"images from camera 'top' are 3.00 s old \(max_image_age is 1.00 s\)"):
        decider.decide(frames(stamp=97.0), "put the red block in the bowl", now=100.0)


def test_frames_stamped_in_the_future_are_refused():
    decider = Decider(ScriptedPolicy(), Workspace())
    with pytest.raises(DecisionError, match=r"stamped 1000.00 s in the future \(max_stamp_lead is 0.50 s\)") as info:
        decider.decide(frames(stamp=1100.0), "put the red block in the bowl", now=100.0)
    assert info.value.code == DecisionCode.NO_OBSERVATION
    assert decider.decide(frames(stamp=100.4), "put the red block in the bowl", now=100.0).stamp == 100.4


def test_a_view_that_covers_almost_nothing_is_refused():
    """An absurd calibration (fx = 1e-300 once passed) projects every point into a few cells."""

    def fuse_into_one_corner(views, workspace):  # double: what such a calibration fuses to
        from cliport_ros.perception.fusion import TopDownView

        color = np.zeros((*workspace.shape, 3), np.uint8)
        height = np.zeros(workspace.shape, np.float32)
        color[:20, :20] = 200
        return TopDownView(color, height, workspace)

    decider = Decider(ScriptedPolicy(), Workspace(), fuse=fuse_into_one_corner)
    with pytest.raises(DecisionError, match=r"the cameras see 0.8 % of the workspace \(min_view_coverage is 5.0 %\)"):
        decider.decide(frames(), "put the red block in the bowl", now=100.0)
    assert Decider(ScriptedPolicy(), Workspace()).decide(frames(), "put the red block in the bowl", now=100.0)


def test_nan_or_zero_depth_everywhere_is_no_observation():
    decider = Decider(ScriptedPolicy(), Workspace())
    bad = frames()[0]
    for fill in (np.nan, 0.0):
        depth = np.full_like(bad.depth, fill)
        with pytest.raises(DecisionError, match="camera images unusable") as info:
            decider.decide([CameraFrame(bad.camera, bad.rgb, depth, bad.stamp)], "put it there", now=bad.stamp)
        assert info.value.code == DecisionCode.NO_OBSERVATION


def test_color_depth_mismatch_is_no_observation():
    decider = Decider(ScriptedPolicy(), Workspace())
    f = frames()[0]
    with pytest.raises(DecisionError, match="camera images unusable") as info:
        decider.decide([CameraFrame(f.camera, f.rgb[:-1], f.depth, f.stamp)], "put it there", now=f.stamp)
    assert info.value.code == DecisionCode.NO_OBSERVATION


def test_decisions_outside_the_workspace_are_never_passed_on():
    decider = Decider(ScriptedPolicy(place=(0.9, 0.0, 0.0)), Workspace())
    with pytest.raises(DecisionError, match=r"place at \(0.900, 0.000\) m is outside the workspace") as info:
        decider.decide(frames(), "put the red block in the bowl", now=100.0)
    assert info.value.code == DecisionCode.OUT_OF_WORKSPACE
    margin = Decider(ScriptedPolicy(pick=(0.26, 0.0, 0.0)), Workspace(), AgentConfig(workspace_margin=0.02))
    with pytest.raises(DecisionError, match="pick at"):
        margin.decide(frames(), "put the red block in the bowl", now=100.0)


def test_the_configured_primitive_is_what_the_decision_asks_for():
    decider = Decider(ScriptedPolicy(), Workspace(), AgentConfig(primitive="push"))
    assert (
        decider.decide(frames(), "push the pile of red blocks into the green square", now=100.0).pick_place.primitive
        == "push"
    )
    with pytest.raises(ValueError, match=r"primitive must be one of \('pick_place', 'push'\), got 'sweep'"):
        AgentConfig(primitive="sweep")


def test_low_confidence_is_refused():
    decider = Decider(ScriptedPolicy(confidence=0.05), Workspace(), AgentConfig(min_confidence=0.1))
    with pytest.raises(DecisionError, match="confidence 0.050 is below min_confidence 0.100") as info:
        decider.decide(frames(), "put the red block in the bowl", now=100.0)
    assert info.value.code == DecisionCode.LOW_CONFIDENCE


def test_a_failing_policy_becomes_an_internal_error():
    class BrokenPolicy:
        def act(self, view, instruction):
            raise RuntimeError("CUDA out of memory")

    with pytest.raises(DecisionError, match="policy failed: RuntimeError: CUDA out of memory") as info:
        Decider(BrokenPolicy(), Workspace()).decide(frames(), "put the red block in the bowl", now=100.0)
    assert info.value.code == DecisionCode.INTERNAL_ERROR


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_instruction_length": 0}, "max_instruction_length must be an integer in"),
        ({"max_image_age": -1.0}, "max_image_age must be >= 0"),
        ({"min_confidence": 1.5}, "min_confidence must be in"),
        ({"workspace_margin": 0.3}, "workspace_margin must be in"),
        ({"max_stamp_lead": -0.1}, "max_stamp_lead must be in"),
        ({"min_view_coverage": 1.5}, "min_view_coverage must be in"),
    ],
)
def test_agent_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AgentConfig(**kwargs)


def test_decision_codes_equal_the_action_constants():
    from cliport_ros.action import FollowInstruction

    for code in DecisionCode:
        assert getattr(FollowInstruction.Result, code.name) == code.value


def test_an_observation_is_checked_and_stamped_as_a_decision_and_runs_no_policy():
    policy = ScriptedPolicy()
    decider = Decider(policy, Workspace(), AgentConfig(max_image_age=1.0))
    view, stamp, stamp_ns = decider.observe(frames(stamp=100.0), now=100.5)
    decision = decider.decide(frames(stamp=100.0), "put the red block in the green bowl", now=100.5)
    # frames without an exact stamp: the seconds stand in, as for a decision
    assert (stamp, stamp_ns) == (decision.stamp, decision.stamp_ns) == (100.0, None)
    assert (view.height == decision.view.height).all() and len(policy.calls) == 1
    with pytest.raises(DecisionError, match="3.00 s old"):
        decider.observe(frames(stamp=97.0), now=100.0)
