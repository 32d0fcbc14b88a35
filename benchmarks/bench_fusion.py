"""Fusion speed: three 640x480 simulated RGB-D views -> one 320x160 top-down view. Prints one JSON line.

.venv/bin/python benchmarks/bench_fusion.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--task", default="put-block-in-bowl-seen-colors")
    args = parser.parse_args()

    from cliport_ros.perception import fuse_views
    from cliport_ros.sim import SimEnvironment

    with SimEnvironment(args.task) as env:
        obs = env.reset(0)
        views = [(im.rgb, im.depth, im.camera) for im in obs.images]
        fuse_views(views, env.workspace)  # warm the ray cache, as a running node would be
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fuse_views(views, env.workspace)
            times.append(time.perf_counter() - t0)
        cold_t0 = time.perf_counter()
        from cliport_ros.perception.fusion import _ray_directions

        _ray_directions.cache_clear()
        fuse_views(views, env.workspace)
        cold = time.perf_counter() - cold_t0
    times.sort()
    median = times[len(times) // 2]
    print(
        json.dumps(
            {
                "benchmark": "fusion",
                "views": len(views),
                "image": f"{views[0][0].shape[1]}x{views[0][0].shape[0]}",
                "median_ms": round(1000 * median, 2),
                "min_ms": round(1000 * times[0], 2),
                "first_call_ms": round(1000 * cold, 2),
                "fusions_per_s": round(1.0 / median, 1),
                "views_per_s": round(len(views) / median, 1),
                "renderer": env.renderer,
            }
        )
    )


if __name__ == "__main__":
    main()
