"""Training: the losses fall, a handful of demos is overfitted to the right pixels, runs resume exactly."""

import json
import math

import numpy as np
import pytest
import torch

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.model import ModelConfig, Policy
from cliport_ros.training.train import TrainConfig, Trainer, TrainSample, lr_factor, train

# 40 x 20 pixels of 25 mm: small enough to overfit in seconds on one core.
WS = Workspace(pixel_size=0.025)
INSTRUCTION = "put the red blocks in a green bowl"


def scene(pick, place, yaw) -> TrainSample:
    """A red 3x3 block at ``pick`` and a green 7x7 bowl (grey centre) at ``place`` on a grey table."""
    color = np.full((*WS.shape, 3), 60, np.uint8)
    height = np.zeros(WS.shape, np.float32)
    color[pick[0] - 1 : pick[0] + 2, pick[1] - 1 : pick[1] + 2] = (220, 30, 30)
    height[pick[0] - 1 : pick[0] + 2, pick[1] - 1 : pick[1] + 2] = 0.04
    color[place[0] - 3 : place[0] + 4, place[1] - 3 : place[1] + 4] = (30, 200, 30)
    color[place[0] - 1 : place[0] + 2, place[1] - 1 : place[1] + 2] = (60, 60, 60)
    height[place[0] - 3 : place[0] + 4, place[1] - 3 : place[1] + 4] = 0.02
    return TrainSample(color, height, INSTRUCTION, pick, place, yaw, task="synthetic")


DEMOS = [
    scene((8, 5), (30, 15), 0.0),
    scene((25, 15), (10, 6), math.radians(90)),
    scene((35, 4), (15, 14), math.radians(-60)),
]


def small_policy(seed: int = 0) -> Policy:
    torch.manual_seed(seed)
    return Policy(ModelConfig.named("tiny", crop_size=32, n_rotations=12), workspace=WS, device="cpu")


def test_policy_overfits_a_handful_of_demos():
    torch.set_num_threads(1)
    policy = small_policy()
    trainer = Trainer(policy, lr=2e-3, augment=False, seed=0)
    history = [trainer.step(DEMOS[i % 3]) for i in range(150)]
    first = np.mean([h["pick_loss"] + h["place_loss"] for h in history[:9]])
    last = np.mean([h["pick_loss"] + h["place_loss"] for h in history[-9:]])
    assert last < first / 3
    for demo in DEMOS:
        out = policy.act(demo, demo.instruction)
        # on the 3x3 block (the label is its centre)
        assert max(abs(a - b) for a, b in zip(out.pick_pixel, demo.pick_pixel)) <= 1
        assert max(abs(a - b) for a, b in zip(out.place_pixel, demo.place_pixel)) <= 2
        assert math.cos(out.place_rotation - demo.place_yaw) == pytest.approx(1.0, abs=1e-6)
        # the action's place pose turns the object by the demonstrated yaw
        assert math.cos(out.pick_place.place.yaw - demo.place_yaw) == pytest.approx(1.0, abs=1e-6)


def test_training_run_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    demos = {"synthetic": [[d] for d in DEMOS]}
    common = dict(
        tasks=("synthetic",),
        model="tiny",
        model_overrides={"crop_size": 32, "n_rotations": 12},
        steps=6,
        log_every=2,
        save_every=3,
        val_every=0,
        device="cpu",
        seed=5,
    )
    straight = train(TrainConfig(out=str(tmp_path / "a"), **common), demos, progress=False, workspace=WS)
    assert straight["steps"] == 6 and not straight["resumed"]
    # the same run stopped after 3 steps, then resumed to 6
    train(TrainConfig(out=str(tmp_path / "b"), **{**common, "steps": 3}), demos, progress=False, workspace=WS)
    resumed = train(TrainConfig(out=str(tmp_path / "b"), **common), demos, progress=False, workspace=WS)
    assert resumed["resumed"] and resumed["steps"] == 6
    with pytest.raises(ValueError, match="holds a run of config 'tiny' on \\['synthetic'\\]"):
        train(
            TrainConfig(out=str(tmp_path / "b"), **{**common, "tasks": ("other",)}),
            {"other": demos["synthetic"]},
            progress=False,
            workspace=WS,
        )
    a = Policy.load(tmp_path / "a" / "last", device="cpu").model.state_dict()
    b = Policy.load(tmp_path / "b" / "last", device="cpu").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4, 6] and all(x["pick_loss"] > 0 for x in lines)
    assert (tmp_path / "a" / "best" / "model.safetensors").is_file()
    assert any((tmp_path / "a" / "tb").iterdir())


def test_learning_rate_schedules_and_config_errors():
    assert lr_factor("none", 50, 100, 0.1) == 1.0
    assert lr_factor("cosine", 0, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor("cosine", 100, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor("step", 80, 100, 0.1) == 0.25
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainConfig(tasks=("a",), out="x", lr_schedule="linear")
    with pytest.raises(ValueError, match="tasks must be one or more task names"):
        TrainConfig(tasks=(), out="x")


def test_train_command_reads_demos_from_disk(tmp_path, capsys):
    from cliport_ros.cli import main
    from cliport_ros.data import Episode, Step, write_episode
    from cliport_ros.types import Pose

    task = "put-block-in-bowl-seen-colors"
    for seed, demo in zip((0, 2), DEMOS[:2]):
        step = Step(
            demo.color,
            demo.height,
            demo.instruction,
            Pose.from_xyz_yaw(WS.pixel_to_xyz(demo.pick_pixel)),
            Pose.from_xyz_yaw(WS.pixel_to_xyz(demo.place_pixel), demo.place_yaw),
            demo.pick_pixel,
            demo.place_pixel,
            1.0,
        )
        write_episode(Episode(task, "train", seed, 100.0, (step,), WS), tmp_path / "data")
    argv = [
        "train",
        "--task",
        task,
        "--data",
        str(tmp_path / "data"),
        "--n-demos",
        "2",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "run"),
        "--val-every",
        "0",
        "--log-every",
        "1",
        "--threads",
        "1",
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and not summary["resumed"]
    policy = Policy.load(tmp_path / "run" / "best", device="cpu")
    assert policy.workspace == WS and policy.metadata["tasks"] == [task]
    assert main(argv[:5] + ["--n-demos", "3"] + argv[7:]) == 2
    assert "asked for 3 demos" in capsys.readouterr().err


def test_split_runs_train_one_half_each_and_merge(tmp_path):
    from cliport_ros.model.policy import merge_halves

    torch.set_num_threads(1)
    demos = {"synthetic": [[d] for d in DEMOS]}
    common = dict(
        tasks=("synthetic",),
        model="tiny",
        model_overrides={"crop_size": 32, "n_rotations": 12, "clip_per_net": True},
        steps=4,
        log_every=2,
        val_every=0,
        device="cpu",
        seed=5,
    )
    for half in ("pick", "place"):
        train(TrainConfig(out=str(tmp_path / half), nets=half, **common), demos, progress=False, workspace=WS)
        lines = [json.loads(x) for x in (tmp_path / half / "metrics.jsonl").read_text().splitlines()]
        assert [x["step"] for x in lines] == [2, 4]
        assert all(set(x) == {"step", f"{half}_loss", "lr", "elapsed_s"} for x in lines)
    with pytest.raises(ValueError, match="training nets 'place', not 'tiny' on \\['synthetic'\\] training 'pick'"):
        train(TrainConfig(out=str(tmp_path / "place"), nets="pick", **common), demos, progress=False, workspace=WS)
    merged = Policy.load(
        merge_halves(tmp_path / "pick" / "last", tmp_path / "place" / "last", tmp_path / "merged"), device="cpu"
    )
    pick = Policy.load(tmp_path / "pick" / "last", device="cpu").model.state_dict()
    place = Policy.load(tmp_path / "place" / "last", device="cpu").model.state_dict()
    state = merged.model.state_dict()
    assert all(torch.equal(state[k], pick[k]) for k in state if k.startswith(("attention.", "clip.")))
    assert all(torch.equal(state[k], place[k]) for k in state if k.startswith(("transport.", "place_clip.")))
    assert not torch.equal(pick["transport.key.spatial.stem.weight"], place["transport.key.spatial.stem.weight"])


class _RunsCodeWhenUnpickled:
    """A pickled object whose ``__reduce__`` makes the unpickler call ``os.mkdir(marker)``."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.mkdir, (self.marker,))


def test_a_crafted_train_state_is_refused_and_runs_nothing(tmp_path):
    from cliport_ros.training.train import STATE_FILE

    torch.set_num_threads(1)
    demos = {"synthetic": [[DEMOS[0]]]}
    common = dict(
        tasks=("synthetic",),
        model="tiny",
        model_overrides={"crop_size": 32, "n_rotations": 12},
        log_every=1,
        save_every=1,
        val_every=0,
        device="cpu",
    )
    out = tmp_path / "run"
    train(TrainConfig(out=str(out), steps=1, **common), demos, progress=False, workspace=WS)
    state_path = out / "last" / STATE_FILE
    # what the trainer saves is plain values and tensors: it loads without unpickling any object
    state = torch.load(state_path, weights_only=True)
    assert set(state) == {"trainer", "source_rng", "best"}
    assert state["best"] == {"score": -1.0, "step": 0}
    # a crafted state file: the same state with an object that runs code when unpickled
    marker = tmp_path / "code-ran"
    torch.save({**state, "best": _RunsCodeWhenUnpickled(marker)}, state_path)
    with pytest.raises(ValueError, match=f"{STATE_FILE}: .*refused.*only tensors and plain values"):
        train(TrainConfig(out=str(out), steps=2, **common), demos, progress=False, workspace=WS)
    assert not marker.exists()
    # a state file of another shape is named, not a KeyError deep in the trainer
    torch.save({"trainer": state["trainer"]}, state_path)
    with pytest.raises(ValueError, match=f"{STATE_FILE}: .*missing \\['best', 'source_rng'\\]"):
        train(TrainConfig(out=str(out), steps=2, **common), demos, progress=False, workspace=WS)
    # the genuine state resumes
    torch.save(state, state_path)
    resumed = train(TrainConfig(out=str(out), steps=2, **common), demos, progress=False, workspace=WS)
    assert resumed["resumed"] and resumed["steps"] == 2
