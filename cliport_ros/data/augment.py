"""The paper's SE(2) augmentation of a top-down view with its pick and place labels.

A random rotation about the image centre (angle ~ N(0, 60 deg)) and translation (~ N(0, 26.7 px) per axis),
resampled until both label pixels stay inside the image. The labels move with the image. The place
rotation label (the object's yaw change between pick and place) is unchanged: a planar rotation of the
whole scene turns the picked object and its target alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

ROTATION_STD_RAD = math.radians(60.0)
TRANSLATION_STD_PX = 26.7
MAX_TRIES = 100


@dataclass(frozen=True)
class Augmented:
    """A transformed view and its labels; ``matrix`` maps (col, row, 1) of the input to the output."""

    color: np.ndarray
    height: np.ndarray
    pick_pixel: tuple[int, int]
    place_pixel: tuple[int, int]
    matrix: np.ndarray  # 2 x 3
    angle: float  # radians, counter-clockwise in the x (col) - y (row) plane


def se2_matrix(shape: tuple[int, int], angle: float, translation: tuple[float, float]) -> np.ndarray:
    """2x3 affine map of (col, row): rotate by ``angle`` about the centre, then shift (d_row, d_col)."""
    rows, cols = shape
    centre = np.array([(cols - 1) / 2.0, (rows - 1) / 2.0])
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    shift = centre - rot @ centre + np.array([translation[1], translation[0]])
    return np.hstack([rot, shift[:, None]])


def transform_pixel(matrix: np.ndarray, pixel: tuple[int, int]) -> tuple[int, int]:
    """(row, col) through a 2x3 (col, row) affine map, rounded to the nearest pixel."""
    col, row = matrix @ np.array([pixel[1], pixel[0], 1.0])
    return (int(round(row)), int(round(col)))


def transform_point(matrix: np.ndarray, point: tuple[float, float]) -> tuple[float, float]:
    """(row, col), whole or fractional, through a 2x3 (col, row) affine map, unrounded."""
    col, row = matrix @ np.array([float(point[1]), float(point[0]), 1.0])
    return (float(row), float(col))


def apply_se2(color: np.ndarray, height: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp color and height with nearest-neighbour sampling (no blended colors or heights); outside = 0."""
    rows, cols = height.shape
    flags = cv2.INTER_NEAREST
    out_c = cv2.warpAffine(np.ascontiguousarray(color), matrix, (cols, rows), flags=flags, borderValue=0)
    out_h = cv2.warpAffine(
        np.ascontiguousarray(height, dtype=np.float32), matrix, (cols, rows), flags=flags, borderValue=0
    )
    return out_c, out_h


def perturb(
    color: np.ndarray,
    height: np.ndarray,
    pick_pixel: tuple[int, int],
    place_pixel: tuple[int, int],
    rng: np.random.Generator,
    rotation_std: float = ROTATION_STD_RAD,
    translation_std: float = TRANSLATION_STD_PX,
    max_tries: int = MAX_TRIES,
) -> Augmented:
    """A random SE(2) transform of the view with both labels kept inside (identity if none is found)."""
    color = np.asarray(color)
    height = np.asarray(height)
    if color.shape[:2] != height.shape or color.ndim != 3:
        raise ValueError(f"need color (rows, cols, 3) and height (rows, cols), got {color.shape} and {height.shape}")
    if rotation_std < 0 or translation_std < 0 or max_tries < 1:
        raise ValueError("rotation_std and translation_std must be >= 0 and max_tries >= 1")
    shape = height.shape
    for pixel in (pick_pixel, place_pixel):
        if not (0 <= pixel[0] < shape[0] and 0 <= pixel[1] < shape[1]):
            raise ValueError(f"label pixel {tuple(pixel)} is outside the {shape} image")
    for _ in range(max_tries):
        angle = float(rng.normal(0.0, rotation_std))
        shift = (float(rng.normal(0.0, translation_std)), float(rng.normal(0.0, translation_std)))
        matrix = se2_matrix(shape, angle, shift)
        pick, place = transform_pixel(matrix, pick_pixel), transform_pixel(matrix, place_pixel)
        if all(0 <= p[0] < shape[0] and 0 <= p[1] < shape[1] for p in (pick, place)):
            out_c, out_h = apply_se2(color, height, matrix)
            return Augmented(out_c, out_h, pick, place, matrix, angle)
    identity = se2_matrix(shape, 0.0, (0.0, 0.0))
    return Augmented(
        color.copy(),
        height.copy(),
        (int(pick_pixel[0]), int(pick_pixel[1])),
        (int(place_pixel[0]), int(place_pixel[1])),
        identity,
        0.0,
    )
