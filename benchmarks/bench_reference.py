"""Time the reference implementation's decision on this machine, beside `cliport bench --config paper`.

Runs the pick and place forwards that the reference agent's ``act()`` calls (github cliport/cliport, agent
``cliport``: TwoStreamAttentionLangFusionLat and TwoStreamTransportLangFusionLat, CLIP in fp16 as the
reference holds it), unmodified, from a checkout you provide. Nothing of the reference is part of this
package; this script only imports it:

    git clone https://github.com/cliport/cliport /path/to/cliport
    pip install --no-deps --target /path/to/refsite kornia==0.4.1      # the reference's pin
    python benchmarks/bench_reference.py --reference-repo /path/to/cliport --extra-path /path/to/refsite

The reference package's __init__ pulls in its simulator, visualisation and BERT variants (meshcat, matplotlib,
transforms3d, omegaconf, transformers); only the network modules are loaded here, and those unrelated
modules are replaced by empty ones. CLIP's weights are not downloaded: the network is built from the
golden fixture's state-dict manifest and weight rule (values do not change the time). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

CFG = {
    "train": {
        "batchnorm": False,
        "lang_fusion_type": "mult",
        "attn_stream_fusion_type": "add",
        "trans_stream_fusion_type": "conv",
    }
}
UNRELATED = (
    "meshcat",
    "meshcat.geometry",
    "meshcat.transformations",
    "matplotlib",
    "matplotlib.pyplot",
    "transforms3d",
    "omegaconf",
)


def _package(name: str, path: Path) -> None:
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    sys.modules[name] = module


def load_reference(repo: Path, clip_state: dict):
    """The reference's two stream classes, with CLIP built from ``clip_state`` instead of downloaded."""
    for name in UNRELATED:
        stub = types.ModuleType(name)
        stub.euler = types.SimpleNamespace()
        stub.OmegaConf = object
        sys.modules.setdefault(name, stub)
    root = repo / "cliport"
    _package("cliport", root)
    _package("cliport.models", root / "models")
    _package("cliport.models.core", root / "models" / "core")
    _package("cliport.models.streams", root / "models" / "streams")
    _package("cliport.utils", root / "utils")
    utils = importlib.import_module("cliport.utils.utils")
    clip = importlib.import_module("cliport.models.core.clip")
    resnet_lat = importlib.import_module("cliport.models.resnet_lat")
    lingunet = importlib.import_module("cliport.models.clip_lingunet_lat")

    def _load_clip(self):  # the reference's own build_model + convert_weights (fp16), from given weights
        self.clip_rn50 = clip.build_model({k: v.clone() for k, v in clip_state.items()}).to(self.device)

    lingunet.CLIPLingUNetLat._load_clip = _load_clip
    models = sys.modules["cliport.models"]
    models.names = {"plain_resnet_lat": resnet_lat.ResNet45_10s, "clip_lingunet_lat": lingunet.CLIPLingUNetLat}
    attention = importlib.import_module("cliport.models.streams.two_stream_attention_lang_fusion")
    transport = importlib.import_module("cliport.models.streams.two_stream_transport_lang_fusion")
    return utils, attention.TwoStreamAttentionLangFusionLat, transport.TwoStreamTransportLangFusionLat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-repo", required=True, help="a checkout of github cliport/cliport")
    parser.add_argument("--extra-path", action="append", default=[], help="folders to import from (kornia 0.4.1)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    sys.path[:0] = args.extra_path
    torch.set_num_threads(args.threads)
    from reference_checkpoints import golden_dir, golden_file, rule_state_dict

    folder = golden_dir()
    state = rule_state_dict(folder)
    prefix = "attention.attn_stream_two.clip_rn50."
    clip_state = {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix)}
    # build_model reads a state dict of OpenAI's released file, which carries these three entries too
    clip_state.update(
        input_resolution=torch.tensor(224), context_length=torch.tensor(77), vocab_size=torch.tensor(49408)
    )
    utils, Attention, Transport = load_reference(Path(args.reference_repo), clip_state)
    in_shape = (320, 160, 6)
    attention = Attention(("plain_resnet_lat", "clip_lingunet_lat"), in_shape, 1, utils.preprocess, CFG, "cpu")
    transport = Transport(("plain_resnet_lat", "clip_lingunet_lat"), in_shape, 36, 64, utils.preprocess, CFG, "cpu")
    attention.load_state_dict({k[len("attention.") :]: v for k, v in state.items() if k.startswith("attention.")})
    transport.load_state_dict({k[len("transport.") :]: v for k, v in state.items() if k.startswith("transport.")})
    attention.eval()
    transport.eval()
    golden = np.load(golden_file(folder))
    img, lang = golden["inp_img"], str(golden["lang"][0])
    timings: dict[str, list[float]] = {"pick_ms": [], "place_ms": [], "total_ms": []}
    with torch.no_grad():
        for i in range(args.warmup + args.repeats):
            t0 = time.perf_counter()
            pick = attention.forward(img, lang, softmax=True).detach().cpu().numpy()
            u, v, _ = np.unravel_index(np.argmax(pick), pick.shape)
            t1 = time.perf_counter()
            transport.forward(img, (u, v), lang, softmax=True)
            t2 = time.perf_counter()
            if i >= args.warmup:
                for key, value in zip(timings, (t1 - t0, t2 - t1, t2 - t0)):
                    timings[key].append(value * 1e3)
        # the harness runs the reference as the fixture's goldens were made: its pick logits reproduce them
        logits = attention.forward(img, lang, softmax=False).reshape(320, 160).numpy()
    check = float(np.abs(logits - golden["pick_logits_0"]).max())
    print(
        json.dumps(
            {
                "code": "reference (github cliport/cliport, agent 'cliport'), CLIP fp16 as the reference holds it",
                "threads": torch.get_num_threads(),
                "repeats": args.repeats,
                "pick_logits_max_abs_diff_vs_golden": check,
                **{k: {"p50": round(float(np.median(v)), 1), "min": round(min(v), 1)} for k, v in timings.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
