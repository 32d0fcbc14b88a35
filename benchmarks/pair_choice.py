"""Which pair of stack-block-pyramid's middle row a checkpoint puts the fourth block on, from states the oracle builds.

The fourth step's words ("on the red and green blocks") are all that tell its pair from the fifth's, and a policy
builds the base row a few millimetres and degrees off. For each episode the oracle makes the first three places,
exactly or (``--place-noise MM,DEG``, as ``cliport demos --place-noise``) each executed a little off; then the
policy decides the fourth step (its own pick) and the place counts as right when it is nearer the fourth goal's
target than the fifth's. Prints one JSON line per episode, then a summary: right of judged, and the margin
(log-probability of the best place near the right target minus near the other, over rotations) as percentiles.
A net that reads the pair's colours is right whatever the noise; one that leans on the rows' exact look is not.

.venv/bin/python benchmarks/pair_choice.py --checkpoint checkpoints/tiny-stack-block-pyramid-seq-seen-colors --n 200
.venv/bin/python benchmarks/pair_choice.py --checkpoint checkpoints/tiny-stack-block-pyramid-seq-seen-colors --n 200 \
  --place-noise 3,6
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from step_accuracy import add_episode_arguments, policy_and_env  # noqa: E402  (beside this script)

NEAR_PX = 4  # a place within this many pixels of a target counts for that target's margin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_episode_arguments(parser)
    parser.add_argument("--place-noise", default=None, metavar="MM,DEG", help="the oracle's places executed off")
    args = parser.parse_args()

    import numpy as np
    import torch

    from cliport_ros.sim import seed_for
    from cliport_ros.sim.demos import PlaceNoise

    noise = PlaceNoise.parse(args.place_noise) if args.place_noise else None
    policy, env = policy_and_env(args)
    ws = env.workspace
    right, margins, skipped = 0, [], 0

    def goal_now() -> int | None:
        """Index of the goal the episode is at (None once it is done)."""
        active = env.task.active_goals()
        return env.task.goals.index(active[0]) if active and not env.done else None

    start = time.perf_counter()
    for i in range(args.first, args.first + args.n):
        seed = seed_for(args.split, i)
        obs = env.reset(seed=seed, split=args.split)
        if len(env.task.goals) != 6 or not env.task.sequential:
            raise SystemExit(f"{args.task}: this measure is for stack-block-pyramid-seq (6 sequential goals)")
        rng = PlaceNoise.generator(seed)
        while (k := goal_now()) is not None and k < 3:
            action = env.oracle()
            obs = env.step(action if noise is None else noise.apply(action, rng)).observation
        if goal_now() != 3:
            skipped += 1  # a noisy place missed and the oracle's retries ran out: no fourth step to judge
            continue
        targets = [ws.xyz_to_pixel(env.task.goals[k].targets[0][0]) for k in (3, 4)]
        out = policy.act(obs.view, obs.instruction, keep_logits=True)
        logits = torch.from_numpy(out.place_logits)
        logp = torch.log_softmax(logits.flatten(), 0).reshape(logits.shape).amax(0).numpy()

        def near(pixel: tuple[int, int], logp=logp) -> float:
            r, c = pixel
            return float(logp[max(0, r - NEAR_PX) : r + NEAR_PX + 1, max(0, c - NEAR_PX) : c + NEAR_PX + 1].max())

        dist = [math.dist(out.place_pixel, t) for t in targets]
        ok = dist[0] < dist[1]
        margin = near(targets[0]) - near(targets[1])
        right += ok
        margins.append(margin)
        print(json.dumps({"seed": seed, "right": ok, "place_px": list(out.place_pixel), "margin": round(margin, 2)}))
    judged = len(margins)
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "split": args.split,
                "first": args.first,
                "episodes": args.n,
                "place_noise": args.place_noise,
                "judged": judged,
                "skipped": skipped,
                "right": right,
                "right_share": round(right / judged, 3) if judged else None,
                "margin_percentiles_10_50_90": [round(float(np.percentile(margins, q)), 2) for q in (10, 50, 90)]
                if judged
                else None,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
