"""How evaluation sorts each step into an outcome."""

from types import SimpleNamespace

import pytest

from cliport_ros.training.evaluate import STEP_OUTCOMES, step_outcome


@pytest.mark.parametrize(
    "target, reward, success, primitive, expected",
    [
        ("goal", 0.5, True, "pick_place", "progress"),
        ("nothing", 0.0, False, "pick_place", "pick_nothing"),
        ("other", 0.0, True, "pick_place", "pick_other"),
        ("goal", 0.0, False, "pick_place", "primitive_failed"),
        ("goal", 0.0, True, "pick_place", "place_wrong"),
        # a push starts on bare table behind the pile: its start says nothing, only whether it helped
        ("nothing", 0.0, True, "push", "push_no_progress"),
        ("other", 0.0, True, "push", "push_no_progress"),
        ("nothing", 0.2, True, "push", "progress"),
    ],
)
def test_each_step_gets_one_outcome(target, reward, success, primitive, expected):
    result = SimpleNamespace(reward=reward, success=success)
    assert step_outcome(target, result, primitive) == expected
    assert expected in STEP_OUTCOMES
