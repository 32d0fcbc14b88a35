"""The place net ("transport"): key features of the padded image correlated with rotated query crops.

Logit (r, u, v) = sum over channels and the crop window of key(padded)[u + i, v + j] * query_r[i, j], where
query_r is the query net applied to the crop of the padded image around the pick pixel rotated by
theta_r = r * 360 / n_rotations degrees (in the workspace's x-y plane, counter-clockwise). An object that
must turn by yaw psi between pick and place matches best at theta = -psi, hence place yaw = -theta.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cliport_ros.model.clip_backbone import ClipBackbone
from cliport_ros.model.config import ModelConfig
from cliport_ros.model.streams import TwoStreamNet

# Rotations whose spectra ``correlate_fft`` holds at once on a CPU (spectra of a few MB stay in reused memory).
CORRELATION_CHUNK = 2


def rotation_angles(n_rotations: int) -> torch.Tensor:
    """The place rotations theta_r = r * 2 pi / n_rotations (radians, float32)."""
    return torch.arange(n_rotations, dtype=torch.float32) * (2 * math.pi / n_rotations)


def correlate_direct(key: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Reference: key (B, C, Hp, Wp), kernels (B, R, C, k, k) -> (B, R, Hp-k+1, Wp-k+1) by grouped conv2d."""
    b, c, hp, wp = key.shape
    _, r, _, k, _ = kernels.shape
    out = F.conv2d(key.reshape(1, b * c, hp, wp), kernels.reshape(b * r, c, k, k), groups=b)
    return out.reshape(b, r, hp - k + 1, wp - k + 1)


def correlate_fft(key: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Same as ``correlate_direct`` through the FFT (exact up to rounding), computed in at least float32."""
    b, c, hp, wp = key.shape
    r, k = kernels.shape[1], kernels.shape[-1]
    chunk = r if key.device.type == "cuda" else CORRELATION_CHUNK  # a GPU takes all of them in one go
    dtype = torch.promote_types(key.dtype, torch.float32)
    device_type = key.device.type if key.device.type in ("cuda", "cpu") else "cpu"
    with torch.autocast(device_type=device_type, enabled=False):
        # Spectra kept transposed, (..., frequency along x, along y), so that every FFT runs along the last,
        # contiguous axis (several times faster on CPU than along a strided one).
        kf = torch.fft.rfft2(key.to(dtype).contiguous(), s=(hp, wp)).transpose(-1, -2)  # (b, c, wf, hp)
        kr, ki = kf.real.contiguous().unsqueeze(1), kf.imag.contiguous().unsqueeze(1)
        kernels = kernels.to(dtype).contiguous()
        # A few rotations at a time: all 36 at once make spectra of ~40 MB, which the allocator maps fresh
        # (and the kernel zero-fills page by page) on every call; that alone tripled the time on some runs.
        out = [_correlate_spectra(kr, ki, kernels[:, i : i + chunk], hp, wp, k) for i in range(0, r, chunk)]
    return torch.cat(out, dim=1)


def _correlate_spectra(
    kr: torch.Tensor, ki: torch.Tensor, kernels: torch.Tensor, hp: int, wp: int, k: int
) -> torch.Tensor:
    """``correlate_fft`` for some rotations, given the key's spectrum (real and imaginary parts)."""
    # The kernels are k x k inside an hp x wp frame: transform their k rows along x first, then the
    # zero-padded columns along y (same result as rfft2 with s=(hp, wp), a fraction of the work).
    q1 = torch.fft.rfft(kernels, n=wp, dim=-1)  # (b, r, c, k, wf)
    qf = torch.fft.fft(q1.transpose(-1, -2).contiguous(), n=hp, dim=-1)  # (b, r, c, wf, hp)
    # Circular cross-correlation sum_c K_c conj(Q_rc) in real arithmetic on contiguous real and imaginary
    # parts (several times faster than complex products on CPU).
    qr, qi = qf.real.contiguous(), qf.imag.contiguous()
    prod = torch.complex((kr * qr + ki * qi).sum(2), (ki * qr - kr * qi).sum(2))  # (b, r, wf, hp)
    # Inverse along y, keeping only the rows that never wrap around (u <= hp - k), then along x.
    rows = torch.fft.ifft(prod, n=hp, dim=-1)[..., : hp - k + 1]
    out = torch.fft.irfft(rows.transpose(-1, -2).contiguous(), n=wp, dim=-1)
    return out[..., : wp - k + 1]


def rotated_crops(padded: torch.Tensor, centres: torch.Tensor, size: int, angles: torch.Tensor) -> torch.Tensor:
    """Crops (B, R, C, size, size) of ``padded`` about ``centres`` (B, 2; row, col) turned by ``angles`` (R,).

    Crop pixel (i, j) samples the image at centre + R(theta) (j - size/2, i - size/2) in (x = col, y = row),
    bilinearly; crop index (size/2, size/2) is the centre pixel itself.
    """
    b, c, hp, wp = padded.shape
    r = angles.shape[0]
    offs = torch.arange(size, device=padded.device, dtype=torch.float32) - size // 2
    di, dj = torch.meshgrid(offs, offs, indexing="ij")  # row and column offsets
    cos, sin = torch.cos(angles.float())[:, None, None], torch.sin(angles.float())[:, None, None]
    cols = cos * dj - sin * di  # (R, size, size)
    rows = sin * dj + cos * di
    centres = centres.to(padded.device).float()
    rows = rows[None] + centres[:, 0, None, None, None]  # (B, R, size, size)
    cols = cols[None] + centres[:, 1, None, None, None]
    # grid_sample with align_corners=True: -1 and 1 are the centres of the first and last pixels
    grid = torch.stack([cols / (wp - 1) * 2 - 1, rows / (hp - 1) * 2 - 1], dim=-1)
    src = padded[:, None].expand(b, r, c, hp, wp).reshape(b * r, c, hp, wp)
    out = F.grid_sample(
        src,
        grid.reshape(b * r, size, size, 2).to(padded.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    return out.reshape(b, r, c, size, size)


class Transport(nn.Module):
    """Key and query two-stream nets (concat + ReLU + 1x1 conv fusion) and their correlation."""

    def __init__(self, cfg: ModelConfig, clip: ClipBackbone) -> None:
        super().__init__()
        self.n_rotations = cfg.n_rotations
        self.crop = cfg.crop_size
        self.pad = cfg.pad
        kq, conv = cfg.key_query_dim, cfg.place_input_conv
        self.key = TwoStreamNet(cfg, clip, out_dim=kq, fusion="conv", input_conv=conv)
        self.query = TwoStreamNet(cfg, clip, out_dim=kq, fusion="conv", input_conv=conv)
        # normalized_correlation: divide by the number of products in each logit's sum, sqrt'd
        self.logit_scale = 1.0 / math.sqrt(kq * self.crop * self.crop) if cfg.normalized_correlation else 1.0
        self.register_buffer("angles", rotation_angles(cfg.n_rotations), persistent=False)
        self.correlate = correlate_fft

    def crops(self, image: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        """The rotated crops (B, R, 6, k, k) of the padded image around the pick pixels (B, 2)."""
        padded = F.pad(image, (self.pad,) * 4)
        return rotated_crops(padded, pick.float() + self.pad, self.crop, self.angles)

    def forward(self, image: torch.Tensor, pick: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """image (B, 6, H, W), pick pixels (B, 2) (row, col), text (B, D) -> place logits (B, R, H, W)."""
        b, _, h, w = image.shape
        padded = F.pad(image, (self.pad,) * 4)
        key = self.key(padded, text)
        crops = rotated_crops(padded, pick.float() + self.pad, self.crop, self.angles)
        r = self.n_rotations
        query = self.query(crops.reshape(b * r, *crops.shape[2:]), text.repeat_interleave(r, dim=0))
        query = query.reshape(b, r, *query.shape[1:])
        logits = self.correlate(key, query)[:, :, :h, :w]
        return logits * self.logit_scale if self.logit_scale != 1.0 else logits
