"""`cliport import` (a reference checkpoint -> our folder) and `cliport predict` (one decision on a saved view).

Each prints one JSON line on success; errors go to stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from cliport_ros.cli import Command
from cliport_ros.model.config import UP_BATCHNORM_STATS


# --------------------------------------------------------------------------------------------- import
def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpt", help="a reference checkpoint (.ckpt of the reference's 'cliport' agent)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (model.safetensors + config.json)")
    p.add_argument(
        "--batchnorm",
        default="batch",
        choices=UP_BATCHNORM_STATS,
        help="how the up blocks' batch norms normalise at inference: batch (default; each forward's own "
        "statistics, as the reference's eval.py ran: reproduces the paper's tables) or running (their running "
        "statistics, agent.eval())",
    )


def _import_run(args: argparse.Namespace) -> int:
    from cliport_ros.model.importer import import_reference_checkpoint
    from cliport_ros.model.policy import CheckpointError

    t0 = time.perf_counter()
    try:
        folder, report = import_reference_checkpoint(args.ckpt, args.out, up_batchnorm_stats=args.batchnorm)
    except (CheckpointError, OSError, ValueError) as exc:
        print(f"cliport import: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "out": str(folder),
                "agent": report.agent,
                "tensors_in": report.tensors_in,
                "tensors_out": report.tensors_out,
                "dropped_unused": len(report.dropped),
                "clip_per_net": report.clip_per_net,
                "clip_entries_differing": len(report.clip_differing),
                "up_batchnorm_stats": args.batchnorm,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    )
    return 0


# --------------------------------------------------------------------------------------------- predict
def _pixel(text: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected ROW,COL (two integers), got {text!r}") from exc
    return row, col


def _predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    p.add_argument(
        "--color",
        "--colour",
        dest="color",
        required=True,
        help="top-down color view, a PNG of the workspace grid (rows = base y, columns = base x)",
    )
    p.add_argument("--height", required=True, help="top-down height map, a .npy float array in metres")
    p.add_argument("--instruction", required=True, help="e.g. 'put the red blocks in a green bowl'")
    p.add_argument("--pick-pixel", type=_pixel, default=None, metavar="ROW,COL", help="fix the pick for the place map")
    p.add_argument("--logits", default=None, metavar="OUT.npz", help="save the raw logits 'pick' and 'place'")
    p.add_argument("--out", default=None, help="folder for the heatmap pictures (pick.png, place.png, panel.png)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument(
        "--batchnorm",
        default=None,
        choices=UP_BATCHNORM_STATS,
        help="reference layout: override the checkpoint's up-block batch-norm statistics (batch | running)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


class _View:
    def __init__(self, color: np.ndarray, height: np.ndarray) -> None:
        self.color, self.height = color, height


def load_view(color_path: str | Path, height_path: str | Path) -> _View:
    """A saved top-down view: an RGB PNG and a .npy height map of the same size, with clear errors."""
    import cv2

    bgr = cv2.imread(str(color_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{color_path} is not a readable image")
    try:
        height = np.load(str(height_path), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{height_path} is not a .npy array: {exc}") from exc
    if height.ndim != 2 or not np.issubdtype(height.dtype, np.number):
        raise ValueError(f"{height_path} must hold a 2-D numeric height map, got {height.dtype} {height.shape}")
    if not np.isfinite(height).all():
        raise ValueError(f"{height_path} holds NaN or infinite heights")
    return _View(np.ascontiguousarray(bgr[:, :, ::-1]), height.astype(np.float32))


def predict(
    checkpoint: str | Path | None,
    view: Any,
    instruction: str,
    pick_pixel: tuple[int, int] | None = None,
    device: str = "auto",
    precision: str = "auto",
    batchnorm: str | None = None,
):
    """One decision of a checkpoint on a view, with its logits (the code path of `cliport predict`)."""
    from cliport_ros.model.policy import Policy
    from cliport_ros.resources import DEFAULT_CHECKPOINT, checkpoint_path

    path = Path(checkpoint) if checkpoint else checkpoint_path(DEFAULT_CHECKPOINT)
    policy = Policy.load(path, device=device, precision=precision)
    if batchnorm is not None:
        policy.model.set_up_batchnorm_stats(batchnorm)
    return policy, policy.act(view, instruction, pick_pixel=pick_pixel, keep_logits=True)


def decision_json(policy: Any, out: Any) -> dict[str, Any]:
    """The JSON line of one decision: pixels, rotation, confidences, base-frame poses, timings."""
    act = out.pick_place

    def pose(p: Any) -> dict[str, Any]:
        return {"position": [round(v, 5) for v in p.position], "orientation": [round(v, 6) for v in p.orientation]}

    return {
        "instruction": act.instruction,
        "pick_pixel": list(out.pick_pixel),  # the pick used (--pick-pixel, else the pick net's argmax)
        "pick_net_argmax": [int(v) for v in np.unravel_index(int(out.pick_heatmap.argmax()), out.pick_heatmap.shape)],
        "place_pixel": list(out.place_pixel),
        "place_rotation_bin": out.place_rotation_bin,
        "place_rotation_rad": round(out.place_rotation, 6),
        "pick_confidence": act.pick_confidence,
        "place_confidence": act.place_confidence,
        "frame_id": act.frame_id,
        "pick_pose": pose(act.pick),
        "place_pose": pose(act.place),
        "timings_ms": {k: round(v, 1) for k, v in out.timings.items()},
        "device": str(policy.device),
    }


def _predict_run(args: argparse.Namespace) -> int:
    import torch

    from cliport_ros.model.policy import CheckpointError

    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    try:
        view = load_view(args.color, args.height)
        policy, out = predict(
            args.checkpoint, view, args.instruction, args.pick_pixel, args.device, args.precision, args.batchnorm
        )
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"cliport predict: {exc}", file=sys.stderr)
        return 2
    result = decision_json(policy, out)
    if args.logits:
        # the layout of the golden fixture: pick (rows, cols), place (rotations, rows, cols), float32 logits
        np.savez_compressed(
            args.logits,
            pick=out.pick_logits.astype(np.float32),
            place=out.place_logits.astype(np.float32),
            pick_pixel=np.asarray(out.pick_pixel, np.int64),
        )
        result["logits"] = str(args.logits)
    if args.out:
        import cv2

        from cliport_ros.training.evaluate import decision_panel, heatmap_image

        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in (
            ("pick.png", heatmap_image(out.pick_heatmap)),
            ("place.png", heatmap_image(out.place_heatmap)),
            ("panel.png", decision_panel(view.color, view.height, out)),
        ):
            cv2.imwrite(str(folder / name), np.ascontiguousarray(image[:, :, ::-1]))
        result["pictures"] = str(folder)
    print(json.dumps(result))
    return 0


import_checkpoint = Command(add_arguments=_import_arguments, run=_import_run)
predict_command = Command(add_arguments=_predict_arguments, run=_predict_run)
