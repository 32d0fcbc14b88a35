"""How close a checkpoint's picks and places come to the oracle's on demos, in pixels and rotation bins.

For tasks that check the placed pose (stack-block-pyramid-seq: 1 cm and 15 degrees), what `half_accuracy.py`
counts (the right colour) is not enough. For every step of the demos: the pick pixel's distance to the
oracle's; the place, computed from the oracle's pick, as its distance to the oracle's place pixel and its
rotation's distance in bins to the oracle's, modulo the object's symmetry (a rotation-blind net is within one
bin of a 90-degree symmetry's 9 bins a third of the time). Prints one JSON line.

``--check-labels`` (no checkpoint needed) checks the demos' rotation labels against the images instead: the
crop about the pick pixel, turned by the label's rotation as the place net turns it, should show the block's
edges parallel to the stand's at the place pixel (first step of each stack-block-pyramid-seq demo, edge
orientations from the heightmap's gradients, modulo 90 degrees).

``--step K`` judges only the K-th step of each demo (from 0): one goal of a sequential task in plain demos (in
recovery demos the K-th recorded step may be another goal's), e.g. K=3 for the pyramid's fourth block, whose
place words alone say which of two look-alike spots. Run on training demos and on held-out ones, it tells a net
that has not fitted its own demos from one that does not generalise.

.venv/bin/cliport demos stack-block-pyramid-seq-seen-colors --split val --n 30 --out data/sbp-val
.venv/bin/python benchmarks/place_accuracy.py --checkpoint runs/sbp --data data/sbp-val --split val
.venv/bin/python benchmarks/place_accuracy.py --check-labels --data data/sbp-val --split val
.venv/bin/python benchmarks/place_accuracy.py --checkpoint runs/sbp --data data/sbp --split train --n-demos 100 --step 3
"""

from __future__ import annotations

import argparse
import json
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from half_accuracy import decide  # noqa: E402  (beside this script)


def edge_orientation(height: np.ndarray) -> float:
    """Dominant edge orientation (degrees, modulo 90) of a heightmap patch, from its gradients."""
    gy, gx = np.gradient(height.astype(np.float64))
    weight = np.hypot(gx, gy)
    return math.degrees(float(np.angle((weight * np.exp(4j * np.arctan2(gy, gx))).sum())) / 4)


def wrap90(degrees: float) -> float:
    return (degrees + 45.0) % 90.0 - 45.0


def check_labels(samples, n_rotations: int, crop: int) -> dict:
    """Mean |block edges in the label-turned crop - stand edges| (deg, mod 90), and the same with the sign of
    the label flipped (what a wrong convention would give)."""
    import torch
    import torch.nn.functional as F

    from cliport_ros.model.policy import rotation_bin
    from cliport_ros.model.transport import rotated_crops
    from cliport_ros.sim.tasks.blocks import BLOCK_SIZE, StackBlockPyramidSeq

    # heights (m) that only a block reaches, and that cover the stand but no block
    block_min, stand_max = BLOCK_SIZE / 2, 1.5 * StackBlockPyramidSeq.stand_height
    aligned, flipped = [], []
    for s in samples:
        h = s.height
        rows, cols = np.mgrid[: h.shape[0], : h.shape[1]]
        r1, c1 = s.place_pixel
        near_place = (rows - r1) ** 2 + (cols - c1) ** 2 <= 14**2
        stand = edge_orientation(np.where(near_place, np.clip(h, 0, stand_max), 0))
        padded = F.pad(torch.from_numpy(h)[None, None].float(), (crop // 2,) * 4)
        centre = torch.tensor([[s.pick_pixel[0] + crop // 2, s.pick_pixel[1] + crop // 2]], dtype=torch.float32)
        label = rotation_bin(s.place_yaw, n_rotations)
        for bin_, out in ((label, aligned), ((-label) % n_rotations, flipped)):
            theta = torch.tensor([bin_ * 2 * math.pi / n_rotations])
            patch = rotated_crops(padded, centre, crop, theta)[0, 0, 0].numpy()
            yy, xx = np.mgrid[:crop, :crop]
            block = np.where((yy - crop // 2) ** 2 + (xx - crop // 2) ** 2 <= 12**2, patch, 0) * (patch > block_min)
            out.append(abs(wrap90(edge_orientation(block) - stand)))
    return {
        "demos": len(samples),
        "label_turned_block_vs_stand_deg": round(float(np.mean(aligned)), 1),
        "sign_flipped_label_deg": round(float(np.mean(flipped)), 1),
        "chance_deg": 22.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--task", default="stack-block-pyramid-seq-seen-colors")
    parser.add_argument("--data", default="data/sbp-val")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--n-demos", type=int, default=30)
    parser.add_argument("--symmetry", type=int, default=90, help="the placed objects' symmetry in degrees")
    parser.add_argument("--check-labels", action="store_true")
    parser.add_argument("--step", type=int, help="judge only this step of each demo (from 0)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    if args.step is not None and args.step < 0:
        parser.error(f"--step counts from 0, got {args.step}")

    import torch

    from cliport_ros.model.policy import Policy, rotation_bin
    from cliport_ros.training.train import load_samples

    torch.set_num_threads(args.threads)
    demos, _ = load_samples(args.data, args.task, args.n_demos, split=args.split)
    if args.check_labels:
        from cliport_ros.model.config import ModelConfig

        cfg = ModelConfig.named("tiny")
        print(json.dumps({"data": args.data, **check_labels([ep[0] for ep in demos], cfg.n_rotations, cfg.crop_size)}))
        return
    if not args.checkpoint:
        parser.error("--checkpoint is needed (or --check-labels)")
    policy = Policy.load(args.checkpoint, device="cpu", precision="fp32")
    model = policy.model.eval()
    n_rot = policy.cfg.n_rotations
    period = args.symmetry * n_rot // 360 or n_rot
    if args.step is None:
        samples = [s for ep in demos for s in ep]
    else:
        samples = [ep[args.step] for ep in demos if len(ep) > args.step]
        if not samples:
            raise SystemExit(f"no demo in {args.data} has a step {args.step}")
    pick_err, place_err, rot_err = [], [], []
    with torch.inference_mode():
        for s in samples:
            (row, col), (rot, place_row, place_col) = decide(model, s)
            pick_err.append(math.hypot(row - s.pick_pixel[0], col - s.pick_pixel[1]))
            place_err.append(math.hypot(place_row - s.place_pixel[0], place_col - s.place_pixel[1]))
            off = (rot - rotation_bin(s.place_yaw, n_rot)) % period
            rot_err.append(min(off, period - off))
    pick_err, place_err, rot_err = map(np.asarray, (pick_err, place_err, rot_err))
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "step": policy.metadata.get("step"),
                "demo_step": args.step,
                "steps_judged": len(samples),
                "pick_error_px_median": round(float(np.median(pick_err)), 1),
                "pick_within_5px": round(float(np.mean(pick_err <= 5)), 3),
                "place_error_px_median": round(float(np.median(place_err)), 1),
                "place_within_3px": round(float(np.mean(place_err <= 3)), 3),
                # a block is 13 px wide: beyond that a place is at another slot, not a near miss
                "place_within_13px": round(float(np.mean(place_err <= 13)), 3),
                "rotation_within_1_bin": round(float(np.mean(rot_err <= 1)), 3),
                # what the task checks (1 cm, 15 degrees), both at once
                "place_pose_within_3px_1_bin": round(float(np.mean((place_err <= 3) & (rot_err <= 1))), 3),
                "rotation_within_1_bin_by_chance": round(min(3, period) / period, 3),
                "rotation_error_bins_mean": round(float(rot_err.mean()), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
