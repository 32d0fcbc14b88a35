"""Simulator figures: oracle demos per minute per task (one core), the primitive's wall time, render time.
Prints one JSON line per task.

    .venv/bin/python benchmarks/bench_sim.py [--episodes 10] [--tasks put-block-in-bowl-seen-colors ...]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

DEFAULT_TASKS = ("put-block-in-bowl-seen-colors", "stack-block-pyramid-seq-seen-colors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--robot", default="ur5")
    parser.add_argument("--renderer", default="auto")
    args = parser.parse_args()

    import numpy as np

    from cliport_ros.sim import SimEnvironment
    from cliport_ros.sim.demos import generate_demos

    for task in args.tasks:
        with tempfile.TemporaryDirectory() as out:
            summary = generate_demos(
                task, "train", args.episodes, out, robot=args.robot, renderer=args.renderer, progress=False
            )
            sizes = [os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)]
        # Primitive and rendering timings, separately, on fresh episodes.
        primitive_s, render_s, fuse_s = [], [], []
        with SimEnvironment(task, robot=args.robot, renderer=args.renderer) as env:
            for seed in range(1000, 1000 + 2 * max(2, args.episodes // 3), 2):
                env.reset(seed)
                while not env.done:
                    action = env.oracle()
                    t0 = time.perf_counter()
                    env.execute(action)
                    primitive_s.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    images = env.render()
                    render_s.append(time.perf_counter() - t0)
                    from cliport_ros.perception import fuse_views

                    t0 = time.perf_counter()
                    fuse_views([(i.rgb, i.depth, i.camera) for i in images], env.workspace)
                    fuse_s.append(time.perf_counter() - t0)
                    env.score = 100.0 * env.task.progress(env.scene)
                    env.step_count += 1
                    env.done = env.score >= 100.0 - 1e-6 or env.step_count >= env.max_steps
            renderer = env.renderer
        print(
            json.dumps(
                {
                    "benchmark": "sim",
                    "task": task,
                    "robot": args.robot,
                    "renderer": renderer,
                    "episodes": summary["episodes"],
                    "oracle_success_rate": summary["oracle_success_rate"],
                    "demos_per_minute": round(60.0 * summary["episodes"] / summary["seconds"], 1),
                    "seconds_per_episode": round(summary["seconds"] / max(summary["episodes"], 1), 2),
                    "primitive_median_s": round(float(np.median(primitive_s)), 3),
                    "render_3_views_median_s": round(float(np.median(render_s)), 3),
                    "fuse_median_s": round(float(np.median(fuse_s)), 4),
                    "episode_file_kb_mean": round(float(np.mean(sizes)) / 1024, 1) if sizes else None,
                }
            )
        )


if __name__ == "__main__":
    main()
