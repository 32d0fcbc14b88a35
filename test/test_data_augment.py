"""SE(2) augmentation: labels move with the image, stay inside, and the angles follow the paper's spread."""

import math

import numpy as np
import pytest

from cliport_ros.data.augment import apply_se2, perturb, se2_matrix, transform_pixel


def _marked(shape=(320, 160)):
    color = np.zeros((*shape, 3), np.uint8)
    height = np.zeros(shape, np.float32)
    pick, place = (60, 40), (250, 120)
    # 3x3 marks: nearest-neighbour warping may shift a single pixel's image by one
    color[pick[0] - 1 : pick[0] + 2, pick[1] - 1 : pick[1] + 2] = (255, 0, 0)
    color[place[0] - 1 : place[0] + 2, place[1] - 1 : place[1] + 2] = (0, 255, 0)
    height[pick[0] - 1 : pick[0] + 2, pick[1] - 1 : pick[1] + 2] = 0.05
    height[place[0] - 1 : place[0] + 2, place[1] - 1 : place[1] + 2] = 0.02
    return color, height, pick, place


def test_labels_follow_the_marked_pixels():
    color, height, pick, place = _marked()
    rng = np.random.default_rng(0)
    moved = 0
    for _ in range(20):
        aug = perturb(color, height, pick, place, rng)
        assert tuple(aug.color[aug.pick_pixel]) == (255, 0, 0)
        assert tuple(aug.color[aug.place_pixel]) == (0, 255, 0)
        assert aug.height[aug.pick_pixel] == pytest.approx(0.05)
        assert aug.height[aug.place_pixel] == pytest.approx(0.02)
        for p in (aug.pick_pixel, aug.place_pixel):
            assert 0 <= p[0] < 320 and 0 <= p[1] < 160
        moved += aug.pick_pixel != pick
    assert moved >= 15


def test_rotation_is_counter_clockwise_in_the_x_y_plane():
    # +90 deg about the centre maps +x (a column step) to +y (a row step)
    m = se2_matrix((101, 101), math.pi / 2, (0.0, 0.0))
    assert transform_pixel(m, (50, 60)) == (60, 50)
    assert transform_pixel(se2_matrix((101, 101), 0.0, (3.0, -4.0)), (50, 50)) == (53, 46)
    color = np.zeros((101, 101, 3), np.uint8)
    color[50, 60] = 200
    out, _ = apply_se2(color, np.zeros((101, 101), np.float32), m)
    assert out[60, 50, 0] == 200


def test_spread_of_the_random_transforms():
    color, height, pick, place = _marked((400, 400))
    rng = np.random.default_rng(1)
    # labels near the centre are rarely rejected, so the samples show the raw distribution
    angles = [perturb(color, height, (200, 200), (210, 190), rng).angle for _ in range(400)]
    assert np.std(angles) == pytest.approx(math.radians(60), rel=0.15)


def test_unplaceable_labels_fall_back_to_identity_and_bad_labels_are_rejected():
    color, height, pick, place = _marked()
    aug = perturb(color, height, (0, 0), (319, 159), np.random.default_rng(2), translation_std=500.0, max_tries=3)
    assert aug.angle == 0.0 and aug.pick_pixel == (0, 0) and np.array_equal(aug.color, color)
    with pytest.raises(ValueError, match="outside the \\(320, 160\\) image"):
        perturb(color, height, (320, 0), place, np.random.default_rng(0))
