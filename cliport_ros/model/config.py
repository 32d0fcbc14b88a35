"""The model's configuration: named sizes (``paper``, ``tiny``), validated, saved as JSON beside the weights.

Every size of the network is a field here, so a checkpoint's JSON is enough to rebuild the network exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# The two named configurations; other code asks for them by name through ``ModelConfig.named``.
NAMES = ("paper", "tiny")
# The two network layouts. ``reference``: module for module the reference implementation's network (github
# cliport/cliport, the ``cliport`` agent), so that its released checkpoints load 1:1 (``cliport import``).
# ``compact``: this package's earlier layout (pre-upsampling decoder, 1x1 heads, no U-Net batch norm), kept
# for the small ``tiny`` models such as the shipped one; checkpoints without the field are ``compact``.
LAYOUTS = ("reference", "compact")
# How the batch norms of the reference decoder's three U-Net up blocks normalise outside training:
# ``running``: with their running statistics (``agent.eval()``, the usual inference convention);
# ``batch``: with the statistics of each forward (for the query net, of its 36 crops together), as the
# reference's eval.py ran, which never calls ``agent.eval()``: this reproduces the paper's tables.
UP_BATCHNORM_STATS = ("running", "batch")
# Test-time views a decision averages over: ``none``, the view alone; ``rows``, also the view with its rows
# flipped (mirrored across the workspace's x axis, which the simulator's camera rig is symmetric about);
# ``rows_and_cols``, also with its columns flipped and with both (the half turn). Mirrors suit tasks whose
# scenes and instructions have no left and right (a block pyramid, not "the left side").
TEST_TIME_FLIPS = ("none", "rows", "rows_and_cols")
# Where the frozen CLIP weights come from: open_clip's download, random initialisation, or a file path.
CLIP_WEIGHT_SOURCES = ("openai", "none")
# open_clip architectures whose ``openai`` weights can be downloaded, with the sizes they imply.
OPENAI_ARCHS: dict[str, dict[str, Any]] = {
    "RN50": dict(
        clip_embed_dim=1024,
        clip_vision_layers=(3, 4, 6, 3),
        clip_vision_width=64,
        clip_text_width=512,
        clip_text_heads=8,
        clip_text_layers=12,
        clip_context_length=77,
        clip_quick_gelu=True,
    ),
}

# Fields that change only the place net: ``cliport merge`` takes them from the place half's checkpoint.
PLACE_ONLY_FIELDS = ("place_input_conv", "normalized_correlation")

# Inclusive bounds of every size (for the tuple fields, of each entry). A checkpoint's config.json is read
# before its network is allocated, so a crafted or corrupted size (a million channels, a crop of 2^20 pixels)
# must be refused here rather than take gigabytes; the maxima leave at least twice the room of the largest
# configuration in use (``paper``, the reference layout with CLIP RN50). ``lang_layers`` is bounded by the
# semantic decoder's length, ``n_rotations`` also by dividing 360.
SIZE_LIMITS: dict[str, tuple[int, int]] = {
    "clip_embed_dim": (1, 4096),  # paper 1024
    "clip_vision_layers": (1, 48),  # residual blocks per CLIP stage; paper (3, 4, 6, 3)
    "clip_vision_width": (1, 256),  # paper 64 (stage outputs up to 32x that)
    "clip_text_width": (1, 2048),  # paper 512
    "clip_text_heads": (1, 64),  # paper 8
    "clip_text_layers": (1, 48),  # paper 12
    "clip_context_length": (8, 512),  # tokens; paper 77
    "spatial_encoder": (4, 2048),  # channels; paper up to 1024
    "spatial_decoder": (4, 2048),  # channels; paper up to 512
    "semantic_decoder": (4, 2048),  # channels; paper up to 1024
    "spatial_blocks": (1, 8),  # paper 2
    "bottleneck_divisor": (1, 16),  # paper 1, compact 4
    "n_rotations": (1, 360),  # paper 36
    "crop_size": (32, 256),  # pixels; paper 64
    "key_query_dim": (1, 64),  # paper 3
}


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the three two-stream nets (pick, key, query) and of the shared CLIP trunk."""

    name: str = "paper"
    layout: str = "reference"  # one of LAYOUTS
    # --- CLIP (one frozen trunk shared by the three nets) ---
    clip_arch: str = "RN50"  # an open_clip architecture name, or "custom" for the sizes below
    clip_weights: str = "openai"  # "openai" | "none" | path to a local open_clip state dict file
    clip_trainable: bool = False  # allowed only with clip_weights="none" (a pretrained trunk stays frozen)
    clip_embed_dim: int = 1024  # sentence embedding size
    clip_vision_layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    clip_vision_width: int = 64  # stem width; stage outputs are 4, 8, 16, 32 times this
    clip_text_width: int = 512
    clip_text_heads: int = 8
    clip_text_layers: int = 12
    clip_context_length: int = 77
    clip_quick_gelu: bool = True
    # each of the three nets owns its CLIP image trunk, and the pick and place halves each own a text
    # encoder; only for a CLIP trained from scratch: a pretrained one is frozen and shared. A shared
    # from-scratch trunk is pulled between the pick image, the key image and the 36 query crops (gradients
    # and batch-norm statistics); with nothing trainable shared, the two halves can also train apart.
    clip_per_net: bool = False
    # --- spatial stream (Transporter ResNet encoder-decoder; bottleneck blocks without batch norm) ---
    spatial_encoder: tuple[int, ...] = (64, 128, 256, 512, 1024)  # strides 1, 2, 4, 8, 16
    spatial_decoder: tuple[int, ...] = (512, 256, 128, 64, 32, 16)  # strides 8, 4, 2, 1, 1, 1 (laterals)
    spatial_blocks: int = 2  # bottleneck blocks per stage
    # width of a bottleneck block's middle (3x3) convolution = its output width // this; Transporter's
    # blocks keep the full width (1), ResNet's classic bottleneck a quarter (4)
    bottleneck_divisor: int = 4
    # the semantic stream's three skip-joining stages as two 3x3 convolutions (U-Net style, as the
    # reference decoder) instead of one
    semantic_double_conv: bool = False
    # --- semantic stream decoder over CLIP features ---
    # strides 32, 16, 8, 4, 2, 1, 1, 1; language multiplies the first three; laterals join the last six
    semantic_decoder: tuple[int, ...] = (1024, 512, 256, 128, 64, 32, 16, 16)
    # how many semantic layers, from the bottleneck on, the sentence embedding multiplies: the paper's 3
    # (strides 32, 16, 8); up to all 8, so that language also meets the spatial stream's color at full
    # resolution (a from-scratch trunk learns color words much faster that way)
    lang_layers: int = 3
    # --- pick / place geometry ---
    n_rotations: int = 36
    crop_size: int = 64  # query crop side; the image is padded by crop_size // 2 for the place
    pick_pad_square: bool = True  # pad the pick input to a square, as the paper does
    key_query_dim: int = 3  # output channels of the key and query nets
    # --- compact layout only: the place net ---
    # The key and query nets add a 3x3 convolution of their normalised input to their output: a
    # full-resolution path for the edges that orient an object (a block on its stand), which the compact
    # streams, with no skip connections past stride 16, blur.
    place_input_conv: bool = False
    # The place logits divided by sqrt(key_query_dim x crop_size^2), the number of products each one sums:
    # unscaled, from-scratch place training diverges (logits of thousands, loss 60-170 within 1000 steps).
    normalized_correlation: bool = False
    # --- reference layout only ---
    up_batchnorm_stats: str = "running"  # one of UP_BATCHNORM_STATS
    # the reference's output-changing resampling in the place net: its crops are rotated with kornia
    # 0.4.1's warp_affine (sample positions 0.16-0.98 px off a rotation about the pick pixel) and its
    # 385x225 correlation is bilinearly resized to 384x224 before the crop (a 0.08-0.92 px shift).
    # Imported checkpoints switch it on, so that they compute what they computed when trained and evaluated.
    reference_resampling: bool = False
    # --- acting ---
    # Views of the workspace whose logits each decision averages (one of TEST_TIME_FLIPS), at one network pass
    # per view; training does not read it.
    test_time_flips: str = "none"

    def __post_init__(self) -> None:
        # Tuples survive a JSON round trip as lists: normalise first so equality and hashing work.
        for name in ("clip_vision_layers", "spatial_encoder", "spatial_decoder", "semantic_decoder"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(_is_int(v) and v > 0 for v in value):
                raise ValueError(f"ModelConfig.{name} must be a sequence of positive integers, got {value!r}")
            object.__setattr__(self, name, tuple(int(v) for v in value))
        lengths = {"clip_vision_layers": 4, "spatial_encoder": 5, "spatial_decoder": 6, "semantic_decoder": 8}
        for name, n in lengths.items():
            if len(getattr(self, name)) != n:
                raise ValueError(f"ModelConfig.{name} must have {n} entries, got {len(getattr(self, name))}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"ModelConfig.layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.test_time_flips not in TEST_TIME_FLIPS:
            raise ValueError(
                f"ModelConfig.test_time_flips must be one of {TEST_TIME_FLIPS}, got {self.test_time_flips!r}"
            )
        if self.up_batchnorm_stats not in UP_BATCHNORM_STATS:
            raise ValueError(
                f"ModelConfig.up_batchnorm_stats must be one of {UP_BATCHNORM_STATS}, got {self.up_batchnorm_stats!r}"
            )
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("ModelConfig.name must be a non-empty string")
        if not isinstance(self.clip_weights, str) or not self.clip_weights:
            raise ValueError(
                f"ModelConfig.clip_weights must be one of {CLIP_WEIGHT_SOURCES} or a file path, got "
                f"{self.clip_weights!r}"
            )
        if self.clip_trainable and self.clip_weights != "none":
            raise ValueError(
                "ModelConfig.clip_trainable=True is allowed only with clip_weights='none' (a pretrained "
                "CLIP stays "
                f"frozen); got clip_weights={self.clip_weights!r}"
            )
        if self.clip_per_net and self.clip_pretrained and self.layout != "reference":
            raise ValueError(
                "ModelConfig.clip_per_net=True with the compact layout needs clip_weights='none' (a CLIP "
                "trained from scratch); a pretrained CLIP is frozen and shared by the three nets, got "
                f"clip_weights={self.clip_weights!r} (the reference layout allows it: imported checkpoints "
                "may hold three CLIPs whose batch-norm statistics differ)"
            )
        if self.clip_arch != "custom" and self.clip_arch not in OPENAI_ARCHS:
            raise ValueError(
                f"ModelConfig.clip_arch must be one of {sorted(OPENAI_ARCHS)} or 'custom', got {self.clip_arch!r}"
            )
        if self.clip_arch in OPENAI_ARCHS:
            for key, expected in OPENAI_ARCHS[self.clip_arch].items():
                if getattr(self, key) != expected:
                    raise ValueError(
                        f"ModelConfig.{key}={getattr(self, key)!r} does not match "
                        f"clip_arch={self.clip_arch!r} "
                        f"(which needs {expected!r}); set clip_arch='custom' to change CLIP's sizes"
                    )
        if self.clip_weights == "openai" and self.clip_arch == "custom":
            raise ValueError(
                "clip_weights='openai' needs a released architecture (clip_arch one of "
                f"{sorted(OPENAI_ARCHS)}); "
                "a custom CLIP takes clip_weights='none' or a local file path"
            )
        for name in (
            "clip_embed_dim",
            "clip_vision_width",
            "clip_text_width",
            "clip_text_heads",
            "clip_text_layers",
            "clip_context_length",
            "spatial_blocks",
            "bottleneck_divisor",
            "n_rotations",
            "crop_size",
            "key_query_dim",
            "lang_layers",
        ):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, got {value!r}")
        self._check_size_limits()
        if self.clip_vision_width % 2:
            raise ValueError(
                f"ModelConfig.clip_vision_width must be even (the stem halves it), got {self.clip_vision_width}"
            )
        if self.clip_text_width % self.clip_text_heads:
            raise ValueError(
                f"ModelConfig.clip_text_width ({self.clip_text_width}) must be divisible by clip_text_heads "
                f"({self.clip_text_heads})"
            )
        if self.clip_context_length < 8:
            raise ValueError(f"ModelConfig.clip_context_length must be >= 8 tokens, got {self.clip_context_length}")
        if self.lang_layers > len(self.semantic_decoder):
            raise ValueError(
                f"ModelConfig.lang_layers must be 1..{len(self.semantic_decoder)} (the semantic decoder's "
                f"layers), got {self.lang_layers}"
            )
        if 360 % self.n_rotations:
            raise ValueError(
                f"ModelConfig.n_rotations must divide 360 so that the bins are whole degrees, got {self.n_rotations}"
            )
        if self.crop_size % 32:
            raise ValueError(f"ModelConfig.crop_size must be a multiple of 32 (CLIP's stride), got {self.crop_size}")
        for name in ("spatial_encoder", "spatial_decoder", "semantic_decoder"):
            for c in getattr(self, name):
                if c < 4 or c % 4:
                    raise ValueError(
                        f"ModelConfig.{name} channels must be multiples of 4 and >= 4 (bottleneck blocks "
                        "use a "
                        f"quarter of the width), got {getattr(self, name)}"
                    )
        for name in (
            "clip_trainable",
            "clip_quick_gelu",
            "clip_per_net",
            "pick_pad_square",
            "semantic_double_conv",
            "reference_resampling",
            "place_input_conv",
            "normalized_correlation",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ModelConfig.{name} must be true or false, got {getattr(self, name)!r}")

        if self.layout == "reference":
            if self.place_input_conv or self.normalized_correlation:
                raise ValueError(
                    "ModelConfig.place_input_conv and normalized_correlation belong to the compact layout; the "
                    "reference layout computes the reference's place net exactly (leave them false)"
                )
            self._check_reference_layout()
        elif self.up_batchnorm_stats != "running" or self.reference_resampling:
            raise ValueError(
                "ModelConfig.up_batchnorm_stats and reference_resampling belong to the reference layout; the "
                "compact layout has no up-block batch norm and samples exactly (leave them 'running' / false)"
            )

    def _check_size_limits(self) -> None:
        """Every size within ``SIZE_LIMITS`` (the types are checked before this)."""
        for name, (low, high) in SIZE_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, tuple):
                if not all(low <= v <= high for v in value):
                    raise ValueError(f"ModelConfig.{name} entries must be in {low}..{high}, got {value}")
            elif not low <= value <= high:
                raise ValueError(f"ModelConfig.{name} must be in {low}..{high}, got {value}")

    def _check_reference_layout(self) -> None:
        """The widths the reference network ties together (its code fixes them; here they are checked)."""
        needs = {
            "bottleneck_divisor": (1, "its residual blocks keep the full width in the 3x3 convolution"),
            "semantic_double_conv": (True, "its U-Net up blocks are two 3x3 convolutions"),
            "lang_layers": (3, "the sentence multiplies the decoder at strides 32, 16 and 8"),
            "pick_pad_square": (True, "the pick input is padded to a square"),
        }
        for name, (value, why) in needs.items():
            if getattr(self, name) != value:
                raise ValueError(
                    f"ModelConfig.{name} must be {value!r} with layout='reference' ({why}), got "
                    f"{getattr(self, name)!r}; use layout='compact' for other values"
                )
        if self.semantic_decoder[7] != self.semantic_decoder[6]:
            raise ValueError(
                "ModelConfig.semantic_decoder[7] must equal semantic_decoder[6] with layout='reference' (its "
                f"1x1 head reads the last residual stage), got {self.semantic_decoder}"
            )

    # ----------------------------------------------------------------------------------------------
    @property
    def clip_pretrained(self) -> bool:
        return self.clip_weights != "none"

    @property
    def pad(self) -> int:
        """Padding of the place input: half the crop."""
        return self.crop_size // 2

    @property
    def rotation_step(self) -> float:
        """Radians between rotation bins."""
        return 2.0 * math.pi / self.n_rotations

    @property
    def clip_stage_channels(self) -> tuple[int, int, int, int]:
        """Output channels of CLIP's four residual stages (strides 4, 8, 16, 32)."""
        w = self.clip_vision_width
        return (4 * w, 8 * w, 16 * w, 32 * w)

    @classmethod
    def named(cls, name: str, **overrides: Any) -> ModelConfig:
        """One of the named configurations (``paper``, ``tiny``), with fields overridden."""
        if name not in _PRESETS:
            raise ValueError(f"unknown model configuration {name!r}; choose from {', '.join(NAMES)}")
        return cls.from_dict({**_PRESETS[name], **overrides})

    def replace(self, **changes: Any) -> ModelConfig:
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown ModelConfig field(s) {sorted(unknown)}; allowed: {sorted(self.__dataclass_fields__)}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def differing_fields(self, other: ModelConfig) -> list[str]:
        """The names of the fields whose values differ from ``other``'s, sorted."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k, v in mine.items() if theirs[k] != v)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        if not isinstance(data, Mapping):
            raise ValueError(f"a model configuration must be a mapping of fields, got {type(data).__name__}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown ModelConfig field(s) {sorted(unknown)}; allowed: {sorted(cls.__dataclass_fields__)}"
            )
        return cls(**dict(data))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_PRESETS: dict[str, dict[str, Any]] = {
    # The paper's sizes: CLIP RN50 (frozen, pretrained), Transporter-width streams.
    "paper": dict(name="paper", layout="reference", bottleneck_divisor=1, semantic_double_conv=True),
    # The same code path with small widths, CLIP from scratch: trains on 2 CPU cores in hours.
    "tiny": dict(
        name="tiny",
        layout="compact",
        clip_arch="custom",
        clip_weights="none",
        clip_trainable=True,
        clip_embed_dim=64,
        clip_vision_layers=(1, 1, 1, 1),
        clip_vision_width=8,
        clip_text_width=64,
        clip_text_heads=2,
        clip_text_layers=2,
        clip_context_length=32,
        clip_quick_gelu=False,
        spatial_encoder=(8, 16, 32, 64, 64),
        spatial_decoder=(32, 16, 8, 8, 8, 8),
        spatial_blocks=1,
        semantic_decoder=(64, 32, 32, 16, 8, 8, 8, 8),
    ),
}
