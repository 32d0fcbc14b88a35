"""The train / eval / bench commands: arguments, the bench's JSON line, the recorded decision panel."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from cliport_ros.cli import main
from cliport_ros.model.policy import PolicyOutput
from cliport_ros.training.evaluate import decision_panel
from cliport_ros.types import PickPlace, Pose


def test_bench_prints_one_json_line(capsys):
    assert main(["bench", "--config", "tiny", "--device", "cpu", "--threads", "1", "--repeats", "2",
                 "--warmup", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["config"] == "tiny" and result["threads"] == 1 and result["image"] == [320, 160]
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


def test_eval_reports_a_missing_checkpoint(capsys, tmp_path):
    assert main(["eval", "put-block-in-bowl-seen-colors", "--checkpoint", str(tmp_path / "none")]) == 2
    assert "not found" in capsys.readouterr().err


def test_decision_panel_marks_the_choice():
    colour = np.zeros((32, 16, 3), np.uint8)
    height = np.zeros((32, 16), np.float32)
    pick = np.zeros((32, 16), np.float32)
    pick[5, 6] = 1.0
    out = PolicyOutput(PickPlace(Pose((0.3, 0, 0)), Pose((0.4, 0, 0))), pick, pick.copy(), (5, 6), (20, 10), 0.0, 0)
    panel = decision_panel(colour, height, out)
    assert panel.shape == (32, 4 * 16 + 3 * 4, 3)
    assert panel[:, :16].any()  # the markers are drawn on the colour panel
