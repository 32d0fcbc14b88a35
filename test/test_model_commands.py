"""`cliport predict` on a saved view: its JSON line, files and refusals (the golden comparison is in
test_model_golden.py)."""

import json

import cv2
import numpy as np
import pytest

from cliport_ros.cli import main

INSTRUCTION = "put the red blocks in a green bowl"


@pytest.fixture
def saved_view(tmp_path):
    rng = np.random.default_rng(0)
    color, height = tmp_path / "view.png", tmp_path / "height.npy"
    cv2.imwrite(str(color), rng.integers(0, 256, (320, 160, 3), dtype=np.uint8))
    np.save(height, (rng.random((320, 160)) * 0.05).astype(np.float32))
    return color, height


def _predict(checkpoint, color, height, *extra):
    return main(
        [
            "predict",
            "--checkpoint",
            str(checkpoint),
            "--color",
            str(color),
            "--height",
            str(height),
            "--instruction",
            INSTRUCTION,
            "--device",
            "cpu",
            *extra,
        ]
    )


def test_predict_prints_a_decision_and_writes_logits_and_pictures(random_checkpoint, saved_view, tmp_path, capsys):
    color, height = saved_view
    assert (
        _predict(
            random_checkpoint,
            color,
            height,
            "--pick-pixel",
            "10,20",
            "--logits",
            str(tmp_path / "l.npz"),
            "--out",
            str(tmp_path / "pics"),
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["pick_pixel"] == [10, 20] and len(result["pick_net_argmax"]) == 2
    logits = np.load(tmp_path / "l.npz")
    assert logits["pick"].shape == (320, 160) and logits["place"].shape == (36, 320, 160)
    r, u, v = np.unravel_index(int(logits["place"].argmax()), logits["place"].shape)
    assert result["place_pixel"] == [u, v] and result["place_rotation_bin"] == r
    x, y, _ = result["pick_pose"]["position"]
    assert np.isclose(x, 0.25 + 20.5 * 0.003125) and np.isclose(y, -0.5 + 10.5 * 0.003125)
    assert all((tmp_path / "pics" / n).is_file() for n in ("pick.png", "place.png", "panel.png"))


@pytest.mark.parametrize(
    "change, message",
    [
        ("missing_png", "is not a readable image"),
        ("small_height", "policy's workspace grid is (320, 160)"),
        ("pickle_height", "is not a .npy array"),
        ("pick_outside", "pick_pixel must be (row, col) inside 320 x 160"),
    ],
)
def test_predict_refuses_bad_input_with_a_message(random_checkpoint, saved_view, tmp_path, capsys, change, message):
    color, height = saved_view
    extra = []
    if change == "missing_png":
        color = tmp_path / "nothing.png"
    elif change == "small_height":
        np.save(height, np.zeros((10, 10), np.float32))
    elif change == "pickle_height":
        np.save(height, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        extra = ["--pick-pixel", "400,3"]
    assert _predict(random_checkpoint, color, height, *extra) == 2
    assert message in capsys.readouterr().err
