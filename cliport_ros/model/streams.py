"""The two streams of each CLIPort net and their fusion.

- ``SpatialStream``: a Transporter-style ResNet encoder-decoder over RGB + height x3 (bottleneck residual
  blocks, no batch norm: the batch is one image); its decoder activations are the six lateral outputs.
- ``SemanticStream``: a decoder over the shared CLIP trunk's stages, with language multiplied in at the three
  layers after the bottleneck (``lang_layers``; more in ``tiny``) and the spatial laterals concatenated in
  (1x1 conv) at the last six.
- ``TwoStreamNet``: both streams and their fusion (sum, or concat + ReLU + 1x1 conv).

Inputs of any size work: the net pads to a multiple of 32 internally and crops its output back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cliport_ros.model.clip_backbone import ClipBackbone, build_vision_trunk
from cliport_ros.model.config import ModelConfig

# Normalisation of the spatial stream's input (Transporter's statistics of simulated top-down images).
COLOR_MEAN, COLOR_STD = 0.18877631, 0.07276466
HEIGHT_MEAN, HEIGHT_STD = 0.00509261, 0.00903967
# The deepest stride: CLIP's last stage (the spatial stream's is 16).
MAX_STRIDE = 32


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block (middle width = out // divisor), projected shortcut on a change."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, divisor: int = 4) -> None:
        super().__init__()
        mid = max(c_out // divisor, 1)
        self.conv1 = nn.Conv2d(c_in, mid, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1)
        self.conv3 = nn.Conv2d(mid, c_out, 1)
        self.stride = stride
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or stride != 1) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv1(x))
        y = F.relu(self.conv2(y))
        y = self.conv3(y)
        if self.shortcut is None:
            return F.relu(y + x)
        # A 1x1 convolution with stride s, written as subsampling + 1x1 convolution (the same function):
        # torch 2.14's oneDNN backward of a strided 1x1 convolution in channels_last crashes on CPU.
        skip = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        return F.relu(y + self.shortcut(skip))


def _stage(c_in: int, c_out: int, blocks: int, stride: int = 1, divisor: int = 4) -> nn.Sequential:
    return nn.Sequential(
        Bottleneck(c_in, c_out, stride, divisor),
        *[Bottleneck(c_out, c_out, 1, divisor) for _ in range(blocks - 1)],
    )


class SpatialStream(nn.Module):
    """Encoder at strides 1, 2, 4, 8, 16 and decoder back to stride 1; returns (output, six laterals)."""

    def __init__(self, cfg: ModelConfig, out_dim: int) -> None:
        super().__init__()
        enc, dec, n, d = cfg.spatial_encoder, cfg.spatial_decoder, cfg.spatial_blocks, cfg.bottleneck_divisor
        self.stem = nn.Conv2d(6, enc[0], 3, padding=1)
        self.encoder = nn.ModuleList(
            [_stage(enc[0], enc[0], n, 1, d)] + [_stage(enc[i - 1], enc[i], n, 2, d) for i in range(1, 5)]
        )
        # decoder strides: 8, 4, 2, 1 (upsampling), then 1, 1
        ins = (enc[4],) + dec[:-1]
        self.decoder = nn.ModuleList([_stage(ins[i], dec[i], n, 1, d) for i in range(6)])
        self.upsample = (True, True, True, True, False, False)
        self.head = nn.Conv2d(dec[-1], out_dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = F.relu(self.stem(x))
        for stage in self.encoder:
            x = stage(x)
        laterals = []
        for stage, up in zip(self.decoder, self.upsample):
            if up:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = stage(x)
            laterals.append(x)
        return self.head(x), laterals


class SemanticStream(nn.Module):
    """Decoder over CLIP stages (strides 32 -> 1) with language products and lateral fusions."""

    def __init__(self, cfg: ModelConfig, out_dim: int) -> None:
        super().__init__()
        c = cfg.semantic_decoder
        s4, s8, s16, s32 = cfg.clip_stage_channels
        self.bottleneck = nn.Conv2d(s32, c[0], 3, padding=1)
        # stride 16, 8, 4 stages take CLIP's skip features (concatenated after upsampling)
        self.up = nn.ModuleList(
            [
                _conv_block(c[0] + s16, c[1], double=cfg.semantic_double_conv),
                _conv_block(c[1] + s8, c[2], double=cfg.semantic_double_conv),
                _conv_block(c[2] + s4, c[3], double=cfg.semantic_double_conv),
                _conv_block(c[3], c[4]),  # stride 2
                _conv_block(c[4], c[5]),  # stride 1
                _conv_block(c[5], c[6]),  # stride 1
                _conv_block(c[6], c[7]),  # stride 1
            ]
        )
        self.upsample = (True, True, True, True, True, False, False)
        # language enters at the first ``lang_layers`` layers from the bottleneck (paper: 3, strides 32, 16, 8)
        self.lang_proj = nn.ModuleList([nn.Linear(cfg.clip_embed_dim, c[i]) for i in range(cfg.lang_layers)])
        # laterals from the spatial decoder (strides 8, 4, 2, 1, 1, 1) join semantic stages 2..7
        lat = cfg.spatial_decoder
        self.lateral = nn.ModuleList([nn.Conv2d(c[i + 2] + lat[i], c[i + 2], 1) for i in range(6)])
        self.head = nn.Conv2d(c[-1], out_dim, 1)

    def forward(self, clip_feats: list[torch.Tensor], text: torch.Tensor, laterals: list[torch.Tensor]) -> torch.Tensor:
        f4, f8, f16, f32 = clip_feats
        skips = (f16, f8, f4, None, None, None, None)

        def lang(i: int, x: torch.Tensor) -> torch.Tensor:
            return x * self.lang_proj[i](text).to(x.dtype)[:, :, None, None]

        x = lang(0, F.relu(self.bottleneck(f32)))
        for i, (block, up, skip) in enumerate(zip(self.up, self.upsample, skips)):
            stage = i + 1  # stage 0 is the bottleneck
            if up:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            if skip is not None:
                x = torch.cat([x, skip.to(x.dtype)], dim=1)
            x = block(x)
            if stage < len(self.lang_proj):
                x = lang(stage, x)
            if stage >= 2:
                lat = laterals[stage - 2]
                x = F.relu(self.lateral[stage - 2](torch.cat([x, lat.to(x.dtype)], dim=1)))
        return self.head(x)


def _conv_block(c_in: int, c_out: int, double: bool = False) -> nn.Sequential:
    """3x3 conv + ReLU; ``double``: two of them, the first to half the input width (a U-Net 'up' block)."""
    if not double:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True))
    mid = c_in // 2
    return nn.Sequential(
        nn.Conv2d(c_in, mid, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, c_out, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class TwoStreamNet(nn.Module):
    """Spatial + semantic streams over a 6-channel image; ``fusion`` is 'sum' (pick) or 'conv' (key/query)."""

    def __init__(
        self, cfg: ModelConfig, clip: ClipBackbone, out_dim: int, fusion: str, input_conv: bool = False
    ) -> None:
        super().__init__()
        if fusion not in ("sum", "conv"):
            raise ValueError(f"fusion must be 'sum' or 'conv', got {fusion!r}")
        self.fusion = fusion
        self.spatial = SpatialStream(cfg, out_dim)
        self.semantic = SemanticStream(cfg, out_dim)
        self.fuse = nn.Conv2d(2 * out_dim, out_dim, 1) if fusion == "conv" else None
        # ``input_conv``: a 3x3 convolution of the normalised input added to the output (full resolution)
        self.input_conv = nn.Conv2d(6, out_dim, 3, padding=1) if input_conv else None
        # A from-scratch CLIP may give each net its own image trunk (trained with this net's optimiser).
        self.visual = build_vision_trunk(cfg) if cfg.clip_per_net else None
        # Shared, not owned: keep the trunk out of this module's parameters and state dict.
        object.__setattr__(self, "_clip", clip)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """image (B, 6, H, W): RGB 0..255 + height (m) x3; text (B, D) -> (B, out_dim, H, W)."""
        h, w = image.shape[-2:]
        ph, pw = (-h) % MAX_STRIDE, (-w) % MAX_STRIDE
        if ph or pw:  # bottom/right zero padding to CLIP's stride, cropped off again below
            image = F.pad(image, (0, pw, 0, ph))
        # All padding (here and by pick/place) is raw zeros: black, height 0, i.e. empty dark floor.
        # channels_last: several times faster for the narrow convolutions on CPU, and for tensor cores on GPU
        image = image.contiguous(memory_format=torch.channels_last)
        rgb = image[:, :3]
        x = torch.cat([(rgb / 255.0 - COLOR_MEAN) / COLOR_STD, (image[:, 3:] - HEIGHT_MEAN) / HEIGHT_STD], dim=1)
        x = x.contiguous(memory_format=torch.channels_last)
        spatial_out, laterals = self.spatial(x)
        semantic_out = self.semantic(self._clip.image_features(rgb, self.visual), text, laterals)
        if self.fuse is None:
            out = spatial_out + semantic_out
        else:
            out = self.fuse(F.relu(torch.cat([spatial_out, semantic_out], dim=1)))
        if self.input_conv is not None:
            out = out + self.input_conv(x)
        return out[..., :h, :w]
