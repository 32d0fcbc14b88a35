"""Offline accuracy of a checkpoint's two halves on demos it did not train on: which block, which bowl.

For every step of the demos: the pick is right when its pixel is on an object of the color under the oracle's
pick pixel (the pick probe's test); the place, computed from the oracle's pick so that the halves are judged
apart, is right when its pixel has the color under the oracle's place pixel (for put-block-in-bowl: a bowl
of the named color). Much cheaper than `cliport eval`, and it tells which half fails. Prints one JSON line.

.venv/bin/cliport demos put-block-in-bowl-seen-colors --split val --n 100 --out data/pbib-val
.venv/bin/python benchmarks/half_accuracy.py --checkpoint checkpoints/tiny-put-block-in-bowl-seen-colors \
    --data data/pbib-val --split val
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pick_probe import COLOR_TOLERANCE, pick_is_right  # noqa: E402  (beside this script)


def place_is_right(sample, pixel: tuple[int, int]) -> bool:
    """The chosen place pixel has the color under the oracle's place pixel."""
    import numpy as np

    want = sample.color[sample.place_pixel[0], sample.place_pixel[1]].astype(float)
    got = sample.color[pixel[0], pixel[1]].astype(float)
    return bool(np.linalg.norm(want - got) < COLOR_TOLERANCE)


def decide(model, sample) -> tuple[tuple[int, int], tuple[int, int, int]]:
    """The model's pick pixel, and its place (rotation bin, row, col) from the oracle's pick (inference mode)."""
    import torch

    from cliport_ros.model.policy import image_tensor

    image = image_tensor(sample.color, sample.height)
    text = model.text([sample.instruction])
    pick = divmod(int(model.pick_logits(image, text)[0].reshape(-1).argmax()), sample.height.shape[1])
    place = model.place_logits(image, torch.tensor([sample.pick_pixel]), text)[0]
    rot, rem = divmod(int(place.reshape(-1).argmax()), place.shape[1] * place.shape[2])
    return pick, (rot, *divmod(rem, place.shape[2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--task", default="put-block-in-bowl-seen-colors")
    parser.add_argument("--data", default="data/pbib-val")
    parser.add_argument("--split", default="val", choices=("train", "val", "test"))
    parser.add_argument("--n-demos", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from cliport_ros.model.policy import Policy
    from cliport_ros.training.train import load_samples

    torch.set_num_threads(args.threads)
    policy = Policy.load(args.checkpoint, device="cpu", precision="fp32")
    model = policy.model.eval()
    demos, _ = load_samples(args.data, args.task, args.n_demos, split=args.split)
    samples = [s for ep in demos for s in ep]
    picks = places = 0
    # per color word: [right, judged], by the block color for picks and the bowl color for places
    pick_words: dict[str, list[int]] = {}
    place_words: dict[str, list[int]] = {}
    with torch.inference_mode():
        for s in samples:
            pick, (_, row, col) = decide(model, s)
            pick_right = pick_is_right(s, pick)
            place_right = place_is_right(s, (row, col))
            picks += pick_right
            places += place_right
            words = s.instruction.split()  # "put the {block} blocks in a {bowl} bowl"
            for tally, word, right in ((pick_words, words[2], pick_right), (place_words, words[-2], place_right)):
                tally.setdefault(word, [0, 0])
                tally[word][0] += int(right)
                tally[word][1] += 1
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "step": policy.metadata.get("step"),
                "steps_judged": len(samples),
                "pick_accuracy": round(picks / len(samples), 3),
                "place_accuracy_given_oracle_pick": round(places / len(samples), 3),
                "pick_right_by_block_color": {w: f"{r}/{n}" for w, (r, n) in sorted(pick_words.items())},
                "place_right_by_bowl_color": {w: f"{r}/{n}" for w, (r, n) in sorted(place_words.items())},
            }
        )
    )


if __name__ == "__main__":
    main()
