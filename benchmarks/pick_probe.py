"""Pick probe: train the pick net alone for a few thousand steps and print its held-out color accuracy.

Cheap (about 3 minutes per 1000 steps on one core) compared with a full training run judged in the simulator,
so it is how model variants were compared before committing hours to one: the pick net has to find the block
of the named color, the part of language grounding that the full policy fails most. A pick counts as right
when the pixel it chooses is on an object (height above 2 cm) of the color found under the oracle's pick pixel.
Prints one JSON line per evaluation.

.venv/bin/python benchmarks/pick_probe.py --data data/pbib --n-demos 1000 --held-out 100 --steps 4000 \
    --model-set lang_layers=8 --model-set 'semantic_decoder=[64,32,32,16,16,16,16,16]'
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

# a pick is on the named block when its pixel's color is this close (RGB, 0..255) to the oracle pick's
COLOR_TOLERANCE = 50.0
MIN_OBJECT_HEIGHT = 0.02  # m: blocks are 4 cm tall, the table is 0


def pick_is_right(sample, pixel: tuple[int, int]) -> bool:
    """The chosen pixel is on an object of the oracle pick's color."""
    import numpy as np

    want = sample.color[sample.pick_pixel[0], sample.pick_pixel[1]].astype(float)
    got = sample.color[pixel[0], pixel[1]].astype(float)
    return bool(np.linalg.norm(want - got) < COLOR_TOLERANCE and sample.height[pixel] > MIN_OBJECT_HEIGHT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="put-block-in-bowl-seen-colors")
    parser.add_argument("--data", default="data/pbib")
    parser.add_argument("--n-demos", type=int, default=1000, help="demos read; the last --held-out are held out")
    parser.add_argument("--held-out", type=int, default=100)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--every", type=int, default=1000, help="steps between evaluations")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-set", action="append", default=[], metavar="FIELD=VALUE")
    args = parser.parse_args()
    if not 0 < args.held_out < args.n_demos:
        parser.error("--held-out must be between 1 and --n-demos - 1")

    import numpy as np
    import torch
    import torch.nn.functional as F

    from cliport_ros.data.augment import perturb
    from cliport_ros.model.config import ModelConfig
    from cliport_ros.model.policy import CLIPortModel, image_tensor
    from cliport_ros.training.commands import parse_model_overrides
    from cliport_ros.training.train import load_samples

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    overrides = parse_model_overrides(args.model_set)
    demos, _ = load_samples(args.data, args.task, args.n_demos)
    split = args.n_demos - args.held_out
    train = [s for ep in demos[:split] for s in ep]
    held = [s for ep in demos[split:] for s in ep]
    model = CLIPortModel(ModelConfig.named("tiny", **overrides))
    groups = model.parameter_groups()
    opt = torch.optim.Adam(groups["pick"] + groups.get("clip", []), lr=args.lr)
    rng = np.random.default_rng(args.seed)

    def accuracy(samples) -> float:
        model.eval()
        right = 0
        with torch.no_grad():
            for s in samples:
                logits = model.pick_logits(image_tensor(s.color, s.height), model.text([s.instruction]))[0]
                row, col = divmod(int(logits.reshape(-1).argmax()), s.height.shape[1])
                right += pick_is_right(s, (row, col))
        return right / len(samples)

    start, losses = time.time(), []
    for step in range(1, args.steps + 1):
        model.train()
        s = train[int(rng.integers(len(train)))]
        aug = perturb(s.color, s.height, s.pick_pixel, s.place_pixel, rng)
        width = aug.height.shape[1]
        logits = model.pick_logits(image_tensor(aug.color, aug.height), model.text([s.instruction]))
        target = torch.tensor([aug.pick_pixel[0] * width + aug.pick_pixel[1]])
        loss = F.cross_entropy(logits.reshape(1, -1), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % args.every == 0 or step == args.steps:
            print(
                json.dumps(
                    {
                        "step": step,
                        "loss": round(float(np.mean(losses[-args.every :])), 3),
                        "held_out_accuracy": round(accuracy(held), 3),
                        "train_accuracy": round(accuracy(train[: len(held)]), 3),
                        "held_out_picks": len(held),
                        "minutes": round((time.time() - start) / 60, 1),
                        "model_set": overrides,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
