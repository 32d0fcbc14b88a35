"""Write golden-reduced.npz from the full CLIPort golden fixture (cliport-golden/golden-a.npz).

The reduced copy keeps the inputs, the weight checks, every pick map and, of each place map, the slice at the
reference's argmax rotation (the full 36-rotation maps are 7 MB each). Usage:
    python test/data/cliport_golden/make_reduced.py ../shared/reference/cliport-golden
"""

import shutil
import sys
from pathlib import Path

import numpy as np

FULL_PLACE = (
    "place_logits_fixed_0",
    "place_logits_fixed_1",
    "place_logits_argpick_0",
    "place_logits_argpick_1",
    "place_logits_fixed_clip32_0",
    "place_logits_fixed_evalpy_0",
)


def main(source: str) -> None:
    src = Path(source)
    here = Path(__file__).resolve().parent
    golden = np.load(src / "golden-a.npz")
    out = {}
    for key in golden.files:
        if key.startswith("dbg_") or key in FULL_PLACE:
            continue
        out[key] = golden[key]
    for i in (0, 1):  # eval-mode slices at the argmax rotation, which the full fixture does not store
        r = int(golden[f"place_argmax_fixed_{i}"][0])
        out[f"place_rbest_fixed_{i}"] = golden[f"place_logits_fixed_{i}"][r].astype(np.float32)
    np.savez_compressed(here / "golden-reduced.npz", **out)
    shutil.copy(src / "manifest.json", here / "manifest.json")
    shutil.copy(src / "weights_rule.py", here / "weights_rule.py")


if __name__ == "__main__":
    main(sys.argv[1])
