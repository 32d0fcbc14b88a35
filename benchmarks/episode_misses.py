"""Where a checkpoint's episodes of a pose-checked sequential task go wrong, in the simulator.

For each episode (as ``cliport eval`` runs it) and each step: the goal asked for, the step's outcome, and where
the named object ended against its target (distance in x-y, height, yaw modulo the object's symmetry, as the
task checks them: stack-block-pyramid-seq allows 10 mm and 15 degrees). Prints one JSON line per episode, then
a summary: the first miss of each episode by kind (a near miss within 2.5 tolerances, a turn past the yaw
tolerance, a place farther off), how many episodes recovered after it, and how many places moved the object
less than ``--still-mm`` (a place that puts the block back where it lay).

.venv/bin/python benchmarks/episode_misses.py --checkpoint checkpoints/tiny-stack-block-pyramid-seq-seen-colors --n 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from step_accuracy import add_episode_arguments, policy_and_env  # noqa: E402  (beside this script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_episode_arguments(parser)
    parser.add_argument("--still-mm", type=float, default=6.0, help="a place moving the object less is 'still'")
    args = parser.parse_args()

    import numpy as np

    from cliport_ros.sim import seed_for
    from cliport_ros.sim.tasks.base import wrap_angle
    from cliport_ros.training.evaluate import policy_step

    policy, env = policy_and_env(args)
    first_misses: list[dict] = []
    tolerances: dict[int, tuple[float, float]] = {}  # goal index -> (mm, degrees)
    recovered = still = places = 0
    start = time.perf_counter()
    for i in range(args.first, args.first + args.n):
        seed = seed_for(args.split, i)
        obs = env.reset(seed=seed, split=args.split)
        if not env.task.sequential or not all(g.check_yaw for g in env.task.goals):
            raise SystemExit(f"{args.task}: this measure is for sequential tasks whose goals check the pose")
        steps = []
        while not env.done and len(steps) < env.max_steps:
            goal = env.task.active_goals()[0]
            index = env.task.goals.index(goal)
            obj, ((tx, ty, tz), tyaw) = goal.objects[0], goal.targets[0]
            before, _ = env.scene.pose(obj)
            out, result, outcome = policy_step(policy, env, obs)
            pos, yaw = env.scene.pose(obj)
            pick = out.pick_place.pick.position
            # the goal whose target the named object ended nearest (another goal's spot: the wrong place was chosen)
            nearest = min(
                range(len(env.task.goals)),
                key=lambda k: math.dist(pos[:2], env.task.goals[k].targets[0][0][:2]),
            )
            tolerances[index] = (1000 * goal.position_tolerance, math.degrees(goal.yaw_tolerance))
            moved = 1000 * math.hypot(pos[0] - before[0], pos[1] - before[1])
            steps.append(
                {
                    "goal": index,
                    "outcome": outcome,
                    "xy_mm": round(1000 * math.hypot(pos[0] - tx, pos[1] - ty), 1),
                    "z_mm": round(1000 * (pos[2] - tz), 1),
                    "yaw_deg": round(math.degrees(wrap_angle(yaw - tyaw, env.scene.objects[obj].symmetry)), 1),
                    "moved_mm": round(moved, 1),
                    "nearest_goal": nearest,
                    "pick_offset_mm": round(1000 * math.hypot(pick[0] - before[0], pick[1] - before[1]), 1),
                }
            )
            if outcome == "place_wrong":
                places += 1
                still += moved < args.still_mm
            obs = result.observation
        success = env.score >= 100.0 - 1e-6
        miss = next((s for s in steps if s["outcome"] != "progress"), None)
        if miss is not None:
            first_misses.append(miss)
            recovered += success
        print(json.dumps({"seed": seed, "score": round(float(env.score), 1), "steps": steps}), flush=True)

    def kind(m: dict) -> str:
        if m["outcome"] != "place_wrong":
            return m["outcome"]
        mm, degrees = tolerances[m["goal"]]
        if abs(m["yaw_deg"]) > degrees and m["xy_mm"] <= mm:
            return "turned"
        return "near" if m["xy_mm"] <= 2.5 * mm else "far"

    kinds = [kind(m) for m in first_misses]
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "task": args.task,
                "split": args.split,
                "episodes": args.n,
                "first": args.first,
                "with_a_miss": len(first_misses),
                "recovered_after_it": recovered,
                "first_miss_kind": {k: kinds.count(k) for k in sorted(set(kinds))},
                "first_miss_goal": {
                    str(g): [m["goal"] for m in first_misses].count(g) for g in range(len(env.task.goals))
                },
                "first_miss_xy_mm_median": float(np.median([m["xy_mm"] for m in first_misses]))
                if first_misses
                else None,
                "wrong_places": places,
                "still_places": still,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
