"""Tasks: registry, seeds, scenes, instructions, oracles reaching full score, determinism."""

import math
import re

import numpy as np
import pytest

from cliport_ros.sim import SimEnvironment, list_tasks, seed_for
from cliport_ros.sim.scene import SEEN_COLORS, UNSEEN_COLORS
from cliport_ros.sim.tasks import make_task

TASKS = [
    "put-block-in-bowl-seen-colors",
    "put-block-in-bowl-unseen-colors",
    "stack-block-pyramid-seq-seen-colors",
    "stack-block-pyramid-seq-unseen-colors",
]
BOWL = re.compile(r"^put the (\w+) blocks in a (\w+) bowl$")
PYRAMID = re.compile(
    r"^put the (\w+) block on (the lighter brown side|the middle of the stand|the darker brown side"
    r"|the (\w+) and (\w+) blocks)$"
)


# recovery-demo seeds whose first-step mistakes are of both kinds (shifted and turned)
SEEDS_NEAR_MISS = (2000, 2002, 2004, 2006)


@pytest.fixture(scope="module")
def envs():
    made = {}
    yield lambda key: made.setdefault(key, SimEnvironment(key))
    for env in made.values():
        env.close()


def test_registry_lists_the_four_tasks_and_rejects_unknown_ones():
    assert set(TASKS) <= set(list_tasks())
    with pytest.raises(ValueError, match="unknown task 'put-block-in-cup'; available"):
        make_task("put-block-in-cup")


def test_seeds_follow_the_paper():
    assert [seed_for("train", i) for i in range(3)] == [0, 2, 4]
    assert [seed_for("val", i) for i in range(3)] == [1, 3, 5]
    assert [seed_for("test", i) for i in range(3)] == [10001, 10003, 10005]
    with pytest.raises(ValueError, match="unknown split"):
        seed_for("dev", 0)
    with pytest.raises(ValueError, match="non-negative"):
        seed_for("train", -1)


@pytest.mark.parametrize("key", TASKS)
def test_oracle_completes_episodes_with_full_score(envs, key):
    env = envs(key)
    for seed in (seed_for("test", 0), seed_for("train", 1)):
        split = "test" if seed > 10000 else "train"
        obs = env.reset(seed, split)
        assert env.task_key == key and env.score == 0.0 and not env.done
        assert len(obs.images) == 3
        for im in obs.images:
            assert im.rgb.shape == (480, 640, 3) and im.rgb.dtype == np.uint8
            assert im.depth.shape == (480, 640) and im.depth.dtype == np.float32
        assert obs.view.color.shape == (320, 160, 3)
        # Something stands on the table (blocks are 4 cm).
        assert 0.035 < float(obs.view.height.max()) < 0.06
        pattern = BOWL if key.startswith("put-block") else PYRAMID
        scores = []
        while not env.done:
            assert pattern.match(env.instruction), env.instruction
            result = env.step(env.oracle())
            assert result.success, result.message
            scores.append(result.score)
        assert env.score == pytest.approx(100.0)
        assert env.step_count <= env.max_steps
        assert scores == sorted(scores)  # partial credit only grows under the oracle
        if key.startswith("stack"):
            assert env.max_steps == 12 and env.step_count == 6
            assert scores[0] == pytest.approx(100 / 6)


def test_put_block_in_bowl_step_cap_and_colors(envs):
    env = envs("put-block-in-bowl-unseen-colors")
    for seed, split, palette in (
        (seed_for("train", 3), "train", SEEN_COLORS),
        (seed_for("test", 3), "test", UNSEEN_COLORS),
    ):
        env.reset(seed, split)
        block, bowl = BOWL.match(env.instruction).groups()
        assert block != bowl and {block, bowl} <= set(palette)
        colors = {o.color for o in env.scene.objects.values()}
        assert colors <= set(palette)
        n_blocks = len(env.task.goals[0].objects)
        assert 1 <= n_blocks <= 3 and env.max_steps == n_blocks + 1


def test_unmatched_action_scores_nothing_and_counts_a_step(envs):
    env = envs("put-block-in-bowl-seen-colors")
    env.reset(seed_for("val", 0), "val")
    action = env.oracle()
    # Put the block back where it was: a successful primitive, no progress.
    from cliport_ros.types import PickPlace, Pose

    same = PickPlace(action.pick, Pose(action.pick.position), instruction=action.instruction)
    result = env.step(same)
    assert result.success and result.reward == 0.0 and result.score == 0.0 and env.step_count == 1


def _rollout(env, seed):
    obs = env.reset(seed)
    trace = [
        obs.instruction,
        sorted((b, tuple(np.round(env.scene.pose(b)[0], 6))) for b in env.scene.objects),
    ]
    while not env.done:
        action = env.oracle()
        trace.append((action.pick.position, action.place.position, action.place.orientation, env.instruction))
        env.step(action)
    trace.append(env.score)
    return trace


def test_same_seed_same_scene_and_actions_on_either_renderer():
    a = SimEnvironment("stack-block-pyramid-seq-seen-colors", renderer="tiny")
    b = SimEnvironment("stack-block-pyramid-seq-seen-colors", renderer="auto")
    try:
        first = _rollout(a, 4)
        assert _rollout(b, 4) == first
        assert _rollout(a, 4) == first  # and again after other episodes ran in the same world
        assert _rollout(a, 6)[1] != first[1]
    finally:
        a.close()
        b.close()


def test_a_new_family_plugs_in_through_the_registry():
    from cliport_ros.sim import tasks as registry
    from cliport_ros.sim.tasks import Task, register

    class OneBlock(Task):
        family = "test-one-block"
        variants = ("only",)

        def build(self, scene, rng, split):
            scene.add_block("red", (0.5, 0.0), 0.0)

    register(OneBlock)
    try:
        assert "test-one-block-only" in list_tasks()
        assert isinstance(make_task("test-one-block-only"), OneBlock)
        with pytest.raises(ValueError, match="registered twice"):
            register(type("Other", (OneBlock,), {}))
    finally:
        registry._FAMILIES.pop("test-one-block")


def test_pick_target_tells_needed_objects_from_others_and_empty_table(envs):
    env = envs("put-block-in-bowl-seen-colors")
    env.reset(seed=seed_for("test", 0), split="test")
    action = env.oracle()
    assert env.pick_target(action.pick.position[0], action.pick.position[1]) == "goal"
    bowl = next(b for b, o in env.scene.objects.items() if o.kind == "bowl")
    pos, _ = env.scene.pose(bowl)
    assert env.pick_target(float(pos[0]), float(pos[1])) == "other"
    # a point of the table farther than any object's reach
    ws = env.workspace
    corners = [(x, y) for x in (ws.x_min, ws.x_max) for y in (ws.y_min, ws.y_max)]
    free = max(
        corners,
        key=lambda c: min(
            np.hypot(env.scene.pose(b)[0][0] - c[0], env.scene.pose(b)[0][1] - c[1]) for b in env.scene.objects
        ),
    )
    assert env.pick_target(*free) == "nothing"
    # once the needed block is in place it no longer counts as needed
    result = env.step(action)
    assert result.reward > 0
    assert env.pick_target(action.pick.position[0], action.pick.position[1]) != "goal"


def test_a_mistake_leaves_the_block_in_a_wrong_bowl_and_the_oracle_puts_it_right(envs):
    env = envs("put-block-in-bowl-seen-colors")
    env.reset(seed=2000, split="train")  # one red block, brown bowls
    named_bowl = BOWL.match(env.instruction).group(2)
    (block,) = env.task.goals[0].objects
    result = env.step(env.mistake())
    assert result.success and result.reward == 0.0 and env.score == 0.0 and not env.done
    pos, _ = env.scene.pose(block)
    bowls = [(b, o) for b, o in env.scene.objects.items() if o.kind == "bowl"]
    under = min(bowls, key=lambda bo: np.hypot(*(env.scene.pose(bo[0])[0][:2] - pos[:2])))
    assert np.hypot(*(env.scene.pose(under[0])[0][:2] - pos[:2])) < 0.03
    assert under[1].color != named_bowl
    recovery = env.oracle()
    assert np.hypot(recovery.pick.position[0] - pos[0], recovery.pick.position[1] - pos[1]) < 0.02
    assert env.step(recovery).reward == pytest.approx(1.0) and env.done


def test_a_pose_checked_mistake_is_a_near_miss_or_the_other_spot_and_the_oracle_puts_it_right(envs):
    """stack-block-pyramid checks 1 cm and 15 degrees: its mistakes leave the block just off or turned on target,
    or on another open spot of its row (the wrong pair of a middle row, as a policy that misreads the words)."""
    from cliport_ros.sim.tasks.base import wrap_angle

    env = envs("stack-block-pyramid-seq-seen-colors")
    kinds = []
    for seed in SEEDS_NEAR_MISS:
        for goal_index in (0, 3):  # the base row's first block (two spots open beside it), the middle row's first
            env.reset(seed=seed, split="train")
            for _ in range(goal_index):
                env.step(env.oracle())
            goal = env.task.goals[goal_index]
            (block,), ((tpos, tyaw),) = goal.objects, goal.targets
            score = env.score
            result = env.step(env.mistake())
            assert result.success and result.reward == 0.0 and env.score == score
            pos, yaw = env.scene.pose(block)
            off = float(np.hypot(pos[0] - tpos[0], pos[1] - tpos[1]))
            turned = abs(wrap_angle(yaw - tyaw, math.pi / 2))
            others = [
                g.targets[0][0] for g in env.task.goals[goal_index + 1 :] if abs(g.targets[0][0][2] - tpos[2]) < 1e-3
            ]
            on_other = [t for t in others if np.hypot(pos[0] - t[0], pos[1] - t[1]) <= goal.position_tolerance]
            if on_other:
                kinds.append("other spot")
                assert abs(pos[2] - on_other[0][2]) < 0.005  # standing on the row, not fallen
            else:
                assert off < 0.04, (seed, off)  # near its target, not across the table
                assert off > goal.position_tolerance or turned > goal.yaw_tolerance, (seed, off, math.degrees(turned))
                kinds.append("shifted" if off > goal.position_tolerance else "turned")
            recovery = env.oracle()
            assert np.hypot(recovery.pick.position[0] - pos[0], recovery.pick.position[1] - pos[1]) < 0.02
            assert env.step(recovery).reward == pytest.approx(1 / 6)
    assert set(kinds) == {"shifted", "turned", "other spot"}, kinds


def test_a_mistake_goes_to_another_spot_only_where_one_is_open(envs):
    """The base row's last block and the middle row's second have no open spot at their height: near misses."""
    env = envs("stack-block-pyramid-seq-seen-colors")
    for seed in SEEDS_NEAR_MISS:
        for goal_index in (2, 4):
            env.reset(seed=seed, split="train")
            for _ in range(goal_index):
                env.step(env.oracle())
            goal = env.task.goals[goal_index]
            (block,), ((tpos, _),) = goal.objects, goal.targets
            env.step(env.mistake())
            pos, _ = env.scene.pose(block)
            assert np.hypot(pos[0] - tpos[0], pos[1] - tpos[1]) < 0.04, (seed, goal_index)


def test_tasks_with_an_oracle_of_their_own_have_no_mistakes():
    assert make_task("put-block-in-bowl-seen-colors").supports_mistakes
    assert not make_task("separating-piles-seen-colors").supports_mistakes


def test_every_recovery_demo_of_a_sequential_task_holds_its_mistake():
    """stack-block-pyramid allows 12 steps for its 6 places: the mistake's step is one of the 6 the oracle makes
    (seed 2000 drew step 6 of 0..10 before, after the oracle's last place, and its demo showed no mistake)."""
    from cliport_ros.sim.demos import _MISTAKE_STREAM, run_oracle_episode

    with SimEnvironment("stack-block-pyramid-seq-seen-colors") as env:
        env.reset(2000, "train")
        assert env.task.places_left(env.scene) == 6 and env.max_steps == 12
        outcome = run_oracle_episode(env, 2000, "train", mistake=True)
        # the mistake was executed, unrecorded: one step more than the demo holds
        assert outcome.episode is not None and env.step_count == len(outcome.episode.steps) + 1
        assert env.task.places_left(env.scene) == 0
        # the demo names the recorded step that follows the mistake: the drawn step, as every step before it
        # was one oracle place
        drawn = int(np.random.default_rng([2000, _MISTAKE_STREAM]).integers(6))
        assert outcome.episode.info == {"recovery_step": drawn}
        # the step can be chosen: the middle row's first block, where a policy misreads the pair's colours
        fixed = run_oracle_episode(env, 2000, "train", mistake=True, mistake_step=3)
        assert fixed.episode is not None and fixed.episode.info == {"recovery_step": 3}
        assert env.step_count == 7 and len(fixed.episode.steps) == 6 and env.score == pytest.approx(100.0)
        # the recorded step 3 picks the block off the other pair's spot (seed 2000's mistake) and puts it right
        other_spot = env.workspace.xyz_to_pixel(env.task.goals[4].targets[0][0])
        assert np.hypot(*np.subtract(fixed.episode.steps[3].pick_pixel, other_spot)) <= 8
        assert fixed.episode.steps[3].instruction == env.task.goals[3].instruction
        with pytest.raises(ValueError, match=r"one of the oracle's first 6 \(0..5\), got 6"):
            run_oracle_episode(env, 2000, "train", mistake=True, mistake_step=6)


def test_the_any_order_pyramid_has_the_papers_scene_and_goals_in_an_order_the_pyramid_allows(envs):
    """stack-block-pyramid-any-order: the seed's scene and instructions of stack-block-pyramid-seq, the base row
    in a drawn order, then the middle pair in a drawn order, the top last; the oracle finishes it."""
    seq = envs("stack-block-pyramid-seq-seen-colors")
    anyo = envs("stack-block-pyramid-any-order-seen-colors")
    orders = set()
    for seed in (0, 2, 4, 6, 8, 10):
        seq.reset(seed, "train")
        anyo.reset(seed, "train")
        for a, b in zip(sorted(seq.scene.objects), sorted(anyo.scene.objects), strict=True):
            np.testing.assert_allclose(seq.scene.pose(a)[0], anyo.scene.pose(b)[0])
        paper = [g.instruction for g in seq.task.goals]
        order = tuple(paper.index(g.instruction) for g in anyo.task.goals)
        assert sorted(order[:3]) == [0, 1, 2] and sorted(order[3:5]) == [3, 4] and order[5] == 5
        orders.add(order)
    assert len(orders) >= 3  # the order is drawn, not fixed
    obs = anyo.reset(4, "train")
    asked = []
    while not anyo.done:
        asked.append(obs.instruction)
        assert PYRAMID.match(obs.instruction), obs.instruction
        result = anyo.step(anyo.oracle())
        assert result.success, result.message
        obs = result.observation
    assert anyo.score == pytest.approx(100.0) and anyo.step_count == 6
    assert asked == [g.instruction for g in anyo.task.goals]


def test_noisy_places_leave_the_blocks_off_their_targets_and_keep_the_oracles_labels():
    """`cliport demos --place-noise MM,DEG`: each oracle place is executed shifted and turned (the states a
    policy's imperfect places leave), the recorded labels are the oracle's own, and the episode still scores."""
    from cliport_ros.sim.demos import PlaceNoise, run_oracle_episode

    with SimEnvironment("stack-block-pyramid-seq-seen-colors") as env:
        clean = run_oracle_episode(env, 2000, "train")
        clean_end = [env.scene.pose(g.objects[0]) for g in env.task.goals]
        noisy = run_oracle_episode(env, 2000, "train", place_noise=PlaceNoise(3.0, 6.0))
        assert clean.episode is not None and noisy.episode is not None and env.score == pytest.approx(100.0)
        assert noisy.episode.info == {"place_noise": [3.0, 6.0]} and clean.episode.info == {}
        # the first step's state is the same and so is its label; the executed place is not
        first_clean, first_noisy = clean.episode.steps[0], noisy.episode.steps[0]
        assert first_noisy.place_pixel == first_clean.place_pixel
        assert first_noisy.place == first_clean.place
        noisy_end = [env.scene.pose(g.objects[0])[0] for g in env.task.goals]
        offsets, turns = [], []
        for goal, (pos_clean, yaw_clean) in zip(env.task.goals, clean_end, strict=True):
            pos, yaw = env.scene.pose(goal.objects[0])
            offsets.append(1000 * math.hypot(pos[0] - pos_clean[0], pos[1] - pos_clean[1]))
            turns.append(math.degrees(abs(math.remainder(yaw - yaw_clean, math.pi / 2))))
        # cut at 2 std per axis: at most 8.5 mm (and the suction point's turn adds up to ~1 mm); all within
        # the task's 10 mm and 15 degrees, yet not where the exact oracle left them
        assert max(offsets) < 10.0 and max(turns) < 13.0
        assert np.median(offsets) > 1.0 and np.median(turns) > 1.0
        # the noise is drawn from the seed: the same run leaves the blocks where the first left them
        run_oracle_episode(env, 2000, "train", place_noise=PlaceNoise(3.0, 6.0))
        again_end = [env.scene.pose(g.objects[0])[0] for g in env.task.goals]
        np.testing.assert_allclose(again_end, noisy_end, atol=1e-4)


@pytest.mark.parametrize("text", ["3", "a,b", "3,5,1", "-1,5", "3,nan"])
def test_bad_place_noise_is_refused(text):
    from cliport_ros.sim.demos import PlaceNoise

    with pytest.raises(ValueError, match=r"place noise is MM,DEG|PlaceNoise\.\w+ must be a finite number >= 0"):
        PlaceNoise.parse(text)
    assert PlaceNoise.parse("3,5") == PlaceNoise(3.0, 5.0)
