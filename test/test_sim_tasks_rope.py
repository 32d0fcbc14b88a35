"""align-rope: registered with its splits, the oracle reaches full score, partial credit, determinism, and
the low carry that drags a bead (the rope follows it on the table)."""

import re

import numpy as np
import pytest
from sim_checks import assert_same_seed_same_episode

from cliport_ros.sim import PrimitiveConfig, SimEnvironment, list_tasks, seed_for
from cliport_ros.sim.tasks import SPLITS, make_task
from cliport_ros.sim.tasks.rope import CORNERS, SIDES

KEY = "align-rope"
INSTRUCTION = re.compile(r"^align the rope from ([\w ]+) to ([\w ]+)$")


@pytest.fixture(scope="module")
def env():
    made = SimEnvironment(KEY, renderer="tiny")
    yield made
    made.close()


def _bead_under(env, position):
    goal = env.task.goals[0]
    return min(goal.objects, key=lambda b: np.linalg.norm(env.scene.pose(b)[0][:2] - position[:2]))


def test_align_rope_is_registered_with_its_splits():
    assert KEY in list_tasks()
    task = make_task(KEY)
    assert task.key == KEY and SPLITS == ("train", "val", "test")
    with pytest.raises(ValueError, match="carry_height must be positive"):
        PrimitiveConfig(carry_height=0.0)


def test_oracle_completes_episodes_with_full_score(env):
    for seed, split in ((seed_for("train", 0), "train"), (seed_for("test", 0), "test")):
        obs = env.reset(seed, split)
        assert env.score == 0.0 and not env.done and env.max_steps == 20
        assert len(obs.images) == 3 and obs.view.color.shape == (320, 160, 3)
        assert float(obs.view.height.max()) > 0.005  # the beads stand on the table
        match = INSTRUCTION.match(env.instruction)
        assert match, env.instruction
        assert tuple(sorted(match.groups())) in {tuple(sorted(side)) for side in SIDES}
        beads = [o for o in env.scene.objects.values() if o.kind == "bead"]
        assert len(beads) == 20 and all(o.pickable for o in beads)
        while not env.done:
            result = env.step(env.oracle())
            assert result.success, result.message
        assert env.score == pytest.approx(100.0)
        assert env.step_count <= 10  # the oracle needs a handful of the 20 steps


def test_points_lie_along_the_named_side_and_partial_credit_counts_beads(env):
    env.reset(seed_for("val", 0), "val")
    goal = env.task.goals[0]
    points = np.array([t[0][:2] for t in goal.targets])
    gaps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    assert np.allclose(gaps, env.task.link, atol=1e-6)  # evenly spaced, one link apart
    assert np.allclose(np.linalg.norm(points[-1] - points[0]), 19 * env.task.link)
    assert env.task.progress(env.scene) == 0.0
    # Half the beads on their points (bead i at point i, or the rope the other way round): half the score.
    # Positions only: the score is read before any physics step.
    for way in (lambda i: i, lambda i: 19 - i):
        env.reset(seed_for("val", 0), "val")
        goal = env.task.goals[0]
        for i in range(10):
            env.client.resetBasePositionAndOrientation(goal.objects[i], goal.targets[way(i)][0], (0, 0, 0, 1))
        assert env.task.progress(env.scene) == pytest.approx(0.5)
        assert len(env.task.pending_objects(env.scene)) == 10
    # One oracle step from a fresh scene gives partial credit, not the full score.
    env.reset(seed_for("val", 0), "val")
    env.step(env.oracle())
    assert 0.0 < env.score < 100.0 and not env.done


def test_same_seed_same_scene_instruction_and_oracle_action(env):
    assert_same_seed_same_episode(env)


def test_the_oracle_drags_the_bead_it_names_low_over_the_table(env):
    env.reset(seed_for("train", 1), "train")
    action = env.oracle()
    bead = _bead_under(env, np.asarray(action.pick.position))
    heights = {}
    result = env.execute(action, on_stage=lambda stage: heights.setdefault(stage, float(env.robot.tip_pose()[0][2])))
    assert result.success, result.reason
    assert result.picked == bead  # the cup touches neighbours too; it takes the bead under its axis
    carry = env.task.carry_height
    # Carried just above the table: the tool is at the pick's height + carry when it starts to move, and at
    # the place's + carry when it starts to lower the bead.
    assert heights["move"] == pytest.approx(action.pick.position[2] + carry, abs=0.004)
    assert heights["release"] == pytest.approx(action.place.position[2] + carry, abs=0.004)
    pos, _ = env.scene.pose(bead)
    assert np.linalg.norm(pos[:2] - np.asarray(action.place.position[:2])) < 0.01


def test_corner_names_are_the_square_frames_corners():
    assert set(CORNERS) == {name for side in SIDES for name in side}
    for a, b in SIDES:  # adjacent corners: one coordinate differs
        assert sum(abs(p - q) > 0 for p, q in zip(CORNERS[a], CORNERS[b])) == 1
