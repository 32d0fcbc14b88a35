"""Whether a checkpoint's place follows the place words of a stack-block-pyramid instruction, in the simulator.

In stack-block-pyramid-seq the goals come in one order, so a policy can tell where a block goes from how far
the pyramid has come, without reading the place words: the fourth block always goes on the first two. This
measures, at the state the oracle leaves before goal ``--goal`` (3: the first block of the middle row, whose two
spots are both open; 1: the middle of the stand, with the darker side open too), where the policy's place
lands: on the named spot or on the other open one, for the instruction as given and for the same instruction
naming the other spot (3: "on the {b} and {c} blocks" for "on the {a} and {b} blocks"; 1: "the darker brown
side" for "the middle of the stand"). A policy that reads the words puts the block on the named spot in both
(``follows_the_words``); one that does not puts it on the same spot in both. Also the probability mass of the
place map within 6 px of each spot. Prints one JSON line per state, then a summary.

.venv/bin/python benchmarks/place_words.py --checkpoint checkpoints/tiny-stack-block-pyramid-seq-seen-colors --n 20
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from step_accuracy import add_episode_arguments, policy_and_env  # noqa: E402  (beside this script)

# goal asked for -> the other spot that is open before it, in stack-block-pyramid-seq's goal order
OTHER_SPOT = {1: 2, 3: 4}


def other_instruction(instruction: str, goal: int, goals: list) -> str:
    """The instruction naming the other open spot instead of the asked one."""
    if goal == 1:
        return instruction.replace("the middle of the stand", "the darker brown side")
    match = re.search(r"on the (\w+) and (\w+) blocks$", instruction)
    if match is None:
        raise ValueError(f"not a middle-row instruction: {instruction!r}")
    third = re.match(r"put the (\w+) block", goals[2].instruction).group(1)  # the block on the darker side
    return instruction[: match.start()] + f"on the {match.group(2)} and {third} blocks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_episode_arguments(parser)
    parser.add_argument("--goal", type=int, default=3, choices=sorted(OTHER_SPOT))
    args = parser.parse_args()
    if not args.task.startswith("stack-block-pyramid-seq"):
        raise SystemExit("this measure is for stack-block-pyramid-seq, whose goals come in the paper's order")

    import numpy as np

    from cliport_ros.sim import seed_for

    policy, env = policy_and_env(args)
    ws = policy.workspace
    named = {"asked": 0, "other": 0}
    follows = 0
    start = time.perf_counter()
    for i in range(args.first, args.first + args.n):
        seed = seed_for(args.split, i)
        obs = env.reset(seed=seed, split=args.split)
        for _ in range(args.goal):
            obs = env.step(dataclasses.replace(env.oracle(), primitive=env.task.primitive)).observation
        goals = env.task.goals
        spots = {k: np.array(ws.xyz_to_pixel(goals[k].targets[0][0])) for k in (args.goal, OTHER_SPOT[args.goal])}
        row = {"seed": seed}
        for which, text, spot in (
            ("asked", obs.instruction, args.goal),
            ("other", other_instruction(obs.instruction, args.goal, goals), OTHER_SPOT[args.goal]),
        ):
            out = policy.act(obs.view, text)
            place = np.array(out.place_pixel)
            nearest = min(spots, key=lambda k: float(np.hypot(*(place - spots[k]))))
            heat = out.place_heatmap / out.place_heatmap.sum()
            mass = {
                k: round(float(heat[max(0, r - 6) : r + 7, max(0, c - 6) : c + 7].sum()), 3)
                for k, (r, c) in spots.items()
            }
            named[which] += nearest == spot
            row[which] = {"instruction": text, "on_named_spot": nearest == spot, "mass_by_goal": mass}
        follows += row["asked"]["on_named_spot"] and row["other"]["on_named_spot"]
        print(json.dumps(row), flush=True)
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "goal": args.goal,
                "states": args.n,
                "first": args.first,
                "on_named_spot": round(named["asked"] / args.n, 3),
                "on_named_spot_when_the_other_is_named": round(named["other"] / args.n, 3),
                "follows_the_words": round(follows / args.n, 3),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
