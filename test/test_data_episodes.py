"""Episode files: round trip, clear errors for corrupt/foreign files, and a demo writer that survives a kill."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cliport_ros.data import Episode, EpisodeFormatError, Step, list_episodes, load_episode, write_episode
from cliport_ros.geometry import Workspace
from cliport_ros.types import Pose

WS = Workspace()
TASK = "put-block-in-bowl-seen-colors"


def _episode(seed=4, steps=2):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(steps):
        out.append(
            Step(
                rng.integers(0, 256, (*WS.shape, 3), dtype=np.uint8),
                rng.random(WS.shape).astype(np.float32),
                f"put the red blocks in a blue bowl {k}",
                Pose((0.5, 0.1, 0.04)),
                Pose.from_xyz_yaw((0.4, -0.2, 0.03), 0.5),
                (192, 80),
                (96, 48),
                0.5,
            )
        )
    return Episode(TASK, "train", seed, 100.0, tuple(out), WS)


def test_round_trip(tmp_path):
    episode = _episode()
    path = write_episode(episode, tmp_path)
    assert path.name == f"{TASK}-train-000004.npz"
    back = load_episode(path)
    assert (back.task, back.split, back.seed, back.score, back.workspace) == (TASK, "train", 4, 100.0, WS)
    assert len(back.steps) == 2
    for a, b in zip(episode.steps, back.steps):
        assert np.array_equal(a.colour, b.colour) and np.array_equal(a.height, b.height)
        assert (
            a.instruction == b.instruction and a.pick_pixel == b.pick_pixel and a.place_pixel == b.place_pixel
        )
        assert np.allclose(a.pick.position, b.pick.position) and b.place.yaw == pytest.approx(0.5)
        assert a.reward == b.reward
    assert list_episodes(tmp_path) == [path]
    assert [p.name for p in list_episodes(tmp_path, task=TASK, split="val")] == []


def test_corrupt_truncated_and_foreign_files_get_clear_errors(tmp_path):
    path = write_episode(_episode(), tmp_path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(EpisodeFormatError, match="corrupt or truncated"):
        load_episode(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(EpisodeFormatError, match="corrupt or truncated"):
        load_episode(garbage)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, obs=np.zeros(3))
    with pytest.raises(EpisodeFormatError, match="not a cliport_ros episode"):
        load_episode(foreign)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["version"] = np.array(99)
    future = tmp_path / "future.npz"
    np.savez(future, **arrays)
    with pytest.raises(EpisodeFormatError, match="version 99, this code reads version 1"):
        load_episode(future)
    assert issubclass(EpisodeFormatError, ValueError)


def test_writer_leaves_no_temporary_files_and_rejects_bad_steps(tmp_path):
    write_episode(_episode(6), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{TASK}-train-000006.npz"]
    good = _episode(8)
    bad = dataclasses.replace(
        good, steps=(dataclasses.replace(good.steps[0], colour=good.steps[0].colour[:10]),)
    )
    with pytest.raises(ValueError, match="colour must be uint8"):
        write_episode(bad, tmp_path)


def _demos(out: Path, n: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cliport_ros.cli",
            "demos",
            TASK,
            "--n",
            str(n),
            "--out",
            str(out),
            "--no-progress",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def test_demo_writer_survives_a_kill_and_resumes(tmp_path):
    out = tmp_path / "demos"
    proc = _demos(out, 40)
    deadline = time.time() + 90
    while time.time() < deadline and len(list_episodes(out)) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = list_episodes(out)
    assert len(done) >= 3
    for path in done:  # every file under a final name is a whole episode
        assert load_episode(path).score == pytest.approx(100.0)
    rerun = _demos(out, len(done) + 2)
    stdout, _ = rerun.communicate(timeout=120)
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert rerun.returncode == 0
    assert summary["skipped_on_disk"] == len(done) and summary["written"] == 2
    assert summary["episodes"] == len(done) + 2 and summary["task"] == TASK
    assert 0.0 < summary["oracle_success_rate"] <= 1.0
    assert len(list_episodes(out)) == len(done) + 2
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_demos_command_rejects_a_seed_of_another_split(tmp_path):
    proc = _demos(tmp_path, 1, "--split", "val", "--seed-start", "4")
    stdout, _ = proc.communicate(timeout=60)
    assert (
        proc.returncode == 2 and "is not a val seed" in json.loads(stdout.strip().splitlines()[-1])["error"]
    )


def test_a_foreign_file_under_an_episode_name_stops_the_demo_run(tmp_path):
    np.savez(tmp_path / f"{TASK}-train-000000.npz", obs=np.zeros(2))
    proc = _demos(tmp_path, 1)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "not a cliport_ros episode" in stdout


def test_recovery_demo_records_the_oracle_putting_a_misplaced_block_right():
    from cliport_ros.sim import SimEnvironment
    from cliport_ros.sim.demos import run_oracle_episode

    with SimEnvironment(TASK) as env:
        plain = run_oracle_episode(env, 2000, "train").episode
        recovery = run_oracle_episode(env, 2000, "train", mistake=True).episode
        named = recovery.steps[0].instruction.split()[-2]  # "put the red blocks in a brown bowl"
        wrong_bowls = [
            env.workspace.xyz_to_pixel(env.scene.pose(b)[0])
            for b, o in env.scene.objects.items()
            if o.kind == "bowl" and o.color != named
        ]
    # one block: the mistake is step 0 (unrecorded), the recorded step lifts the block out of a wrong bowl
    assert len(plain.steps) == len(recovery.steps) == 1 and recovery.score == pytest.approx(100.0)
    step = recovery.steps[0]
    assert step.reward == pytest.approx(1.0)
    assert np.hypot(*np.subtract(step.pick_pixel, plain.steps[0].pick_pixel)) > 10
    assert min(np.hypot(*np.subtract(step.pick_pixel, b)) for b in wrong_bowls) < 8  # pixels (3.125 mm)
    assert step.place_pixel == pytest.approx(plain.steps[0].place_pixel, abs=8)


def test_recovery_demos_are_refused_for_a_task_with_its_own_oracle(tmp_path):
    from cliport_ros.sim.demos import generate_demos

    with pytest.raises(ValueError, match="oracle of its own"):
        generate_demos("separating-piles-seen-colors", "train", 1, tmp_path, mistakes=True, progress=False)
