"""The pick net ("attention"): one logit per pixel of the top-down image, softmax over all of them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cliport_ros.model.clip_backbone import ClipBackbone
from cliport_ros.model.config import ModelConfig
from cliport_ros.model.streams import TwoStreamNet


class Attention(nn.Module):
    """Two-stream net with summed 1-channel outputs; the input is zero-padded to a square as in the paper."""

    def __init__(self, cfg: ModelConfig, clip: ClipBackbone) -> None:
        super().__init__()
        self.pad_square = cfg.pick_pad_square
        self.net = TwoStreamNet(cfg, clip, out_dim=1, fusion="sum")

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """image (B, 6, H, W), text (B, D) -> pick logits (B, H, W)."""
        h, w = image.shape[-2:]
        top = left = 0
        if self.pad_square and h != w:
            side = max(h, w)
            top, left = (side - h) // 2, (side - w) // 2
            image = F.pad(image, (left, side - w - left, top, side - h - top))
        logits = self.net(image, text)[:, 0]
        return logits[:, top : top + h, left : left + w]
