"""One picture per step that people look at: the policy's heatmaps blended on the top-down view it saw, the pick
and place marked, the place rotation drawn, and the instruction and the step's outcome written on it.

Used by ``cliport sim --record`` and ``cliport eval --record`` (a PNG per step) and published by the CLIPort
node on ``cliport/overlay`` for RViz. ROS-free: numpy and OpenCV.
"""

from __future__ import annotations

import math
import textwrap

import numpy as np

# Colors (RGB).
PICK_COLOR = (40, 255, 40)
PLACE_COLOR = (40, 200, 255)
TEXT_COLOR = (240, 240, 240)
BACKGROUND = (24, 24, 24)
HEAT_WEIGHT = 0.5


def _jet(prob: np.ndarray) -> np.ndarray:
    import cv2

    scaled = np.asarray(prob, np.float64) / max(float(np.max(prob)), 1e-12)
    return cv2.applyColorMap((np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]


def _ascii(text: str) -> str:
    """OpenCV's fonts draw ASCII only."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def _panel(color: np.ndarray, heat: np.ndarray, scale: int) -> np.ndarray:
    import cv2

    blended = (1.0 - HEAT_WEIGHT) * color.astype(np.float32) + HEAT_WEIGHT * _jet(heat).astype(np.float32)
    rows, cols = color.shape[:2]
    return cv2.resize(blended.astype(np.uint8), (cols * scale, rows * scale), interpolation=cv2.INTER_NEAREST)


def _mark(panel: np.ndarray, pick: tuple[int, int], place: tuple[int, int], rotation: float, scale: int) -> None:
    import cv2

    def point(pixel: tuple[int, int]) -> tuple[int, int]:
        return (int(pixel[1] * scale + scale // 2), int(pixel[0] * scale + scale // 2))

    radius = 6 * scale
    cv2.circle(panel, point(pick), radius, PICK_COLOR, 2, cv2.LINE_AA)
    cv2.drawMarker(panel, point(pick), PICK_COLOR, cv2.MARKER_CROSS, radius, 1, cv2.LINE_AA)
    centre = point(place)
    cv2.circle(panel, centre, radius, PLACE_COLOR, 2, cv2.LINE_AA)
    # The place rotation relative to the pick: a line from the place's centre, turned by it from the image's
    # column axis (rotation 0 points along +column).
    length = 2.2 * radius
    end = (int(round(centre[0] + length * math.cos(rotation))), int(round(centre[1] - length * math.sin(rotation))))
    cv2.arrowedLine(panel, centre, end, PLACE_COLOR, 2, cv2.LINE_AA, tipLength=0.3)


def _text_strip(lines: list[str], width: int, scale: float = 0.5) -> np.ndarray:
    import cv2

    line_height = int(22 * scale / 0.5)
    strip = np.full((line_height * len(lines) + 8, width, 3), BACKGROUND, np.uint8)
    for k, line in enumerate(lines):
        cv2.putText(
            strip, line, (6, line_height * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, 1, cv2.LINE_AA
        )
    return strip


def decision_overlay(
    color: np.ndarray,
    pick_heatmap: np.ndarray,
    place_heatmap: np.ndarray,
    pick_pixel: tuple[int, int],
    place_pixel: tuple[int, int],
    place_rotation: float,
    instruction: str,
    outcome: str,
    scale: int = 2,
) -> np.ndarray:
    """(H, W, 3) uint8 RGB: [pick map on the view | place map on the view], the instruction above, the outcome
    below. ``color`` is the top-down view (rows, cols, 3) RGB; the heatmaps are (rows, cols) probabilities;
    pixels are (row, col); ``place_rotation`` is the place yaw relative to the pick (rad)."""
    color = np.ascontiguousarray(color, dtype=np.uint8)
    if color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f"color must be (rows, cols, 3), got {color.shape}")
    for name, heat in (("pick_heatmap", pick_heatmap), ("place_heatmap", place_heatmap)):
        if np.shape(heat) != color.shape[:2]:
            raise ValueError(f"{name} must be {color.shape[:2]}, got {np.shape(heat)}")
    if not 1 <= scale <= 8:
        raise ValueError(f"scale must be in [1, 8], got {scale}")
    panels = []
    for heat, label in ((pick_heatmap, "pick"), (place_heatmap, "place")):
        panel = _panel(color, heat, scale)
        _mark(panel, pick_pixel, place_pixel, place_rotation, scale)
        import cv2

        cv2.putText(panel, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, TEXT_COLOR, 1, cv2.LINE_AA)
        panels.append(panel)
    gap = np.full((panels[0].shape[0], 4, 3), BACKGROUND, np.uint8)
    body = np.concatenate([panels[0], gap, panels[1]], axis=1)
    width = body.shape[1]
    chars = max(20, width // 10)
    header = _text_strip(textwrap.wrap(_ascii(instruction), chars)[:3] or [""], width)
    footer = _text_strip(
        [f"{_ascii(outcome)}"[: chars * 2]]
        + [f"rotation {math.degrees(place_rotation):+.0f} deg, pick {tuple(pick_pixel)}, place {tuple(place_pixel)}"],
        width,
    )
    return np.concatenate([header, body, footer], axis=0)
