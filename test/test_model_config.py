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
        ({"place_input_conv": True}, "place_input_conv and normalized_correlation belong to the compact layout"),
        ({"normalized_correlation": True}, "belong to the compact layout"),
    ],
)
def test_paper_validation_messages(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig.named("paper", **overrides)


def test_place_net_options_are_compact_booleans_off_by_default():
    for name in ("place_input_conv", "normalized_correlation"):
        assert getattr(ModelConfig.named("paper"), name) is False
        assert getattr(ModelConfig.named("tiny"), name) is False
        assert getattr(ModelConfig.named("tiny", **{name: True}), name) is True
        with pytest.raises(ValueError, match=f"{name} must be true or false, got 1"):
            ModelConfig.named("tiny", **{name: 1})


def test_openai_weights_need_a_released_architecture():
    with pytest.raises(ValueError, match="clip_weights='openai' needs a released architecture"):
        ModelConfig.named("tiny", clip_weights="openai", clip_trainable=False)


def test_unknown_name_and_field_are_named():
    with pytest.raises(ValueError, match="unknown model configuration 'huge'; choose from paper, tiny"):
        ModelConfig.named("huge")
    with pytest.raises(ValueError, match=r"unknown ModelConfig field\(s\) \['color'\]"):
        ModelConfig.named("tiny", color=3)
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


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"clip_embed_dim": 1 << 20}, "clip_embed_dim must be in 1..4096, got 1048576"),
        ({"clip_vision_width": 1 << 16}, "clip_vision_width must be in 1..256, got 65536"),
        ({"clip_text_width": 1 << 16, "clip_text_heads": 8}, "clip_text_width must be in 1..2048"),
        ({"clip_text_heads": 128, "clip_text_width": 1024}, "clip_text_heads must be in 1..64"),
        ({"clip_text_layers": 1000}, "clip_text_layers must be in 1..48"),
        ({"clip_context_length": 10**6}, "clip_context_length must be in 8..512"),
        ({"clip_vision_layers": (3, 4, 1000, 3)}, "clip_vision_layers entries must be in 1..48, got (3, 4, 1000, 3)"),
        ({"spatial_encoder": (64, 128, 256, 512, 1 << 20)}, "spatial_encoder entries must be in 4..2048"),
        ({"spatial_decoder": (1 << 16, 256, 128, 64, 32, 16)}, "spatial_decoder entries must be in 4..2048"),
        ({"semantic_decoder": (1 << 20, 512, 256, 128, 64, 32, 16, 16)}, "semantic_decoder entries must be in 4..2048"),
        ({"spatial_blocks": 500}, "spatial_blocks must be in 1..8"),
        ({"bottleneck_divisor": 64}, "bottleneck_divisor must be in 1..16"),
        ({"n_rotations": 720}, "n_rotations must be in 1..360"),
        ({"crop_size": 32 * 1000}, "crop_size must be in 32..256"),
        ({"key_query_dim": 10**5}, "key_query_dim must be in 1..64"),
    ],
)
def test_sizes_are_bounded(overrides, message):
    """A size beyond its bound is refused by the config itself, before any network is built."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ModelConfig.named("tiny", clip_arch="custom", layout="compact", **overrides)


def test_size_bounds_admit_the_named_configs_with_room():
    from cliport_ros.model.config import SIZE_LIMITS

    for name in ("paper", "tiny"):
        cfg = ModelConfig.named(name)
        for field, (low, high) in SIZE_LIMITS.items():
            value = getattr(cfg, field)
            values = value if isinstance(value, tuple) else (value,)
            assert all(low <= v for v in values), (name, field)
            # at least twice the largest size in use (the rotation count is bounded by its divisibility of 360)
            assert all(2 * v <= high for v in values) or field == "n_rotations", (name, field)
