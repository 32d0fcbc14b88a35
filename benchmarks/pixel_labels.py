"""How far the oracle's own places land from their targets once executed as a policy executes them, at pixel centres.

A policy picks and places at the centres of the pixels its nets choose. This runs the oracle's episodes three
ways and reports, per goal of a pose-checked sequential task, the median and 90th percentile distance (x-y, mm)
of the placed object from its target, and whether the episode reached full score:

- ``exact``: the oracle's actions as they are (what the demos record);
- ``recorded``: pick and place moved to the centres of the recorded label pixels (a perfect policy trained with
  ``--place-label demo``);
- ``centred``: the pick at its pixel's centre, the place at the pixel ``centred_labels`` gives for it (a perfect
  policy trained with ``--place-label pick_centre``, the default).

.venv/bin/python benchmarks/pixel_labels.py --n 30
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

MODES = ("exact", "recorded", "centred")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="stack-block-pyramid-seq-seen-colors")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--n", type=int, default=30, help="episodes (indices first..first+n-1 of the split)")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {MODES}")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in MODES for m in modes):
        raise SystemExit(f"--modes: one or more of {MODES}, got {args.modes!r}")

    import numpy as np

    from cliport_ros.data.augment import se2_matrix
    from cliport_ros.sim import SimEnvironment, seed_for
    from cliport_ros.training.train import centred_labels
    from cliport_ros.types import Pose

    env = SimEnvironment(args.task)
    ws = env.workspace
    identity = se2_matrix(ws.shape, 0.0, (0.0, 0.0))

    def executed(action, height: np.ndarray, mode: str):
        if mode == "exact":
            return action
        if mode == "recorded":
            pick_px = ws.xyz_to_pixel(action.pick.position)
            place_px = ws.xyz_to_pixel(action.place.position)
        else:
            pick_px, (place_px,) = centred_labels(
                ws.xyz_to_point(action.pick.position),
                ws.xyz_to_point(action.place.position),
                [action.place.yaw],
                identity,
                ws.shape,
            )
        pick = Pose.from_xyz_yaw(ws.pixel_to_xyz(pick_px, height), action.pick.yaw)
        place = Pose.from_xyz_yaw(ws.pixel_to_xyz(place_px, height), action.place.yaw)
        return dataclasses.replace(action, pick=pick, place=place)

    for mode in modes:
        errors: dict[int, list[float]] = {}
        full = 0
        for i in range(args.first, args.first + args.n):
            obs = env.reset(seed=seed_for(args.split, i), split=args.split)
            if not env.task.sequential or not all(g.check_yaw for g in env.task.goals):
                raise SystemExit(f"{args.task}: this measure is for sequential tasks whose goals check the pose")
            while not env.done and env.step_count < env.max_steps:
                goal = env.task.active_goals()[0]
                index = env.task.goals.index(goal)
                obj, ((tx, ty, _), _) = goal.objects[0], goal.targets[0]
                action = executed(env.oracle(), np.asarray(obs.view.height, np.float32), mode)
                obs = env.step(action).observation
                pos, _ = env.scene.pose(obj)
                errors.setdefault(index, []).append(1000 * math.hypot(pos[0] - tx, pos[1] - ty))
            full += env.score >= 100.0 - 1e-6
        print(
            json.dumps(
                {
                    "mode": mode,
                    "task": args.task,
                    "split": args.split,
                    "episodes": args.n,
                    "first": args.first,
                    "full_score": full,
                    "median_mm": {str(g): round(float(np.median(e)), 2) for g, e in sorted(errors.items())},
                    "p90_mm": {str(g): round(float(np.percentile(e, 90)), 2) for g, e in sorted(errors.items())},
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
