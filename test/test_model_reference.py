"""The reference layout: the reference agent's state dict maps 1:1 onto ours; its resampling and batch-norm modes.

Fast: sizes come from the meta device, behaviour from small networks of the same layout. The comparison with
the reference network's outputs is test_model_golden.py.
"""

from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_checkpoints import golden_dir, manifest

from cliport_ros.model import ModelConfig
from cliport_ros.model.importer import _expected_state, our_key_to_reference, reference_key_to_ours
from cliport_ros.model.policy import CLIPortModel
from cliport_ros.model.reference import (
    UpBatchNorm,
    exact_crop_grid,
    kornia_crop_grid,
    sample_crops,
)

INSTRUCTION = "put the red blocks in a green bowl"


def small_reference(**overrides) -> ModelConfig:
    """The tiny sizes in the reference layout (CLIP from scratch)."""
    fields = dict(
        layout="reference",
        bottleneck_divisor=1,
        semantic_double_conv=True,
        lang_layers=3,
        semantic_decoder=(64, 32, 32, 16, 8, 8, 8, 8),
    )
    return ModelConfig.named("tiny", **{**fields, **overrides})


def random_image(batch: int = 1, rows: int = 64, cols: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randint(0, 256, (batch, 3, rows, cols), generator=g).float()
    height = torch.rand(batch, 1, rows, cols, generator=g).expand(-1, 3, -1, -1) * 0.1
    return torch.cat([rgb, height], dim=1)


def test_paper_has_the_reference_parameter_count():
    """277,015,435 trainable parameters (the reference agent's, without CLIP) and one 87.2 M CLIP trunk."""
    with torch.device("meta"):
        model = CLIPortModel(ModelConfig.named("paper", clip_weights="none"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 277_015_435
    counts = model.parameter_counts()
    assert counts["clip"] == 87_217_505 and counts["pick"] + counts["place_key"] + counts["place_query"] == trainable


@pytest.mark.parametrize("clip_per_net", [False, True])
def test_every_reference_tensor_maps_to_exactly_one_of_ours(clip_per_net):
    """Manifest of the reference agent (1940 entries) -> our state dict: same shapes, nothing left over on our
    side, and on theirs only CLIP's unused attention pools."""
    entries = manifest(golden_dir())
    assert len(entries) == 1940
    ours = _expected_state(ModelConfig.named("paper", clip_per_net=clip_per_net))
    hits: Counter[str] = Counter()
    dropped = []
    for e in entries:
        target = reference_key_to_ours(e["key"], clip_per_net)
        if target is None:
            dropped.append(e["key"])
            continue
        assert target in ours, e["key"]
        assert ours[target][0] == tuple(e["shape"]), e["key"]
        hits[target] += 1
    assert set(hits) == set(ours)  # every tensor of ours has a source
    assert dropped and all(".clip_rn50.visual.attnpool." in k for k in dropped)
    assert len(dropped) == 3 * 9  # q, k, v, c_proj (weight, bias) and the positional embedding, per copy
    shared = {k for k, n in hits.items() if n == 3}
    if clip_per_net:
        assert set(hits.values()) == {1}
    else:  # a shared trunk takes the three copies; everything else has exactly one source
        assert shared == {k for k in ours if k.startswith("clip.clip.")} and set(hits.values()) == {1, 3}
    # and the inverse map names the same sources
    for key in ours:
        assert all(reference_key_to_ours(ref, clip_per_net) == key for ref in our_key_to_reference(key))


def test_reference_layout_validation_names_the_field():
    with pytest.raises(ValueError, match="bottleneck_divisor must be 1 with layout='reference'"):
        ModelConfig.named("paper", bottleneck_divisor=4)
    with pytest.raises(ValueError, match=r"semantic_decoder\[7\] must equal semantic_decoder\[6\]"):
        ModelConfig.named("paper", semantic_decoder=(1024, 512, 256, 128, 64, 32, 16, 32))
    with pytest.raises(ValueError, match="layout must be one of"):
        ModelConfig.named("paper", layout="other")
    with pytest.raises(ValueError, match="up_batchnorm_stats must be one of"):
        ModelConfig.named("paper", up_batchnorm_stats="train")
    with pytest.raises(ValueError, match="belong to the reference layout"):
        ModelConfig.named("tiny", reference_resampling=True)
    assert ModelConfig.named("tiny").layout == "compact" and ModelConfig.named("paper").layout == "reference"


def test_exact_crops_turn_about_the_pick_pixel_and_kornia_crops_are_the_reference_sampling():
    centres = torch.tensor([[40.0, 30.0]])
    angles = torch.tensor([0.0, np.pi / 2])
    rows, cols = exact_crop_grid(centres, 8, angles)
    assert rows[0, 0, 4, 4] == 40 and cols[0, 0, 4, 4] == 30  # crop centre = the pick pixel
    assert rows[0, 0, 4, 5] == 40 and cols[0, 0, 4, 5] == 31  # r = 0: the image as it is
    # a quarter turn: the crop's +column direction samples the image's +row direction (counter-clockwise)
    assert torch.allclose(rows[0, 1, 4, 5], torch.tensor(41.0, dtype=torch.float64))
    assert torch.allclose(cols[0, 1, 4, 5], torch.tensor(30.0, dtype=torch.float64))
    # kornia's sampling is the identity at 0 degrees and off by a fraction of a pixel once turned
    k_rows, k_cols = kornia_crop_grid(centres, 8, angles, 96, 64)
    assert torch.allclose(k_rows[0, 0], rows[0, 0]) and torch.allclose(k_cols[0, 0], cols[0, 0])
    off = torch.hypot(k_rows[0, 1] - rows[0, 1], k_cols[0, 1] - cols[0, 1])
    assert 0.05 < off.max() < 1.5
    # sampling at integer positions returns the pixels themselves
    image = random_image(rows=96, cols=64)
    crop = sample_crops(image, rows[:, :1], cols[:, :1])[0, 0]
    assert torch.allclose(crop, image[0, :, 36:44, 26:34])


def test_reference_resampling_is_the_references_padded_correlation_and_resize():
    """Our FFT correlation + resize matrices == F.conv2d(padding=pad) -> bilinear resize -> crop (the reference)."""
    torch.manual_seed(0)
    cfg = small_reference(crop_size=32, n_rotations=4, reference_resampling=True)
    model = CLIPortModel(cfg).eval()
    image = random_image(rows=64, cols=32)
    pick = torch.tensor([[20, 10]])
    with torch.no_grad():
        text = model.text([INSTRUCTION])
        ours = model.place_logits(image, pick, text)[0]
        key, query = model.transport.features(image, pick, text.place, text.place_query)
        pad = cfg.pad
        full = F.conv2d(key, query[0], padding=pad)  # (1, R, H + 2 pad + 1, W + 2 pad + 1)
        resized = F.interpolate(full, size=(key.shape[-2], key.shape[-1]), mode="bilinear")
        reference = resized[0, :, pad:-pad, pad:-pad]
    assert ours.shape == reference.shape == (4, 64, 32)
    assert torch.allclose(ours, reference, atol=1e-4 * float(reference.abs().max()))
    # without the resize the map is the exact correlation, which differs by a fraction of a pixel's shift
    model.transport.reference_resampling = False
    with torch.no_grad():
        exact = model.place_logits(image, pick, text)[0]
    assert torch.allclose(exact, full[0, :, pad : pad + 64, pad : pad + 32], atol=1e-4 * float(full.abs().max()))


def test_up_batch_norm_modes():
    """running: the stored statistics; batch: each forward's own (per sample, never across a batch)."""
    torch.manual_seed(0)
    model = CLIPortModel(small_reference(n_rotations=4, crop_size=32)).eval()
    bns = [m for m in model.modules() if isinstance(m, UpBatchNorm)]
    assert len(bns) == 18  # 2 per up block, 3 up blocks, 3 nets
    for bn in bns:  # running statistics far from the batch's, so that the two modes differ
        bn.running_mean.fill_(5.0)
        bn.running_var.fill_(9.0)
    images = random_image(batch=2, seed=3)
    picks = torch.tensor([[10, 10], [30, 20]])
    with torch.no_grad():
        text = model.text([INSTRUCTION, "put the blue blocks in a red bowl"])
        running = model.pick_logits(images, text)
        model.set_up_batchnorm_stats("batch")
        batch = model.pick_logits(images, text)
        batch_place = model.place_logits(images, picks, text)
        one = model.text([INSTRUCTION])
        alone = model.pick_logits(images[:1], one)
        alone_place = model.place_logits(images[:1], picks[:1], one)
    assert not torch.allclose(running, batch)
    assert torch.allclose(batch[:1], alone, atol=1e-5) and torch.allclose(batch_place[:1], alone_place, atol=1e-5)
    assert all(bn.running_mean.eq(5.0).all() for bn in bns)  # inference never changes them
    with pytest.raises(ValueError, match="up_batchnorm_stats must be one of"):
        model.set_up_batchnorm_stats("eval")


def test_per_net_clips_each_encode_the_text():
    torch.manual_seed(0)
    model = CLIPortModel(small_reference(clip_per_net=True, n_rotations=4, crop_size=32)).eval()
    encoders = model.text_encoders()
    assert len({id(c) for c in encoders.values()}) == 3
    text = model.text([INSTRUCTION])
    assert text.query is not None and not torch.allclose(text.place, text.query)
    keys = list(model.state_dict())
    assert any(k.startswith("attention.attn_stream_two.clip_rn50.clip.visual.") for k in keys)
    assert not any(k.startswith("clip.") for k in keys)
    shared = CLIPortModel(small_reference(n_rotations=4, crop_size=32))
    assert len({id(c) for c in shared.text_encoders().values()}) == 1
    assert shared.text([INSTRUCTION]).query is None


def test_inference_fast_paths_compute_the_same_function():
    """Outside training: 3x3 convolutions on tiny maps as a matrix product, lateral fusions without the
    concatenation (their inputs are ReLU outputs), the stream fusions rectified in place."""
    from cliport_ros.model.reference import Conv3x3, FusionConv

    torch.manual_seed(0)
    conv = Conv3x3(8, 5)
    for size in ((2, 2), (1, 1), (1, 2), (4, 4)):
        x = torch.randn(3, 8, *size)
        with torch.no_grad():
            fast = conv(x)
        assert torch.allclose(fast, F.conv2d(x, conv.weight, conv.bias, padding=1), atol=1e-5), size
    lateral = FusionConv(12, 4, non_negative=True)
    x, y = torch.rand(2, 5, 6, 6), torch.rand(2, 7, 6, 6)  # non-negative, as ReLU outputs are
    expected = lateral(x, y)  # grad enabled: the reference's ReLU(cat) -> conv
    with torch.no_grad():
        assert torch.allclose(lateral(x, y), expected, atol=1e-6)
    streams = FusionConv(6, 3)
    a, b = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    expected = streams(a, b)
    with torch.no_grad():
        assert torch.allclose(streams(a.clone(), b.clone()), expected, atol=1e-6)


def test_freed_host_memory_is_reused_without_page_faults():
    """After Policy applies keep_freed_host_memory, freed 256 MB buffers come back without faulting their
    pages in again (a fresh mapping faults every one of its 65536 pages)."""
    import subprocess
    import sys

    code = """
import resource, torch
from cliport_ros.model.host_memory import keep_freed_host_memory
assert keep_freed_host_memory()
def faults(n):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        t = torch.empty(64 << 20); t.fill_(1.0); del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults(2)  # the first two take fresh pages (heap growth); after that the heap is warm
print(faults(5))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # five allocations of a 64 Mi-float buffer: fresh mappings fault 5 x 65536 pages; with the heap kept, at
    # most one of them lands on new pages (glibc sometimes places one past the warm block)
    assert int(out.strip()) < 2 * 65536
