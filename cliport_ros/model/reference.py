"""The reference layout: CLIPort's network module for module as the reference implementation builds it.

github cliport/cliport, agent ``cliport`` (TwoStreamClipLingUNetLatTransporterAgent, ``batchnorm: False``,
``lang_fusion_type: mult``, pick fusion ``add``, place fusion ``conv``). Module names follow the reference's,
so that its state dict maps onto ours key for key (``cliport_ros.model.importer``); the functions are the
same, computed faster where that changes nothing:

- ``SpatialStream`` (the reference's ResNet45_10s): bias-free residual blocks, an encoder to stride 16 and a
  decoder whose stages each end in a x2 bilinear upsampling (``align_corners=True``), down to twice the input
  resolution, where a two-block head makes the output; it is resized back by a 2x2 mean (what the
  reference's ``F.interpolate(bilinear)`` of an exact halving computes). Its laterals are the inputs of the
  six decoder stages (strides 16, 8, 4, 2, 1, 1/2).
- ``SemanticStream`` (CLIPLingUNetLat): CLIP's image stages, a 3x3 bottleneck, three U-Net up blocks (with
  the batch norm the reference keeps there), three residual stages, the sentence multiplied in before each
  up block and each decoder output joined with a lateral (ReLU(concat) -> 1x1 conv).
- ``ReferenceAttention`` / ``ReferenceTransport``: pick = sum of the two streams over the image padded to a
  square; place = key and query nets (ReLU(concat) -> 1x1 fusion), the query on 36 rotated crops, correlated
  with the FFT (exact) instead of a direct convolution.

Two output-changing details of the reference are reproduced when ``reference_resampling`` is on (imported
checkpoints): the crops sampled as kornia 0.4.1's warp_affine samples them, and the correlation resized
385x225 -> 384x224 before its crop. ``up_batchnorm_stats='batch'`` normalises the up blocks with each
forward's statistics, as the reference's eval.py (and so the paper's tables) did.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cliport_ros.model.clip_backbone import ClipBackbone
from cliport_ros.model.config import ModelConfig
from cliport_ros.model.transport import correlate_fft, rotation_angles

# The reference's input statistics (utils.preprocess), as float32 constants: the spatial streams'
# ('transporter') and CLIP's ('clip'); both normalise the height channels with the transporter's.
TRANSPORTER_COLOR_MEAN = (0.18877631,) * 3
TRANSPORTER_COLOR_STD = (0.07276466,) * 3
CLIP_COLOR_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_COLOR_STD = (0.26862954, 0.26130258, 0.27577711)
HEIGHT_MEAN, HEIGHT_STD = 0.00509261, 0.00903967
# The deepest stride (CLIP's last stage); other input sizes are padded up to a multiple of it.
MAX_STRIDE = 32


def normalise(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(B, 6, H, W) RGB 0..255 + height (m) x3 -> ((rgb / 255) - mean) / std, (h - mean_h) / std_h."""
    m = torch.tensor(mean, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    rgb = (image[:, :3] / 255 - m) / s
    height = (image[:, 3:] - HEIGHT_MEAN) / HEIGHT_STD
    return torch.cat([rgb, height], dim=1).contiguous(memory_format=torch.channels_last)


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    """x2 bilinear with ``align_corners=True`` (the reference's UpsamplingBilinear2d and U-Net Up)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


def _halve(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The reference's ``F.interpolate(x, size, bilinear)`` from twice ``size``: exactly a 2x2 mean."""
    if tuple(x.shape[-2:]) != (2 * size[0], 2 * size[1]):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return F.avg_pool2d(x, 2)


class ConvBlock(nn.Module):
    """Bias-free 1x1 -> 3x3 (stride) -> 1x1 residual block with a projected 1x1 shortcut (reference ConvBlock)."""

    def __init__(self, c_in: int, filters: Sequence[int], stride: int = 1, final_relu: bool = True) -> None:
        super().__init__()
        f1, f2, f3 = filters
        self.conv1 = nn.Conv2d(c_in, f1, 1, bias=False)
        self.conv2 = nn.Conv2d(f1, f2, 3, stride=stride, padding=1, bias=False)
        self.conv3 = nn.Conv2d(f2, f3, 1, bias=False)
        self.shortcut = nn.Sequential(nn.Conv2d(c_in, f3, 1, bias=False))
        self.stride = stride
        self.final_relu = final_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in place on fresh convolution outputs: a new buffer per ReLU or sum costs more than the op itself
        y = self.conv1(x).relu_()
        y = self.conv2(y).relu_()
        y = self.conv3(y)
        # The strided 1x1 shortcut as subsampling + 1x1 convolution (the same function): torch 2.14's oneDNN
        # backward of a strided 1x1 convolution in channels_last crashes on CPU.
        skip = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        y += self.shortcut(skip)
        return y.relu_() if self.final_relu else y


class IdentityBlock(nn.Module):
    """Bias-free 1x1 -> 3x3 -> 1x1 residual block with an identity shortcut (reference IdentityBlock)."""

    def __init__(self, c_in: int, filters: Sequence[int], final_relu: bool = True) -> None:
        super().__init__()
        f1, f2, f3 = filters
        self.conv1 = nn.Conv2d(c_in, f1, 1, bias=False)
        self.conv2 = nn.Conv2d(f1, f2, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(f2, f3, 1, bias=False)
        self.final_relu = final_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x).relu_()
        y = self.conv2(y).relu_()
        y = self.conv3(y)
        y += x
        return y.relu_() if self.final_relu else y


class Upsample2(nn.Module):
    """x2 bilinear upsampling with ``align_corners=True`` (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _upsample2(x)


def _stage(c_in: int, width: int, blocks: int, stride: int = 1, upsample: bool = False) -> nn.Sequential:
    """ConvBlock + (blocks - 1) IdentityBlocks of one width [+ x2 upsampling]: a ResNet45_10s layer."""
    layers: list[nn.Module] = [ConvBlock(c_in, (width,) * 3, stride)]
    layers += [IdentityBlock(width, (width,) * 3) for _ in range(blocks - 1)]
    if upsample:
        layers.append(Upsample2())
    return nn.Sequential(*layers)


class SpatialStream(nn.Module):
    """The reference's ResNet45_10s: returns (output at the input size, the six laterals)."""

    def __init__(self, cfg: ModelConfig, out_dim: int) -> None:
        super().__init__()
        enc, dec, n = cfg.spatial_encoder, cfg.spatial_decoder, cfg.spatial_blocks
        self.conv1 = nn.Sequential(nn.Conv2d(6, enc[0], 3, padding=1), nn.ReLU(inplace=True))
        self.layer1 = _stage(enc[0], enc[0], n)
        self.layer2 = _stage(enc[0], enc[1], n, stride=2)
        self.layer3 = _stage(enc[1], enc[2], n, stride=2)
        self.layer4 = _stage(enc[2], enc[3], n, stride=2)
        self.layer5 = _stage(enc[3], enc[4], n, stride=2)
        self.layer6 = _stage(enc[4], dec[0], n, upsample=True)
        self.layer7 = _stage(dec[0], dec[1], n, upsample=True)
        self.layer8 = _stage(dec[1], dec[2], n, upsample=True)
        self.layer9 = _stage(dec[2], dec[3], n, upsample=True)
        self.layer10 = _stage(dec[3], dec[4], n, upsample=True)
        mid = dec[5]
        self.conv2 = nn.Sequential(
            ConvBlock(dec[4], (mid, mid, out_dim), final_relu=False),
            IdentityBlock(out_dim, (mid, mid, out_dim), final_relu=False),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Normalised (B, 6, H, W) -> (B, out_dim, H, W) and the laterals (strides 16, 8, 4, 2, 1, 1/2)."""
        size = (x.shape[-2], x.shape[-1])
        for layer in (self.conv1, self.layer1, self.layer2, self.layer3, self.layer4, self.layer5):
            x = layer(x)
        laterals = []
        for layer in (self.layer6, self.layer7, self.layer8, self.layer9, self.layer10, self.conv2):
            laterals.append(x)
            x = layer(x)
        return _halve(x, size), laterals


class Conv3x3(nn.Conv2d):
    """3x3 convolution (padding 1); outside training, on maps of at most 2x2 pixels (the query crops' deepest
    features) computed as one matrix product over the unfolded input, about twice as fast on a CPU there."""

    def __init__(self, c_in: int, c_out: int, bias: bool = True) -> None:
        super().__init__(c_in, c_out, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if torch.is_grad_enabled() or h * w > 4 or x.device.type != "cpu":
            return super().forward(x)
        cols = F.unfold(x, 3, padding=1).transpose(1, 2).reshape(n * h * w, c * 9)
        out = cols @ self.weight.reshape(self.out_channels, -1).t()
        if self.bias is not None:
            out += self.bias
        return out.view(n, h, w, self.out_channels).permute(0, 3, 1, 2)


class UpBatchNorm(nn.BatchNorm2d):
    """The up blocks' batch norm; outside training it may normalise with each forward's own statistics."""

    batch_stats = False  # set from ModelConfig.up_batchnorm_stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.batch_stats:
            return super().forward(x)
        # eval.py's behaviour: batch statistics, running statistics neither used nor changed
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class DoubleConv(nn.Module):
    """(3x3 conv -> batch norm -> ReLU) x 2, the first to ``mid`` channels (U-Net, reference unet.py)."""

    def __init__(self, c_in: int, c_out: int, mid: int) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(
            Conv3x3(c_in, mid),
            UpBatchNorm(mid),
            nn.ReLU(inplace=True),
            Conv3x3(mid, c_out),
            UpBatchNorm(c_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Up(nn.Module):
    """x2 upsampling (``align_corners=True``), padding to the skip's size, cat([skip, x]), DoubleConv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = DoubleConv(c_in, c_out, c_in // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = _upsample2(x)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dy or dx:
            x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip.to(x.dtype), x], dim=1))


class FusionConv(nn.Module):
    """ReLU(cat([x, y])) -> bias-free 1x1 conv (the reference's FusionConv / FusionConvLat).

    ``non_negative``: both inputs are outputs of ReLUs (or their bilinear upsampling), so the ReLU is the
    identity there; outside training the concatenation is then skipped: W [x; y] = W_x x + W_y y, the same
    function without writing and reading the concatenated maps (up to 40 % of the block's time).
    """

    def __init__(self, c_in: int, c_out: int, non_negative: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(c_in, c_out, 1, bias=False))
        self.non_negative = non_negative

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.conv(torch.cat([x, y.to(x.dtype)], dim=1))
        weight, cx = self.conv[1].weight, x.shape[1]
        if not self.non_negative:  # fresh stream outputs, read nowhere else: rectified in place
            x, y = x.relu_(), y.relu_()
        out = F.conv2d(x, weight[:, :cx])
        out += F.conv2d(y.to(x.dtype), weight[:, cx:])
        return out


class SemanticStream(nn.Module):
    """The reference's CLIPLingUNetLat over a CLIP trunk: shared (not owned) or its own (``clip_rn50``)."""

    def __init__(self, cfg: ModelConfig, out_dim: int, clip: ClipBackbone | None) -> None:
        super().__init__()
        c, enc, dec, n = cfg.semantic_decoder, cfg.spatial_encoder, cfg.spatial_decoder, cfg.spatial_blocks
        s4, s8, s16, s32 = cfg.clip_stage_channels
        if clip is None:
            self.clip_rn50 = ClipBackbone(cfg)  # this net's own trunk and text encoder (clip_per_net)
        else:
            object.__setattr__(self, "clip_rn50", clip)  # shared: kept out of this module's state dict
        self.lang_proj1 = nn.Linear(cfg.clip_embed_dim, c[0])
        self.lang_proj2 = nn.Linear(cfg.clip_embed_dim, c[1])
        self.lang_proj3 = nn.Linear(cfg.clip_embed_dim, c[2])
        self.conv1 = nn.Sequential(Conv3x3(s32, c[0], bias=False), nn.ReLU(inplace=True))
        self.up1 = Up(c[0] + s16, c[1])
        self.lat_fusion1 = FusionConv(c[1] + enc[4], c[1], non_negative=True)
        self.up2 = Up(c[1] + s8, c[2])
        self.lat_fusion2 = FusionConv(c[2] + dec[0], c[2], non_negative=True)
        self.up3 = Up(c[2] + s4, c[3])
        self.lat_fusion3 = FusionConv(c[3] + dec[1], c[3], non_negative=True)
        self.layer1 = _stage(c[3], c[4], n, upsample=True)
        self.lat_fusion4 = FusionConv(c[4] + dec[2], c[4], non_negative=True)
        self.layer2 = _stage(c[4], c[5], n, upsample=True)
        self.lat_fusion5 = FusionConv(c[5] + dec[3], c[5], non_negative=True)
        self.layer3 = _stage(c[5], c[6], n, upsample=True)
        self.lat_fusion6 = FusionConv(c[6] + dec[4], c[6], non_negative=True)
        self.conv2 = nn.Sequential(nn.Conv2d(c[6], out_dim, 1))

    @property
    def clip(self) -> ClipBackbone:
        return self.clip_rn50

    def forward(self, image: torch.Tensor, laterals: list[torch.Tensor], text: torch.Tensor) -> torch.Tensor:
        """Raw (B, 6, H, W), the spatial stream's laterals, sentence features (B, D) -> (B, out, H, W)."""
        size = (image.shape[-2], image.shape[-1])
        x = normalise(image, CLIP_COLOR_MEAN, CLIP_COLOR_STD)[:, :3]
        f4, f8, f16, f32 = self.clip_rn50.image_stages(x)
        text = text.to(f32.dtype)

        def lang(proj: nn.Linear, x: torch.Tensor) -> torch.Tensor:
            return x * proj(text).to(x.dtype)[:, :, None, None]

        x = self.conv1(f32)
        x = self.lat_fusion1(self.up1(lang(self.lang_proj1, x), f16), laterals[0])
        x = self.lat_fusion2(self.up2(lang(self.lang_proj2, x), f8), laterals[1])
        x = self.lat_fusion3(self.up3(lang(self.lang_proj3, x), f4), laterals[2])
        x = self.lat_fusion4(self.layer1(x), laterals[3])
        x = self.lat_fusion5(self.layer2(x), laterals[4])
        x = self.lat_fusion6(self.layer3(x), laterals[5])
        return _halve(self.conv2(x), size)


def _batch_stats_at_inference(module: nn.Module) -> bool:
    """Whether ``module``'s up blocks normalise each forward by its own statistics outside training."""
    return not module.training and any(isinstance(m, UpBatchNorm) and m.batch_stats for m in module.modules())


def _pad_to_stride(image: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Zero-pad (raw space) bottom/right to a multiple of MAX_STRIDE; the reference sizes need none."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % MAX_STRIDE, (-w) % MAX_STRIDE
    if ph or pw:
        image = F.pad(image, (0, pw, 0, ph))
    return image.contiguous(memory_format=torch.channels_last), h, w


def _two_streams(
    one: SpatialStream, two: SemanticStream, image: torch.Tensor, text: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    padded, h, w = _pad_to_stride(image)
    out_one, laterals = one(normalise(padded, TRANSPORTER_COLOR_MEAN, TRANSPORTER_COLOR_STD))
    out_two = two(padded, laterals, text)
    return out_one[..., :h, :w], out_two[..., :h, :w]


class ReferenceAttention(nn.Module):
    """The pick net (reference TwoStreamAttentionLangFusionLat): streams summed over the square-padded image."""

    def __init__(self, cfg: ModelConfig, clip: ClipBackbone | None) -> None:
        super().__init__()
        self.attn_stream_one = SpatialStream(cfg, 1)
        self.attn_stream_two = SemanticStream(cfg, 1, clip)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """image (B, 6, H, W) raw, text (B, D) -> pick logits (B, H, W)."""
        if image.shape[0] > 1 and _batch_stats_at_inference(self):
            return torch.cat([self.forward(image[i : i + 1], text[i : i + 1]) for i in range(image.shape[0])])
        h, w = image.shape[-2:]
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        if h != w:  # zero padding of the raw image, centred, as np.pad in the reference
            image = F.pad(image, (left, side - w - left, top, side - h - top))
        one, two = _two_streams(self.attn_stream_one, self.attn_stream_two, image, text)
        return (one + two)[:, 0, top : top + h, left : left + w]


def kornia_crop_grid(
    centres: torch.Tensor, size: int, angles: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source rows and columns (B, R, size, size) that the reference's crops sample (float64 pixel units).

    The reference rotates the whole padded image (height x width) with kornia 0.4.1's warp_affine about
    the pivot ``centres`` (B, 2; row, col) by +angle, then crops ``pivot - size/2 : pivot + size/2``.
    warp_affine normalises pixel coordinates with (W - 1) but samples with align_corners=False, so output
    pixel (i, j) samples the source at M^-1 applied to ((j + 0.5)(W - 1)/W, (i + 0.5)(H - 1)/H), rescaled by
    W/(W - 1) and H/(H - 1), minus 0.5.
    """
    half = size // 2
    offs = torch.arange(size, dtype=torch.float64) - half
    di, dj = torch.meshgrid(offs, offs, indexing="ij")
    c = centres.detach().to("cpu", torch.float64)
    cy, cx = c[:, 0, None, None, None], c[:, 1, None, None, None]  # (B, 1, 1, 1)
    cos = torch.cos(angles.detach().to("cpu", torch.float64))[None, :, None, None]
    sin = torch.sin(angles.detach().to("cpu", torch.float64))[None, :, None, None]
    xd = (cx + dj + 0.5) * (width - 1) / width - cx
    yd = (cy + di + 0.5) * (height - 1) / height - cy
    xs = (cos * xd - sin * yd + cx) * width / (width - 1) - 0.5
    ys = (sin * xd + cos * yd + cy) * height / (height - 1) - 0.5
    return ys, xs


def exact_crop_grid(centres: torch.Tensor, size: int, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Source rows and columns (B, R, size, size) of crops turned exactly about the pick pixel."""
    half = size // 2
    offs = torch.arange(size, dtype=torch.float64) - half
    di, dj = torch.meshgrid(offs, offs, indexing="ij")
    c = centres.detach().to("cpu", torch.float64)
    cos = torch.cos(angles.detach().to("cpu", torch.float64))[None, :, None, None]
    sin = torch.sin(angles.detach().to("cpu", torch.float64))[None, :, None, None]
    xs = cos * dj - sin * di + c[:, 1, None, None, None]
    ys = sin * dj + cos * di + c[:, 0, None, None, None]
    return ys, xs


def sample_crops(padded: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (zeros outside) of ``padded`` (B, C, H, W) at pixel positions (B, R, k, k)."""
    b, c, hp, wp = padded.shape
    r, k = rows.shape[1], rows.shape[-1]
    grid = torch.stack([cols / (wp - 1) * 2 - 1, rows / (hp - 1) * 2 - 1], dim=-1)
    # the R crops of a sample as one tall grid over its image: no copy of the image per rotation
    grid = grid.to(padded.device, padded.dtype).reshape(b, r * k, k, 2)
    out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(b, c, r, k, k).transpose(1, 2)


def _resize_weights(n_out: int, n_in: int, pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source index and weight of the reference's resize of the padded correlation, along one axis.

    The reference correlates with padding ``pad`` (giving n_out + 2 pad + 1 outputs), resizes that map to
    n_out + 2 pad with bilinear, align_corners=False, then drops ``pad`` on each side; our correlation holds
    only the n_in rows that survive, offset by ``pad``. Output i = (1 - w_i) src[lo_i] + w_i src[lo_i + 1].
    """
    full_in, full_out = n_out + 2 * pad + 1, n_out + 2 * pad
    y = torch.arange(pad, pad + n_out, dtype=torch.float64)
    src = ((y + 0.5) * full_in / full_out - 0.5).clamp(min=0) - pad
    lo = src.floor().long().clamp(max=n_in - 2)
    return lo.to(device), (src - lo).to(device, torch.float32)


def reference_resize(out: torch.Tensor, rows: int, cols: int, pad: int) -> torch.Tensor:
    """(B, R, rows + 1, cols + 1) correlation -> (B, R, rows, cols) as the reference's resize computes it."""
    lo, w = _resize_weights(rows, out.shape[-2], pad, out.device)
    out = out.float()
    out = torch.lerp(out[..., lo, :], out[..., lo + 1, :], w[:, None])
    lo, w = _resize_weights(cols, out.shape[-1], pad, out.device)
    return torch.lerp(out[..., lo], out[..., lo + 1], w)


class ReferenceTransport(nn.Module):
    """The place net (reference TwoStreamTransportLangFusionLat): key and query nets and their correlation."""

    def __init__(self, cfg: ModelConfig, clips: tuple[ClipBackbone | None, ClipBackbone | None]) -> None:
        super().__init__()
        k = cfg.key_query_dim
        self.key_stream_one = SpatialStream(cfg, k)
        self.key_stream_two = SemanticStream(cfg, k, clips[0])
        self.query_stream_one = SpatialStream(cfg, k)
        self.query_stream_two = SemanticStream(cfg, k, clips[1])
        self.fusion_key = FusionConv(2 * k, k)
        self.fusion_query = FusionConv(2 * k, k)
        self.n_rotations, self.crop, self.pad = cfg.n_rotations, cfg.crop_size, cfg.pad
        self.reference_resampling = cfg.reference_resampling
        self.register_buffer("angles", rotation_angles(cfg.n_rotations), persistent=False)
        self.correlate = correlate_fft

    def crops(self, image: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        """The rotated raw crops (B, R, 6, k, k) of the padded image around the pick pixels (B, 2; row, col)."""
        padded = F.pad(image, (self.pad,) * 4)
        return self._crops(padded, pick)

    def _crops(self, padded: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        centres = pick.detach().double().cpu() + self.pad
        if self.reference_resampling:
            rows, cols = kornia_crop_grid(centres, self.crop, self.angles, *padded.shape[-2:])
        else:
            rows, cols = exact_crop_grid(centres, self.crop, self.angles)
        return sample_crops(padded, rows, cols)

    def features(
        self, image: torch.Tensor, pick: torch.Tensor, text_key: torch.Tensor, text_query: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Key features (B, k, H + 2 pad, W + 2 pad) and query kernels (B, R, k, crop, crop)."""
        b = image.shape[0]
        padded = F.pad(image, (self.pad,) * 4)
        key = self.fusion_key(*_two_streams(self.key_stream_one, self.key_stream_two, padded, text_key))
        crops = self._crops(padded, pick)
        r = self.n_rotations
        flat = crops.reshape(b * r, *crops.shape[2:])
        # each sample's 36 crops are one batch (the up blocks' batch statistics span them, as in the reference)
        query = self.fusion_query(
            *_two_streams(self.query_stream_one, self.query_stream_two, flat, text_query.repeat_interleave(r, dim=0))
        )
        return key, query.reshape(b, r, *query.shape[1:])

    def forward(
        self, image: torch.Tensor, pick: torch.Tensor, text_key: torch.Tensor, text_query: torch.Tensor
    ) -> torch.Tensor:
        """image (B, 6, H, W), pick pixels (B, 2), sentences for key and query -> place logits (B, R, H, W)."""
        h, w = image.shape[-2:]
        if image.shape[0] > 1 and _batch_stats_at_inference(self):
            # batch statistics over the 36 crops of one sample, never across samples
            return torch.cat(
                [
                    self.forward(image[i : i + 1], pick[i : i + 1], text_key[i : i + 1], text_query[i : i + 1])
                    for i in range(image.shape[0])
                ]
            )
        key, query = self.features(image, pick, text_key, text_query)
        out = self.correlate(key, query)  # (B, R, h + 1, w + 1): every window inside the padded key
        if not self.reference_resampling:
            return out[:, :, :h, :w]
        return reference_resize(out, h, w, self.pad)
