"""The per-step picture: maps blended on the view, pick and place marked, rotation drawn, text above and below."""

from __future__ import annotations

import numpy as np
import pytest

from cliport_ros.perception.overlay import BACKGROUND, PICK_COLOR, PLACE_COLOR, decision_overlay


def picture(rotation=0.0, **kw):
    color = np.full((320, 160, 3), 90, np.uint8)
    pick, place = np.zeros((320, 160)), np.zeros((320, 160))
    pick[100, 40], place[200, 120] = 1.0, 1.0
    args = dict(
        color=color,
        pick_heatmap=pick,
        place_heatmap=place,
        pick_pixel=(100, 40),
        place_pixel=(200, 120),
        place_rotation=rotation,
        instruction="put the red block in the green bowl",
        outcome="step 1: progress, score 0.0 -> 50.0",
    )
    args.update(kw)
    return decision_overlay(**args)


def centroid(image: np.ndarray, color: tuple[int, int, int]) -> tuple[float, float]:
    rows, cols = np.nonzero(np.abs(image.astype(int) - color).sum(axis=2) < 40)
    assert rows.size, f"nothing drawn in {color}"
    return float(rows.mean()), float(cols.mean())


def test_layout_marks_and_text():
    image = picture()
    top = 30  # the instruction strip: one line
    assert image.shape[1] == 2 * 2 * 160 + 4 and image.shape[0] > 640 + top
    body = image[top : top + 640]
    left, right = body[:, :320], body[:, 324:]
    # The pick ring is around (100, 40) and the place ring around (200, 120), at 2x, in both panels.
    for panel in (left, right):
        assert centroid(panel, PICK_COLOR) == pytest.approx((201, 81), abs=3)
        row, col = centroid(panel, PLACE_COLOR)  # the ring and its rotation arrow (to +column at rotation 0)
        assert abs(row - 401) < 3 and 241 < col < 241 + 30
    # Text was written on the strips (pixels other than the background).
    assert (image[:top] != BACKGROUND).any() and (image[top + 640 :] != BACKGROUND).any()


def test_the_rotation_arrow_turns_with_the_place_rotation():
    a, b = picture(0.0), picture(np.pi / 2)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"color": np.zeros((320, 160), np.uint8)}, "color must be"),
        ({"pick_heatmap": np.zeros((10, 10))}, "pick_heatmap must be"),
        ({"scale": 0}, "scale must be"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kw, message):
    with pytest.raises(ValueError, match=message):
        picture(**kw)


def test_non_ascii_instructions_are_drawn_not_dropped():
    assert picture(instruction="lege den roten Würfel in die grüne Schüssel").shape[1] == 644
