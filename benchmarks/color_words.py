"""How far apart a checkpoint's text encoders hold the color words: the policy cannot tell apart two colors
whose instructions it embeds alike, however well its image nets see them.

For put-block-in-bowl, the pick half reads the block color and the place half the bowl color. For each half,
the instructions that differ only in that word are embedded and compared (cosine similarity of the sentence
embeddings, centred on their mean over all instructions); prints one JSON line with the closest pairs per half
(1.0: the half cannot tell them apart).

.venv/bin/python benchmarks/color_words.py --checkpoint checkpoints/tiny-put-block-in-bowl-seen-colors
"""

from __future__ import annotations

import argparse
import itertools
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--colors", default="seen", choices=("seen", "unseen"))
    parser.add_argument("--closest", type=int, default=5, help="pairs to list per half")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from cliport_ros.model.policy import Policy
    from cliport_ros.sim.scene import SEEN_COLORS, UNSEEN_COLORS

    colors = list(SEEN_COLORS if args.colors == "seen" else UNSEEN_COLORS)
    model = Policy.load(args.checkpoint, device="cpu", precision="fp32").model.eval()
    out = {"checkpoint": args.checkpoint}
    with torch.inference_mode():
        templates = (("pick", "put the {} blocks in a {} bowl"), ("place", "put the {1} blocks in a {0} bowl"))
        for half, template in templates:
            pairs = []
            every = [template.format(a, b) for a in colors for b in colors if a != b]
            # centred on the mean over every instruction: a direction all sentences share tells none apart
            mean = getattr(model.text(every), half).mean(0, keepdim=True)
            for other in colors:  # the word the half does not read, held fixed
                varied = [c for c in colors if c != other]
                text = model.text([template.format(c, other) for c in varied])
                emb = F.normalize(getattr(text, half) - mean, dim=1)
                sim = emb @ emb.T
                for i, j in itertools.combinations(range(len(varied)), 2):
                    pairs.append((float(sim[i, j]), varied[i], varied[j], other))
            worst: dict[tuple[str, str], float] = {}
            for value, a, b, _ in pairs:  # a pair's largest similarity over the other word
                worst[(a, b)] = max(worst.get((a, b), -1.0), value)
            ranked = sorted(worst.items(), key=lambda kv: -kv[1])
            out[half] = {
                "reads": "block color" if half == "pick" else "bowl color",
                "closest_pairs": {f"{a}/{b}": round(v, 3) for (a, b), v in ranked[: args.closest]},
                "mean_similarity": round(sum(worst.values()) / len(worst), 3),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
