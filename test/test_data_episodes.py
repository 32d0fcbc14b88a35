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
        assert np.array_equal(a.color, b.color) and np.array_equal(a.height, b.height)
        assert a.instruction == b.instruction and a.pick_pixel == b.pick_pixel and a.place_pixel == b.place_pixel
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
    with pytest.raises(EpisodeFormatError, match="version 99, this code reads versions 1, 2"):
        load_episode(future)
    assert issubclass(EpisodeFormatError, ValueError)


def _rewritten(path: Path, out: Path, **changes) -> Path:
    """A copy of episode file ``path`` with some arrays replaced (``None``: removed)."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(out, **arrays)
    return out


ROWS, COLS = WS.shape  # 320 x 160


@pytest.mark.parametrize(
    "changes, message",
    [
        # what was found and what was expected, for the field named
        (
            lambda a: {"colour": a["colour"][:, :10]},
            rf"field 'colour' is uint8 \(2, 10, {COLS}, 3\), expected uint8 \(T, {ROWS}, {COLS}, 3\)",
        ),
        (
            lambda a: {"colour": a["colour"].astype(np.float32)},
            rf"field 'colour' is float32 \(2, {ROWS}, {COLS}, 3\), expected uint8",
        ),
        (
            lambda a: {"height": a["height"].astype(np.float64)},
            rf"field 'height' is float64 \(2, {ROWS}, {COLS}\), expected float32 \(T, {ROWS}, {COLS}\)",
        ),
        (
            lambda a: {"height": a["height"][0]},
            rf"field 'height' is float32 \({ROWS}, {COLS}\), expected float32",
        ),
        (lambda a: {"instruction": np.arange(2)}, r"field 'instruction' is int64 \(2,\), expected str \(T,\)"),
        (
            lambda a: {"instruction": np.array(["a", "b", "c"])},
            r"field 'instruction' has 3 steps, expected 2 \(the steps of colour, height",
        ),
        (lambda a: {"pick": a["pick"][:, :6]}, r"field 'pick' is float64 \(2, 6\), expected float64 \(T, 7\)"),
        (
            lambda a: {"pick_pixel": a["pick_pixel"][:, 0]},
            r"field 'pick_pixel' is int64 \(2,\), expected int64 \(T, 2\)",
        ),
        (
            lambda a: {"place_pixel": a["place_pixel"].astype(np.float64)},
            r"field 'place_pixel' is float64 \(2, 2\), expected int64",
        ),
        (
            lambda a: {"place_pixel": np.array([[96, 48], [ROWS, 3]])},
            rf"field 'place_pixel' holds \[{ROWS}, 3\] at step 1, expected a \(row, column\) inside the "
            rf"{ROWS} x {COLS} grid",
        ),
        (
            lambda a: {"reward": a["reward"][:, None]},
            r"field 'reward' is float64 \(2, 1\), expected float64 \(T,\)",
        ),
        (
            lambda a: {"pick": np.where(np.arange(7) == 0, np.nan, a["pick"])},
            r"field 'pick' holds a non-finite value at step 0",
        ),
        (lambda a: {"place": np.zeros((2, 7))}, r"field 'place' at step 0: Pose.orientation must be a non-zero"),
        (lambda a: {"version": np.array([1, 1])}, r"field 'version' is int64 \(2,\), expected an integer \(\)"),
        (lambda a: {"meta": np.array("[1, 2]")}, r"field 'meta' is a JSON list, expected a JSON object"),
        (
            lambda a: {"meta": np.array(json.dumps({**json.loads(str(a["meta"])), "workspace": 5}))},
            r"field 'meta' is invalid: 'workspace' must be a JSON object of Workspace fields, got 5",
        ),
        (lambda a: {"colour": None}, r"field 'colour' is missing"),
        (
            lambda a: (
                {k: a[k][:0] for k in ("colour", "height", "instruction", "pick", "place", "reward", "source")}
                | {"pick_pixel": a["pick_pixel"][:0], "place_pixel": a["place_pixel"][:0]}
            ),
            r"holds no steps, expected at least one",
        ),
    ],
    ids=[
        "color-shape",
        "color-dtype",
        "height-dtype",
        "height-ndim",
        "instruction-dtype",
        "instruction-length",
        "pick-shape",
        "pick_pixel-shape",
        "place_pixel-dtype",
        "place_pixel-outside-grid",
        "reward-shape",
        "pick-nan",
        "place-zero-quaternion",
        "version-shape",
        "meta-not-object",
        "meta-workspace",
        "color-missing",
        "no-steps",
    ],
)
def test_arrays_of_the_wrong_shape_or_dtype_are_named_on_load(tmp_path, changes, message):
    path = write_episode(_episode(), tmp_path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    bad = _rewritten(path, tmp_path / "bad.npz", **changes(arrays))
    with pytest.raises(EpisodeFormatError, match=f"^{bad}: .*{message}"):
        load_episode(bad)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_loading_never_unpickles(tmp_path):
    path = write_episode(_episode(), tmp_path)
    marker = tmp_path / "code-ran"
    crafted = np.array([_RunsCodeWhenUnpickled(marker)] * 2, dtype=object)
    bad = _rewritten(path, tmp_path / "pickled.npz", instruction=crafted)
    with pytest.raises(EpisodeFormatError, match=f"^{bad}: corrupt or truncated .*allow_pickle=False"):
        load_episode(bad)
    assert not marker.exists()


def test_writer_leaves_no_temporary_files_and_rejects_bad_steps(tmp_path):
    write_episode(_episode(6), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{TASK}-train-000006.npz"]
    good = _episode(8)
    bad = dataclasses.replace(good, steps=(dataclasses.replace(good.steps[0], color=good.steps[0].color[:10]),))
    with pytest.raises(ValueError, match="color must be uint8"):
        write_episode(bad, tmp_path)


def _demos(out: Path, n: int, *extra: str, stderr: int = subprocess.DEVNULL) -> subprocess.Popen:
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
        stderr=stderr,
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
    proc = _demos(tmp_path, 1, "--split", "val", "--seed", "4")
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "is not a val seed" in json.loads(stdout.strip().splitlines()[-1])["error"]


def test_demos_old_seed_start_spelling_still_works_with_a_deprecation_message(tmp_path):
    proc = _demos(tmp_path, 1, "--split", "val", "--seed-start", "3", stderr=subprocess.PIPE)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "cliport demos: --seed-start is deprecated and will be removed; use --seed" in stderr
    assert [e.name for e in sorted(tmp_path.iterdir()) if e.suffix == ".npz"][0].endswith("-val-000003.npz")


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


def test_a_mistake_step_needs_mistakes_and_is_not_negative(tmp_path, capsys):
    from cliport_ros.cli import main
    from cliport_ros.sim.demos import generate_demos

    for kwargs in ({"mistake_step": 3}, {"mistakes": True, "mistake_step": -1}):
        with pytest.raises(ValueError, match="a mistake's step goes with --mistakes and is >= 0"):
            generate_demos("put-block-in-bowl-seen-colors", "train", 1, tmp_path, progress=False, **kwargs)
    args = ["demos", "put-block-in-bowl-seen-colors", "--n", "1", "--out", str(tmp_path), "--mistake-step", "0"]
    assert main(args) == 2
    assert "goes with --mistakes" in json.loads(capsys.readouterr().out)["error"]
    assert not list(tmp_path.iterdir())  # nothing written
