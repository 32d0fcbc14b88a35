"""Checkpoints of the reference implementation's `cliport` agent, made here for the import and golden tests.

The golden fixture (``../shared/reference/cliport-golden`` where it exists, else the reduced copy in
``test/data/cliport_golden``) gives the agent's state-dict manifest and a deterministic weight rule; the file
layout is PyTorch Lightning 1.0.3's (the README of the fixture, section 3). Lightning is not installed here:
``LightningModelCheckpointDouble`` stands in for the one class object Lightning pickles into the file.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from collections import OrderedDict
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_GOLDEN = REPO.parent / "shared" / "reference" / "cliport-golden"
REDUCED_GOLDEN = REPO / "test" / "data" / "cliport_golden"
FIXTURE_SEED = 0x0A0A0A0A


def golden_dir() -> Path:
    """The full fixture where this workplace provides it, else the reduced copy shipped with the tests
    (``CLIPORT_GOLDEN_DIR`` names another folder, e.g. the reduced copy, to check it where both exist)."""
    import os

    if os.environ.get("CLIPORT_GOLDEN_DIR"):
        return Path(os.environ["CLIPORT_GOLDEN_DIR"])
    return SHARED_GOLDEN if (SHARED_GOLDEN / "golden-a.npz").is_file() else REDUCED_GOLDEN


def golden_file(folder: Path) -> Path:
    return folder / ("golden-a.npz" if (folder / "golden-a.npz").is_file() else "golden-reduced.npz")


def manifest(folder: Path) -> list[dict]:
    return json.loads((folder / "manifest.json").read_text())["entries"]


def weight_rule(folder: Path):
    spec = importlib.util.spec_from_file_location("cliport_golden_weights_rule", folder / "weights_rule.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fill


def rule_state_dict(folder: Path, seed: int = FIXTURE_SEED) -> OrderedDict[str, torch.Tensor]:
    """The reference agent's state dict, every entry filled by the fixture's weight rule."""
    fill = weight_rule(folder)
    return OrderedDict(
        (e["key"], fill(e["key"], e["shape"], getattr(torch, e["dtype"]), seed)) for e in manifest(folder)
    )


class LightningModelCheckpointDouble:
    """Test double of pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint (pickled as a dict key)."""


def write_lightning_checkpoint(path: Path, state_dict: OrderedDict[str, torch.Tensor], **extra) -> Path:
    """A .ckpt with PyTorch Lightning 1.0.3's top-level layout around ``state_dict`` (torch.save, zip)."""
    module_name = "pytorch_lightning.callbacks.model_checkpoint"
    LightningModelCheckpointDouble.__module__ = module_name
    LightningModelCheckpointDouble.__qualname__ = LightningModelCheckpointDouble.__name__ = "ModelCheckpoint"
    saved = {name: sys.modules.get(name) for name in ("pytorch_lightning", "pytorch_lightning.callbacks", module_name)}
    try:
        for name in saved:
            sys.modules[name] = types.ModuleType(name)
        sys.modules[module_name].ModelCheckpoint = LightningModelCheckpointDouble
        checkpoint = {
            "epoch": 1,
            "global_step": 201000,
            "pytorch-lightning_version": "1.0.3",
            "callbacks": {
                LightningModelCheckpointDouble: {"best_model_score": torch.tensor(0.0), "best_model_path": "x.ckpt"}
            },
            "optimizer_states": [{}],
            "lr_schedulers": [],
            "state_dict": state_dict,
            **extra,
        }
        torch.save(checkpoint, path)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return path


def reference_state_from_model(model: torch.nn.Module) -> OrderedDict[str, torch.Tensor]:
    """A reference-format state dict of one of our reference-layout models (the inverse of the import map)."""
    from cliport_ros.model.importer import our_key_to_reference

    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in model.state_dict().items():
        for ref in our_key_to_reference(key):
            out[ref] = value.detach().clone().contiguous()
    return out
