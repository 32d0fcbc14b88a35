"""The train / eval / bench commands: arguments, the bench's JSON line, the recorded decision panel."""

import json
import time

import numpy as np
import pytest

from cliport_ros.cli import main
from cliport_ros.model.policy import PolicyOutput
from cliport_ros.training.evaluate import decision_panel
from cliport_ros.types import PickPlace, Pose


def test_bench_prints_one_json_line(capsys):
    assert (
        main(
            [
                "bench",
                "--config",
                "tiny",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--repeats",
                "2",
                "--warmup",
                "1",
                "--model-set",
                "clip_per_net=true",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["config"] == "tiny" and result["threads"] == 1 and result["image"] == [320, 160]
    assert result["model_overrides"] == {"clip_per_net": True}
    assert result["parameters"]["trainable"] > 0 and result["parameters"]["frozen"] == 0
    assert sum(result["parameters_per_net"].values()) == sum(result["parameters"].values())
    for key in ("pick_ms", "place_ms", "decision_ms"):
        assert 0 < result[key]["p50"] <= result[key]["p95"]


def test_command_arguments_are_validated(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--config", "tiny", "--out", "x"])  # neither --task nor --tasks
    assert "one of the arguments --task --tasks is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "put-block-in-bowl-seen-colors", "--checkpoint", "c", "--split", "train"])
    with pytest.raises(SystemExit):
        main(["bench", "--config", "huge"])
    args = ["train", "--task", "put-block-in-bowl-seen-colors", "--out", "x"]
    assert main(args + ["--model-set", "lang_layers"]) == 2
    assert "--model-set takes FIELD=VALUE, got 'lang_layers'" in capsys.readouterr().err
    assert main(args + ["--model-set", "lang_layers=12"]) == 2
    assert "lang_layers must be 1..8" in capsys.readouterr().err
    assert main(["bench", "--model-set", "lang_layers=0"]) == 2
    assert "lang_layers must be a positive integer" in capsys.readouterr().err


def test_model_set_values_are_json():
    from cliport_ros.training.commands import parse_model_overrides

    assert parse_model_overrides(["lang_layers=8", "clip_weights=none", "spatial_blocks=2"]) == {
        "lang_layers": 8,
        "clip_weights": "none",
        "spatial_blocks": 2,
    }


def test_eval_reports_a_missing_checkpoint(capsys, tmp_path):
    assert main(["eval", "put-block-in-bowl-seen-colors", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err


def test_decision_panel_marks_the_choice():
    color = np.zeros((32, 16, 3), np.uint8)
    height = np.zeros((32, 16), np.float32)
    pick = np.zeros((32, 16), np.float32)
    pick[5, 6] = 1.0
    out = PolicyOutput(PickPlace(Pose((0.3, 0, 0)), Pose((0.4, 0, 0))), pick, pick.copy(), (5, 6), (20, 10), 0.0, 0)
    panel = decision_panel(color, height, out)
    assert panel.shape == (32, 4 * 16 + 3 * 4, 3)
    assert panel[:, :16].any()  # the markers are drawn on the color panel


def test_eval_runs_episodes_in_the_simulator(capsys, tmp_path):
    import torch

    from cliport_ros.model import ModelConfig, Policy

    torch.manual_seed(0)
    Policy(ModelConfig.named("tiny"), device="cpu").save(tmp_path / "ckpt")
    assert (
        main(
            [
                "eval",
                "put-block-in-bowl-seen-colors",
                "--checkpoint",
                str(tmp_path / "ckpt"),
                "--split",
                "val",
                "--n",
                "1",
                "--seed",
                "5",
                "--threads",
                "1",
                "--record",
                str(tmp_path / "rec"),
                "--test-time-flips",
                "rows",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1])["test_time_flips"] == "rows"  # replacing the checkpoint's "none"
    assert lines[0].split()[:5] == ["episode", "seed", "steps", "score", "success"]
    row = lines[1].split()
    assert row[:2] == ["2", "5"]  # episode index 2 of the validation split is seed 5
    summary = json.loads(lines[-1])
    assert summary["n"] == 1 and summary["split"] == "val"
    # every step is sorted into one outcome, listed on the episode's row and counted in the summary
    assert sum(summary["step_outcomes"].values()) == int(row[2])
    assert set(summary["step_outcomes"]) == {
        "progress",
        "pick_nothing",
        "pick_other",
        "primitive_failed",
        "place_wrong",
        "push_no_progress",
    }
    listed = lines[1][lines[1].index("[") + 1 : lines[1].index("]")].split()
    assert len(listed) == int(row[2]) and all(summary["step_outcomes"][k] >= 1 for k in listed)
    assert 0.0 <= summary["mean_score"] <= 100.0 and summary["success_rate"] in (0.0, 1.0)
    assert summary["success_rate"] == (1.0 if summary["mean_score"] >= 100.0 - 1e-6 else 0.0)
    pngs = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert len(pngs) == int(row[2]) and pngs[0] == "seed00005_step00.png"
    # Each is the step's overlay: the two 2x maps on the 320x160 view side by side, text above and below.
    import cv2

    overlay = cv2.imread(str(tmp_path / "rec" / pngs[0]))
    assert overlay.shape[1] == 2 * 2 * 160 + 4 and overlay.shape[0] > 2 * 320


def test_train_with_unreachable_openai_weights_fails_with_the_alternatives(capsys, tmp_path, monkeypatch):
    from cliport_ros.data import Episode, Step, write_episode
    from cliport_ros.geometry.workspace import Workspace

    ws = Workspace()
    step = Step(
        np.zeros((*ws.shape, 3), np.uint8),
        np.zeros(ws.shape, np.float32),
        "put the red blocks in a green bowl",
        Pose((0.4, 0.0, 0.0)),
        Pose((0.5, 0.1, 0.0)),
        (160, 48),
        (192, 80),
        1.0,
    )
    write_episode(Episode("put-block-in-bowl-seen-colors", "train", 0, 100.0, (step,), ws), tmp_path / "data")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = [
        "train",
        "--task",
        "put-block-in-bowl-seen-colors",
        "--config",
        "paper",
        "--n-demos",
        "1",
        "--out",
        str(tmp_path / "run"),
        "--data",
        str(tmp_path / "data"),
        "--no-progress",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot load CLIP RN50 'openai' weights: HF_HUB_OFFLINE is set" in err and "clip_weights='none'" in err
    argv_no_data = argv[:-2] + [str(tmp_path / "elsewhere"), "--no-progress"]
    assert main(argv_no_data) == 2
    assert "no train demos of 'put-block-in-bowl-seen-colors'" in capsys.readouterr().err


def test_task_groups_expand_in_order_without_repeats():
    from cliport_ros.sim.tasks import TASK_GROUPS, expand_tasks, task_keys

    group = TASK_GROUPS["multi-language-conditioned-builtin"]
    for members in TASK_GROUPS.values():
        assert set(members) <= set(task_keys())
    assert set(group) < set(TASK_GROUPS["multi-language-conditioned"])
    assert expand_tasks("put-block-in-bowl-seen-colors, multi-language-conditioned-builtin") == (
        "put-block-in-bowl-seen-colors",
        *[k for k in group if k != "put-block-in-bowl-seen-colors"],
    )
    with pytest.raises(ValueError, match="unknown task or group 'put-block-in-cup'; tasks: .*groups: multi-"):
        expand_tasks("put-block-in-cup")
    with pytest.raises(ValueError, match="no task named"):
        expand_tasks(" , ")


def test_results_table_puts_the_paper_beside_ours(tmp_path):
    from cliport_ros.training.evaluate import write_results

    rows = [
        {"task": "put-block-in-bowl-seen-colors", "split": "test", "n": 10, "success_rate": 0.5, "mean_score": 60.0},
        {"task": "packing-shapes", "split": "test", "n": 10, "success_rate": 0.2, "mean_score": 20.0},
    ]
    write_results(rows, tmp_path, n_demos=100)
    assert json.loads((tmp_path / "results.json").read_text()) == rows
    table = (tmp_path / "results.md").read_text().splitlines()
    assert table[0] == "| task | split | episodes | success % | mean score | paper single-task (100 demos) |"
    assert table[2] == "| put-block-in-bowl-seen-colors | test | 10 | 50.0 | 60.0 | 92.5 |"
    assert table[3] == "| packing-shapes | test | 10 | 20.0 | 20.0 | 40.0 |"
    assert table[4] == "| **mean** | | | 35.0 | 40.0 | |"
    # between the published demo counts: both neighbours
    write_results(rows, tmp_path, n_demos=50)
    table = (tmp_path / "results.md").read_text().splitlines()
    assert table[0].endswith("| paper single-task (10 demos) | paper single-task (100 demos) |")
    assert table[2] == "| put-block-in-bowl-seen-colors | test | 10 | 50.0 | 60.0 | 68.3 | 92.5 |"
    assert "45.4 / 74.4 / 87.0 / 86.7" in table[-1]


def test_eval_of_several_tasks_prints_one_line_each_and_writes_the_table(capsys, tmp_path, random_checkpoint):
    args = ["eval", "put-block-in-bowl-seen-colors,separating-piles-seen-colors", "--checkpoint"]
    args += [str(random_checkpoint), "--split", "val", "--n", "1", "--threads", "1"]
    assert main(args + ["--results", str(tmp_path / "res")]) == 0
    summaries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [s.get("task") for s in summaries[:2]] == [
        "put-block-in-bowl-seen-colors",
        "separating-piles-seen-colors",
    ]
    assert summaries[2]["tasks"] == 2
    assert summaries[2]["mean_score"] == pytest.approx((summaries[0]["mean_score"] + summaries[1]["mean_score"]) / 2)
    saved = json.loads((tmp_path / "res" / "results.json").read_text())
    assert [r["task"] for r in saved] == ["put-block-in-bowl-seen-colors", "separating-piles-seen-colors"]
    assert (tmp_path / "res" / "results.md").read_text().count("\n| ") >= 3


def test_busy_processes_run_beside_the_measurement_and_are_stopped():
    import os

    from cliport_ros.training.bench import busy_processes

    with busy_processes(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
        pids = [p.pid for p in procs]
        time.sleep(0.3)
        # each one is on the CPU, not asleep
        assert all(open(f"/proc/{pid}/stat").read().split()[2] in "RD" for pid in pids)
    assert all(p.poll() is not None for p in procs)
    assert not any(
        os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z" for pid in pids
    )
    with pytest.raises(ValueError, match="load must be >= 0"):
        with busy_processes(-1):
            pass


def test_bench_load_is_reported(capsys):
    assert main(["bench", "--config", "tiny", "--threads", "1", "--repeats", "1", "--warmup", "0", "--load", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["load"] == 1 and result["decision_ms"]["p50"] > 0


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_at_barriers_unless_told_otherwise(given, expected):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    probe = "import cliport_ros, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == [expected], out.stderr


def test_eval_takes_the_first_episodes_seed_and_the_old_index_spelling_with_a_warning(capsys):
    """One concept, one name: --seed is the first episode's seed in cliport demos, eval and sim. eval's old
    --seed-start (an episode index) still works, says it is deprecated and which seed it means."""
    import argparse

    from cliport_ros.training.commands import _first_episode

    def args(**kw):
        return argparse.Namespace(**{"split": "test", "seed": None, "seed_start": None, **kw})

    assert _first_episode(args()) == 0
    assert _first_episode(args(seed=10005)) == 2
    assert _first_episode(args(split="val", seed=5)) == 2
    assert capsys.readouterr().err == ""
    assert _first_episode(args(seed_start=3)) == 3
    assert "--seed-start is deprecated and will be removed; use --seed 10007" in capsys.readouterr().err
    with pytest.raises(ValueError, match="seed 10002 is not a test seed"):
        _first_episode(args(seed=10002))
    with pytest.raises(ValueError, match="not both"):
        _first_episode(args(seed=10001, seed_start=0))
