"""Training on what the console records: several data folders, every episode (n_demos 0), episodes marked failed
left out, and operator steps drawn more often (operator_weight)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cliport_ros.data.episodes import Episode, Step, write_episode
from cliport_ros.geometry.workspace import Workspace
from cliport_ros.training.train import SampleSource, TrainConfig, load_samples, train
from cliport_ros.types import Pose

WS = Workspace(pixel_size=0.025)  # 40 x 20 pixels
TASK = "put-block-in-bowl-unseen-colors"


def _step(k: int, source: str) -> Step:
    rng = np.random.default_rng(k)
    return Step(
        rng.integers(0, 256, (*WS.shape, 3), dtype=np.uint8),
        (rng.random(WS.shape) * 0.1).astype(np.float32),
        "put the orange blocks in a pink bowl",
        Pose.from_xyz_yaw(WS.pixel_to_xyz((10, 5)), 0.0),
        Pose.from_xyz_yaw(WS.pixel_to_xyz((30, 12)), 0.0),
        (10, 5),
        (30, 12),
        0.5,
        source,
    )


def _write(folder, seed: int, sources: list[str], outcome: str | None = None) -> None:
    info = {} if outcome is None else {"outcome": outcome, "operator_score": 100.0}
    steps = tuple(_step(seed * 10 + k, s) for k, s in enumerate(sources))
    write_episode(Episode(TASK, "train", seed, 100.0, steps, WS, info), folder)


@pytest.fixture
def folders(tmp_path):
    sim, recorded = tmp_path / "sim", tmp_path / "recorded"
    for seed in range(3):
        _write(sim, seed, ["oracle", "oracle"])
    _write(recorded, 0, ["policy", "operator"], "done")
    _write(recorded, 1, ["operator"], "done")
    _write(recorded, 2, ["policy", "policy"], "failed")
    return sim, recorded


def test_folders_mix_in_order_failed_episodes_are_left_out_and_operator_steps_weigh_more(folders):
    sim, recorded = folders
    demos, workspace = load_samples([recorded, sim], TASK, 0, operator_weight=4.0)
    assert workspace == WS
    assert [[s.source for s in episode] for episode in demos] == [
        ["policy", "operator"],
        ["operator"],
        ["oracle", "oracle"],
        ["oracle", "oracle"],
        ["oracle", "oracle"],
    ]
    assert [s.weight for episode in demos for s in episode] == [1.0, 4.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    first_two, _ = load_samples([recorded, sim], TASK, 2)
    assert len(first_two) == 2 and first_two[1][0].source == "operator"
    with pytest.raises(ValueError, match=r"holds 2 \(1 more marked failed\)"):
        load_samples(recorded, TASK, 3)
    with pytest.raises(ValueError, match="record them with `cliport console`"):
        load_samples(sim, "put-block-in-bowl-seen-colors", 1)


def test_weighted_draws_follow_the_weights_and_unweighted_draws_are_unchanged(folders):
    sim, recorded = folders
    demos, _ = load_samples([recorded, sim], TASK, 0, operator_weight=4.0)
    source = SampleSource({TASK: demos}, seed=0)
    draws = [source.next() for _ in range(20000)]
    # mass: operator 4/2 + 4/1 = 6, policy 1/2, oracle 6 x 1/2 = 3; of 9.5 in all
    share = {kind: sum(s.source == kind for s in draws) / len(draws) for kind in ("operator", "policy", "oracle")}
    assert share["operator"] == pytest.approx(6 / 9.5, abs=0.015)
    assert share["policy"] == pytest.approx(0.5 / 9.5, abs=0.01)
    assert share["oracle"] == pytest.approx(3 / 9.5, abs=0.015)
    # with every weight 1 the draws are exactly those of before (uniform over demos, then steps)
    plain, _ = load_samples(sim, TASK, 0)
    a, b = SampleSource({TASK: plain}, seed=3), np.random.default_rng(4)
    for _ in range(50):
        episode = plain[int(b.integers(len(plain)))]
        assert a.next() is episode[int(b.integers(len(episode)))]


def test_cli_style_config_trains_on_two_folders(folders, tmp_path):
    sim, recorded = folders
    cfg = TrainConfig(
        tasks=(TASK,),
        out=str(tmp_path / "run"),
        data=(str(recorded), str(sim)),
        model_overrides={"crop_size": 32, "n_rotations": 12},
        n_demos=0,
        steps=2,
        val_every=0,
        save_every=1,
        log_every=1,
        device="cpu",
        operator_weight=3.0,
    )
    train(cfg, progress=False, workspace=WS)
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["data"] == [str(recorded), str(sim)] and saved["operator_weight"] == 3.0
    with pytest.raises(ValueError, match="operator_weight must be"):
        TrainConfig(tasks=(TASK,), out="x", operator_weight=0)
    with pytest.raises(ValueError, match="n_demos must be a non-negative integer"):
        TrainConfig(tasks=(TASK,), out="x", n_demos=-1)


def test_step_weights_draw_the_steps_of_a_demo_by_their_index(folders):
    sim, recorded = folders  # sim: three demos of two oracle steps
    demos, _ = load_samples(sim, TASK, 0, step_weights={1: 3.0})
    assert [s.weight for episode in demos for s in episode] == [1.0, 3.0] * 3
    source = SampleSource({TASK: demos}, seed=0)
    draws = [source.next() for _ in range(20000)]
    second = sum(any(d is episode[1] for episode in demos) for d in draws) / len(draws)
    assert second == pytest.approx(0.75, abs=0.015)  # 3 of 4 per demo
    # an operator's step at a weighted index weighs both
    mixed, _ = load_samples(recorded, TASK, 0, operator_weight=4.0, step_weights={1: 3.0})
    assert [s.weight for episode in mixed for s in episode] == [1.0, 12.0, 4.0]
    assert TrainConfig(tasks=(TASK,), out="x", step_weights={"3": 4}).step_weights == {3: 4.0}  # as saved in JSON
    with pytest.raises(ValueError, match="step_weights maps a step's index"):
        TrainConfig(tasks=(TASK,), out="x", step_weights={-1: 2.0})
    with pytest.raises(ValueError, match=r"the weight of step 1 must be in \(0, 1000\]"):
        TrainConfig(tasks=(TASK,), out="x", step_weights={1: 0})


def test_the_step_weight_option_reads_index_equals_weight():
    from cliport_ros.training.commands import _step_weights

    assert _step_weights(["3=4", "1=2.5"]) == {3: 4.0, 1: 2.5}
    assert _step_weights([]) == {}
    for bad in ("3", "x=2", "3=y"):
        with pytest.raises(ValueError, match=r"--step-weight takes INDEX=WEIGHT \(e.g. 3=4\), got"):
            _step_weights([bad])
