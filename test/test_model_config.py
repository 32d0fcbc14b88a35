"""ModelConfig: the named sizes, overrides, JSON round trip and validation messages."""

import json

import pytest
import torch

from cliport_ros.model import ModelConfig


def test_named_configs_have_the_paper_and_tiny_sizes():
    paper = ModelConfig.named("paper")
    assert paper.clip_arch == "RN50" and paper.clip_weights == "openai" and not paper.clip_trainable
    assert paper.clip_stage_channels == (256, 512, 1024, 2048)
    assert paper.spatial_encoder == (64, 128, 256, 512, 1024)
    assert paper.semantic_decoder[:3] == (1024, 512, 256)  # the three language-fused layers
    assert paper.lang_layers == 3
    assert (paper.n_rotations, paper.crop_size, paper.pad) == (36, 64, 32)
    tiny = ModelConfig.named("tiny")
    assert tiny.clip_weights == "none" and tiny.clip_trainable and tiny.clip_arch == "custom"
    assert tiny.n_rotations == 36 and tiny.crop_size == 64


def test_overrides_and_json_round_trip():
    cfg = ModelConfig.named("tiny", crop_size=32, n_rotations=12)
    assert (cfg.crop_size, cfg.n_rotations) == (32, 12)
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"n_rotations": 7}, "n_rotations must divide 360"),
        ({"crop_size": 48}, "crop_size must be a multiple of 32"),
        ({"clip_trainable": True}, "clip_trainable=True is allowed only with clip_weights='none'"),
        ({"clip_vision_width": 32}, "does not match clip_arch='RN50'"),
        ({"spatial_encoder": (64, 128)}, "spatial_encoder must have 5 entries"),
        ({"semantic_decoder": (1024, 512, 256, 128, 64, 32, 16, 6)}, "multiples of 4"),
        ({"clip_weights": ""}, "clip_weights must be one of"),
        ({"lang_layers": 9}, "lang_layers must be 1..8"),
        ({"lang_layers": 0}, "lang_layers must be a positive integer"),
    ],
)
def test_paper_validation_messages(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig.named("paper", **overrides)


def test_openai_weights_need_a_released_architecture():
    with pytest.raises(ValueError, match="clip_weights='openai' needs a released architecture"):
        ModelConfig.named("tiny", clip_weights="openai", clip_trainable=False)


def test_unknown_name_and_field_are_named():
    with pytest.raises(ValueError, match="unknown model configuration 'huge'; choose from paper, tiny"):
        ModelConfig.named("huge")
    with pytest.raises(ValueError, match=r"unknown ModelConfig field\(s\) \['colour'\]"):
        ModelConfig.named("tiny", colour=3)
    with pytest.raises(ValueError, match="clip_text_width .* divisible by clip_text_heads"):
        ModelConfig.named("tiny", clip_text_heads=3)


def test_paper_size_matches_the_paper():
    """About 277 M trainable parameters over the three nets (the paper's figure), CLIP RN50 frozen beside."""
    from cliport_ros.model.policy import CLIPortModel

    with torch.device("meta"):  # sizes only: no memory, no initialisation work
        model = CLIPortModel(ModelConfig.named("paper", clip_weights="none"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert 270e6 < trainable < 285e6
    # CLIP RN50 without its attention pool: image trunk ~23.5 M + text encoder ~63.7 M, stored once
    assert frozen == sum(p.numel() for p in model.clip.parameters()) and 85e6 < frozen < 90e6
