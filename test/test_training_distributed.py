"""Training on several processes (torchrun, gloo on the CPU): 2 ranks at batch b follow the same loss curve as
one process at batch 2b, and a 2-rank run resumes exactly.

Why the curves can be compared this tightly: every rank draws the same global batch from the same seeded
sampler, each sample's augmentation is seeded by (seed, iteration, position in the global batch), each sample
runs through the nets alone (batch-norm statistics of one scene), and both runs start from the same weights.
So the two runs compute the same per-sample losses and gradients. What could differ is only the order in which
float32 gradients are summed: one process accumulates g1/2 + g2/2, two ranks add the same two terms in gloo's
all_reduce. Two terms sum to the same float whatever the order, so the curves agree exactly (measured: a
relative difference of 0.0 at every step). With more samples per rank the order does change the rounding, by
about 1e-7 relative per step. The tolerance, 1e-6 relative, admits that and nothing more: every step moves
the losses by more than ten times it (checked below), and a run with another global batch misses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file

from cliport_ros.data.episodes import Episode, Step, write_episode
from cliport_ros.geometry.workspace import Workspace
from cliport_ros.types import Pose

WS = Workspace(pixel_size=0.025)  # 40 x 20 pixels
TASK = "put-block-in-bowl-seen-colors"
MODEL = ["--model-set", "crop_size=32", "--model-set", "n_rotations=12"]
TOLERANCE = 1e-6  # relative; see the module docstring


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demos")
    for seed in range(4):
        rng = np.random.default_rng(seed)
        steps = tuple(
            Step(
                rng.integers(0, 256, (*WS.shape, 3), dtype=np.uint8),
                (rng.random(WS.shape) * 0.1).astype(np.float32),
                ["put the red blocks in a green bowl", "put the blue blocks in a gray bowl"][seed % 2],
                Pose.from_xyz_yaw(WS.pixel_to_xyz((5 + k, 3 + seed)), 0.0),
                Pose.from_xyz_yaw(WS.pixel_to_xyz((30 - k, 15 - seed)), 0.3 * k),
                (5 + k, 3 + seed),
                (30 - k, 15 - seed),
                0.5,
            )
            for k in range(2)
        )
        write_episode(Episode(TASK, "train", 2 * seed, 100.0, steps, WS), folder)
    return folder


def train(demos, out, *extra: str, steps: int = 12) -> list[dict]:
    done = subprocess.run(
        [
            sys.executable, "-m", "cliport_ros.cli", "train", "--task", TASK, "--config", "tiny", *MODEL,
            "--data", str(demos), "--n-demos", "0", "--steps", str(steps), "--lr", "1e-3", "--val-every", "0",
            "--log-every", "1", "--save-every", "6", "--seed", "3", "--threads", "1", "--no-progress",
            "--device", "cpu", "--out", str(out), *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summaries = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1, done.stdout  # one rank reports
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def curve(rows: list[dict]) -> np.ndarray:
    return np.array([[r["pick_loss"], r["place_loss"]] for r in rows if "pick_loss" in r])


@pytest.mark.slow
def test_two_ranks_at_batch_b_follow_one_process_at_batch_2b_and_resume_exactly(demos, tmp_path):
    one = curve(train(demos, tmp_path / "one", "--batch-size", "2"))
    two = curve(train(demos, tmp_path / "two", "--batch-size", "1", "--nproc", "2"))
    assert one.shape == two.shape == (12, 2)
    np.testing.assert_allclose(two, one, rtol=TOLERANCE)
    # every step moves both losses by more than ten times the tolerance, so matching them step for step means
    # matching samples, augmentations and weights
    assert (np.abs(np.diff(one, axis=0)) > 10 * TOLERANCE * one[1:]).all()
    # a different global batch is not within the tolerance: the check can fail
    half = curve(train(demos, tmp_path / "half", "--batch-size", "1"))
    assert not np.allclose(half, one, rtol=1e-3)
    saved = json.loads((tmp_path / "two" / "train_config.json").read_text())
    assert saved["world_size"] == 2 and saved["batch_size"] == 1

    # a 2-rank run stopped at step 6 and resumed ends where the uninterrupted one does
    train(demos, tmp_path / "resumed", "--batch-size", "1", "--nproc", "2", steps=6)
    resumed = curve(train(demos, tmp_path / "resumed", "--batch-size", "1", "--nproc", "2"))
    np.testing.assert_allclose(resumed, two, rtol=1e-5)
    a = load_file(str(tmp_path / "two" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "last" / "model.safetensors"))
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)
