"""The place net's geometry: fast correlation, rotated crops, and the rotation-bin convention."""

import math

import numpy as np
import pytest
import torch

from cliport_ros.model.policy import bin_to_yaw, rotation_bin
from cliport_ros.model.transport import correlate_direct, correlate_fft, rotated_crops


def test_fft_correlation_equals_direct_convolution():
    g = torch.Generator().manual_seed(0)
    key = torch.randn(2, 3, 96, 72, generator=g, dtype=torch.float64)
    kernels = torch.randn(2, 5, 3, 32, 32, generator=g, dtype=torch.float64)
    direct = correlate_direct(key, kernels)
    fast = correlate_fft(key, kernels)
    assert fast.shape == direct.shape == (2, 5, 65, 41)
    assert torch.allclose(fast, direct, atol=1e-9, rtol=0)
    # float32 as the policy runs it
    fast32 = correlate_fft(key.float(), kernels.float())
    assert fast32.dtype == torch.float32
    assert torch.allclose(fast32.double(), direct, atol=1e-3 * direct.abs().max().item())


def test_fft_correlation_gradients_match_direct():
    g = torch.Generator().manual_seed(1)
    key = torch.randn(1, 2, 40, 40, generator=g, dtype=torch.float64, requires_grad=True)
    kernels = torch.randn(1, 3, 2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 3, 33, 33, generator=g, dtype=torch.float64)
    gk_fast, gq_fast = torch.autograd.grad((correlate_fft(key, kernels) * w).sum(), (key, kernels))
    gk, gq = torch.autograd.grad((correlate_direct(key, kernels) * w).sum(), (key, kernels))
    assert torch.allclose(gk_fast, gk, atol=1e-9) and torch.allclose(gq_fast, gq, atol=1e-9)


def _l_shape(offsets_xy: np.ndarray) -> np.ndarray:
    """1 inside an asymmetric L (world offsets in pixels from the object's origin), else 0."""
    dx, dy = offsets_xy[..., 0], offsets_xy[..., 1]
    bar = (np.abs(dy) <= 1.5) & (dx >= -6.5) & (dx <= 6.5)
    foot = (dx >= 3.5) & (dx <= 6.5) & (dy >= -1.5) & (dy <= 8.5)
    return (bar | foot).astype(np.float64)


def _draw(shape, centre, yaw):
    """Image (rows = y, cols = x) holding the L at pixel ``centre`` turned by ``yaw`` in the x-y plane."""
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    dx, dy = cols - centre[1], rows - centre[0]
    c, s = math.cos(-yaw), math.sin(-yaw)  # sample the unrotated L at R(-yaw) (dx, dy)
    return _l_shape(np.stack([c * dx - s * dy, s * dx + c * dy], axis=-1))


@pytest.mark.parametrize("yaw_deg", [0, 90, -90, 30, 170])
def test_turned_object_matches_the_bin_whose_theta_is_minus_its_yaw(yaw_deg):
    """Correlating raw pixels: an object turned by yaw between pick and place is found at bin theta = -yaw."""
    h, w, size, n_rot = 80, 96, 32, 36
    pick, place, yaw = (40, 24), (38, 70), math.radians(yaw_deg)
    query_image = torch.from_numpy(_draw((h, w), pick, 0.0))[None, None]
    key_image = torch.from_numpy(_draw((h, w), place, yaw))[None, None]
    pad = size // 2
    angles = torch.arange(n_rot, dtype=torch.float64) * (2 * math.pi / n_rot)
    crops = rotated_crops(torch.nn.functional.pad(query_image, (pad,) * 4), torch.tensor([pick]) + pad, size, angles)
    logits = correlate_fft(torch.nn.functional.pad(key_image, (pad,) * 4), crops)[0, :, :h, :w]
    r, rem = divmod(int(torch.argmax(logits)), h * w)
    u, v = divmod(rem, w)
    assert (u, v) == place
    assert r == rotation_bin(yaw, n_rot)
    assert math.isclose(math.cos(bin_to_yaw(r, n_rot) - yaw), 1.0, abs_tol=1e-9)


def test_rotating_the_scene_shifts_the_crops_by_whole_bins():
    """Equivariance: the scene turned by 90 deg about the pick pixel gives the crops of bin r - 9."""
    g = torch.Generator().manual_seed(2)
    size, n_rot, p = 32, 36, 40
    image = torch.rand(1, 6, 2 * p + 1, 2 * p + 1, generator=g)
    # turned(p + R(90) d) = image(p + d): turned[p + dx, p - dy] = image[p + dy, p + dx]
    turned = image.transpose(-2, -1).flip(-1)  # turned[a, b] = image[2p - b, a]
    for dy in (-3, 0, 4):
        for dx in (-2, 0, 5):
            assert torch.equal(turned[0, :, p + dx, p - dy], image[0, :, p + dy, p + dx])
    angles = torch.arange(n_rot) * (2 * math.pi / n_rot)
    centre = torch.tensor([[p, p]])
    base = rotated_crops(image, centre, size, angles)
    rot = rotated_crops(turned, centre, size, angles)
    assert torch.allclose(rot[0, 9], base[0, 0], atol=1e-5)
    assert torch.allclose(rot[0], torch.roll(base[0], shifts=9, dims=0), atol=1e-4)
    assert not torch.allclose(rot[0, 0], base[0, 0], atol=1e-2)


def test_rotation_bin_and_yaw_are_inverse():
    for r in range(36):
        assert rotation_bin(bin_to_yaw(r, 36), 36) == r
    assert rotation_bin(math.radians(90), 36) == 27 and rotation_bin(math.radians(-10), 36) == 1


def test_mirroring_the_scene_across_rows_turns_bin_r_into_bin_minus_r():
    """The place maps of a scene mirrored across the x axis (rows flipped) are this scene's maps flipped,
    bin r of the mirror being bin -r here (what the policy's test-time mirror relies on); the L is chiral, so
    no other bin order fits."""
    h, w, size, n_rot = 80, 96, 32, 36
    pick, place, yaw = (40, 24), (33, 70), math.radians(50)
    query_image = torch.from_numpy(_draw((h, w), pick, 0.0))[None, None]
    key_image = torch.from_numpy(_draw((h, w), place, yaw))[None, None]
    pad = size // 2
    angles = torch.arange(n_rot, dtype=torch.float64) * (2 * math.pi / n_rot)

    def place_maps(query: torch.Tensor, key: torch.Tensor, pick_px: tuple[int, int]) -> torch.Tensor:
        crops = rotated_crops(torch.nn.functional.pad(query, (pad,) * 4), torch.tensor([pick_px]) + pad, size, angles)
        return correlate_fft(torch.nn.functional.pad(key, (pad,) * 4), crops)[0, :, :h, :w]

    logits = place_maps(query_image, key_image, pick)
    mirrored = place_maps(query_image.flip(-2), key_image.flip(-2), (h - 1 - pick[0], pick[1]))
    bins = (-torch.arange(n_rot)) % n_rot
    torch.testing.assert_close(mirrored.flip(-2)[bins], logits, rtol=1e-5, atol=1e-4)  # float32 crops
    assert not torch.allclose(mirrored.flip(-2), logits, atol=1e-2)  # the bins unreversed do not fit
    r, rem = divmod(int(torch.argmax(mirrored)), h * w)
    assert divmod(rem, w) == (h - 1 - place[0], place[1]) and r == rotation_bin(-yaw, n_rot)
