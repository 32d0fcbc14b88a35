"""How often a checkpoint's step is right from the states the oracle leaves, step by step, in the simulator.

An episode of a sequential task (stack-block-pyramid-seq: six placements) succeeds without recovery only if
every step does, so a step rate p gives about p^6. For each episode and each step index k, the episode is
reset and the oracle makes the first k steps (a clean state, as in the demos); then the policy decides and
its step is executed, with its pick and place as it would make them in an episode (unlike
``place_accuracy.py``, which judges the place from the oracle's pick). Prints one JSON line: per step index
the fraction of steps that raised the score, the outcomes (as ``cliport eval`` counts them), and the product.

.venv/bin/python benchmarks/step_accuracy.py --checkpoint <merged> --task stack-block-pyramid-seq-seen-colors --n 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def add_episode_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a measure over a checkpoint's episodes in the simulator (also episode_misses.py)."""
    from cliport_ros.model.config import TEST_TIME_FLIPS

    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--task", default="stack-block-pyramid-seq-seen-colors")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--n", type=int, default=20, help="episodes (indices first..first+n-1 of the split)")
    parser.add_argument("--first", type=int, default=0, help="index of the first episode of the split")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--test-time-flips",
        default=None,
        choices=TEST_TIME_FLIPS,
        help="replace the checkpoint's test_time_flips (default: keep it)",
    )


def policy_and_env(args: argparse.Namespace):
    """The checkpoint's policy (fp32 on the CPU, ``args.threads`` torch threads) and a simulator of the task."""
    import torch

    from cliport_ros.model.policy import Policy
    from cliport_ros.sim import SimEnvironment

    torch.set_num_threads(args.threads)
    policy = Policy.load(args.checkpoint, device="cpu", precision="fp32", test_time_flips=args.test_time_flips)
    return policy, SimEnvironment(args.task)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_episode_arguments(parser)
    args = parser.parse_args()

    from cliport_ros.sim import seed_for
    from cliport_ros.training.evaluate import STEP_OUTCOMES, policy_step

    policy, env = policy_and_env(args)
    by_step: dict[int, list[str]] = {}
    start = time.perf_counter()
    for i in range(args.first, args.first + args.n):
        seed = seed_for(args.split, i)
        k = 0
        while True:
            obs = env.reset(seed=seed, split=args.split)
            for _ in range(k):
                result = env.step(dataclasses.replace(env.oracle(), primitive=env.task.primitive))
                obs = result.observation
            if env.done:  # the oracle has finished the task in k steps: nothing left to judge
                break
            by_step.setdefault(k, []).append(policy_step(policy, env, obs)[2])
            k += 1
    rates = {k: sum(o == "progress" for o in v) / len(v) for k, v in sorted(by_step.items())}
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "task": args.task,
                "split": args.split,
                "episodes": args.n,
                "first": args.first,
                "steps_judged": sum(len(v) for v in by_step.values()),
                "step_right": round(
                    sum(r * len(by_step[k]) for k, r in rates.items()) / sum(map(len, by_step.values())), 3
                ),
                "step_right_by_index": {k: round(r, 3) for k, r in rates.items()},
                "product_of_step_rates": round(math.prod(rates.values()), 3),
                "outcomes": {o: sum(v.count(o) for v in by_step.values()) for o in STEP_OUTCOMES},
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
