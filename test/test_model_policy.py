"""Policy: output shapes and normalisation, poses from pixels, checkpoints, CLIP weight sources."""

import json
import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.model import CheckpointError, ClipWeightsUnavailable, ModelConfig, Policy

# A coarse grid keeps the tests fast: 80 x 40 pixels of 12.5 mm over the paper's bounds.
WS = Workspace(pixel_size=0.0125)
INSTRUCTION = "put the red blocks in a green bowl"


def small_cfg(**overrides) -> ModelConfig:
    return ModelConfig.named("tiny", crop_size=32, n_rotations=12, **overrides)


def random_view(seed: int = 0) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    return SimpleNamespace(
        color=rng.integers(0, 256, (*WS.shape, 3), dtype=np.uint8),
        height=(rng.random(WS.shape) * 0.1).astype(np.float32),
    )


@pytest.fixture(scope="module")
def policy() -> Policy:
    torch.manual_seed(0)
    return Policy(small_cfg(), workspace=WS, device="cpu")


def test_outputs_are_normalised_heatmaps_and_consistent_poses(policy):
    view = random_view()
    out = policy.act(view, INSTRUCTION)
    assert out.pick_heatmap.shape == WS.shape and out.pick_heatmap.dtype == np.float32
    assert out.place_heatmap.shape == WS.shape and out.place_heatmap.dtype == np.float32
    assert math.isclose(float(out.pick_heatmap.sum()), 1.0, rel_tol=1e-4)
    assert np.all(out.pick_heatmap >= 0) and np.all(out.place_heatmap >= 0)
    # the place map is the max over rotations of one softmax over rotations x pixels
    assert out.place_heatmap.sum() <= 1.0 + 1e-4 and out.place_heatmap.sum() >= 1.0 / 12 - 1e-4
    assert out.pick_pixel == np.unravel_index(np.argmax(out.pick_heatmap), WS.shape)
    assert out.place_pixel == np.unravel_index(np.argmax(out.place_heatmap), WS.shape)
    pick, place = out.pick_place.pick, out.pick_place.place
    x, y, z = WS.pixel_to_xyz(out.pick_pixel, view.height)
    assert pick.position == pytest.approx((x, y, z))
    assert pick.orientation == pytest.approx((0, 0, 0, 1))
    assert place.position == pytest.approx(WS.pixel_to_xyz(out.place_pixel, view.height))
    assert math.cos(place.yaw - (-out.place_rotation_bin * 2 * math.pi / 12)) == pytest.approx(1.0)
    assert out.pick_place.pick_confidence == pytest.approx(out.pick_heatmap.max(), rel=1e-5)
    assert out.pick_place.instruction == INSTRUCTION
    assert set(out.timings) >= {"pick_ms", "place_ms", "total_ms"}


def test_logit_shapes_for_a_batch(policy):
    image = torch.rand(2, 6, *WS.shape) * 100
    text = policy.model.text([INSTRUCTION, "put the blue blocks in a yellow bowl"])
    assert text.pick.shape == (2, 64) and text.place is text.pick  # one shared CLIP: one embedding
    with torch.no_grad():
        assert policy.model.pick_logits(image, text).shape == (2, *WS.shape)
        place = policy.model.place_logits(image, torch.tensor([[3, 4], [40, 20]]), text)
    assert place.shape == (2, 12, *WS.shape)


def test_bad_inputs_are_rejected(policy):
    with pytest.raises(ValueError, match="workspace grid is \\(80, 40\\)"):
        policy.act(SimpleNamespace(color=np.zeros((320, 160, 3), np.uint8), height=np.zeros((320, 160))), "x")
    with pytest.raises(ValueError, match="instruction must be a non-empty string"):
        policy.act(random_view(), "  ")
    with pytest.raises(ValueError, match="device must be one of"):
        Policy(small_cfg(), workspace=WS, device="tpu")
    with pytest.raises(ValueError, match="precision 'bf16' is for GPUs"):
        Policy(small_cfg(), workspace=WS, device="cpu", precision="bf16")


def test_checkpoint_round_trip_gives_identical_outputs(policy, tmp_path):
    policy.save(tmp_path / "ckpt", metadata={"task": "put-block-in-bowl-seen-colors"})
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["model"]["name"] == "tiny" and config["clip_source"] == "none"
    loaded = Policy.load(tmp_path / "ckpt", device="cpu")
    assert loaded.cfg == policy.cfg and loaded.workspace == WS
    assert loaded.metadata["task"] == "put-block-in-bowl-seen-colors"
    view = random_view(2)
    a, b = policy.act(view, INSTRUCTION), loaded.act(view, INSTRUCTION)
    assert np.array_equal(a.pick_heatmap, b.pick_heatmap) and np.array_equal(a.place_heatmap, b.place_heatmap)
    assert a.pick_place == b.pick_place


def test_bad_checkpoints_give_clear_errors(policy, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Policy.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        Policy.load(tmp_path / "empty")
    folder = policy.save(tmp_path / "good")
    # a foreign weights file
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text((folder / "config.json").read_text())
    (foreign / "model.safetensors").write_bytes(b"PK\x03\x04 this is a zip, not safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        Policy.load(foreign)
    # a foreign config
    (foreign / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a cliport_ros policy config"):
        Policy.load(foreign)
    # weights of another size: the config says wider streams than the weights hold
    config = json.loads((folder / "config.json").read_text())
    config["model"]["spatial_encoder"] = [16, 16, 32, 64, 64]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="wrong shape, e.g. \\['attention.net.spatial.stem.weight"):
        Policy.load(folder)


@pytest.mark.parametrize(
    "section, changes, message",
    [
        ("model", {"spatial_encoder": [8, 16, 32, 64, 1 << 22]}, "spatial_encoder entries must be in 4..2048"),
        ("model", {"crop_size": 32 << 15}, "crop_size must be in 32..256"),
        ("model", {"clip_text_layers": 10**9}, "clip_text_layers must be in 1..48"),
        ("workspace", {"x_max": 1000.25}, "Workspace grid must be at most 4096 x 4096 pixels"),
    ],
)
def test_a_config_with_absurd_sizes_fails_before_any_network_is_built(
    policy, tmp_path, monkeypatch, section, changes, message
):
    import cliport_ros.model.policy as policy_module

    folder = policy.save(tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    config[section].update(changes)
    (folder / "config.json").write_text(json.dumps(config))

    def no_network(*args, **kwargs):
        raise AssertionError("a network was built from an out-of-bounds configuration")

    monkeypatch.setattr(policy_module, "CLIPortModel", no_network)
    with pytest.raises(CheckpointError, match=f"config.json holds an invalid configuration: .*{message}"):
        Policy.load(folder, device="cpu")


def test_offline_openai_weights_fail_fast_naming_the_alternatives(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # .invalid never resolves
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(ClipWeightsUnavailable, match="unreachable.*clip_weights=<path.*clip_weights='none'"):
        Policy(ModelConfig.named("paper"), device="cpu")
    assert time.monotonic() - start < 15
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ClipWeightsUnavailable, match="HF_HUB_OFFLINE is set"):
        Policy(ModelConfig.named("paper"), device="cpu")


def test_clip_from_a_local_file_is_loaded_and_frozen(tmp_path):
    from cliport_ros.model.clip_backbone import open_clip_model

    cfg = small_cfg()
    torch.manual_seed(3)
    # a full open_clip state dict (attention pool included), as open_clip writes one
    source = open_clip_model(cfg)
    torch.save(source.state_dict(), tmp_path / "clip.pt")
    policy = Policy(small_cfg(clip_weights=str(tmp_path / "clip.pt"), clip_trainable=False), workspace=WS, device="cpu")
    loaded = policy.model.clip.clip.state_dict()
    for key, value in source.state_dict().items():
        if not key.startswith("visual.attnpool"):
            assert torch.equal(loaded[key], value), key
    assert not any(p.requires_grad for p in policy.model.clip.parameters())
    with pytest.raises(ValueError, match="neither 'openai', 'none' nor an existing file"):
        Policy(small_cfg(clip_weights=str(tmp_path / "missing.pt"), clip_trainable=False), workspace=WS)
    (tmp_path / "other.pt").write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match="does not hold open_clip weights"):
        Policy(small_cfg(clip_weights=str(tmp_path / "other.pt"), clip_trainable=False), workspace=WS)


def test_one_clip_is_shared_and_frozen_text_is_cached():
    policy = Policy(small_cfg(clip_trainable=False), workspace=WS, device="cpu")
    model = policy.model
    assert model.attention.net._clip is model.transport.key._clip is model.transport.query._clip is model.clip
    clip_keys = [k for k in model.state_dict() if ".visual." in k or ".transformer." in k]
    assert clip_keys and all(k.startswith("clip.clip.") for k in clip_keys)  # stored once
    assert not any(p.requires_grad for p in model.clip.parameters())
    policy.act(random_view(), INSTRUCTION)
    cached = model.clip._text_cache[INSTRUCTION]
    assert torch.equal(model.text([INSTRUCTION]).pick[0], cached)
    assert list(model.clip._text_cache) == [INSTRUCTION]


def test_the_text_cache_keeps_the_most_recent_instructions_only():
    from cliport_ros.model.clip_backbone import TEXT_CACHE_SIZE

    model = Policy(small_cfg(clip_trainable=False), workspace=WS, device="cpu").model
    cache = model.clip._text_cache
    n = TEXT_CACHE_SIZE + 100
    instructions = [f"put the block {k} in the bowl" for k in range(n)]
    first = model.text(instructions[:1]).pick
    for start in range(1, n, 64):
        model.text(instructions[start : start + 64])
        model.text(instructions[:1])  # kept recently used: it must survive the evictions
    assert len(cache) == TEXT_CACHE_SIZE
    assert instructions[0] in cache and instructions[1] not in cache  # least recently used went first
    assert list(cache)[-2] == instructions[-1]
    # recent instructions hit the cache: nothing is encoded again
    encoded = []
    encode = model.clip._encode
    model.clip._encode = lambda batch, device: encoded.extend(batch) or encode(batch, device)
    again = model.text([instructions[0], instructions[-1]])
    assert encoded == [] and torch.equal(again.pick[0], first[0])
    # a batch larger than the cache is answered whole, and leaves the cache at its bound
    many = [f"stack block {k}" for k in range(TEXT_CACHE_SIZE + 10)]
    assert model.text(many).pick.shape == (len(many), model.cfg.clip_embed_dim)
    assert len(cache) == TEXT_CACHE_SIZE and list(cache)[-1] == many[-1]


def test_act_from_simulated_camera_images_matches_act_on_the_fused_view():
    from cliport_ros.sim import SimEnvironment

    torch.manual_seed(1)
    policy = Policy(small_cfg(), device="cpu")  # the simulator's (default) workspace
    with SimEnvironment("put-block-in-bowl-seen-colors") as env:
        obs = env.reset(seed=1, split="val")
    out = policy.act_from_images([(im.rgb, im.depth, im.camera) for im in obs.images], obs.instruction)
    ref = policy.act(obs.view, obs.instruction)
    assert out.pick_pixel == ref.pick_pixel and out.place_pixel == ref.place_pixel
    assert np.array_equal(out.pick_heatmap, ref.pick_heatmap)
    assert out.timings["fuse_ms"] > 0 and out.pick_place == ref.pick_place


def test_language_reaches_every_semantic_layer_when_asked():
    from cliport_ros.model.policy import CLIPortModel, image_tensor

    torch.manual_seed(0)
    model = CLIPortModel(small_cfg(lang_layers=8)).eval()
    assert len(model.attention.net.semantic.lang_proj) == 8
    view = random_view()
    image = image_tensor(view.color, view.height)
    image = image[None] if image.dim() == 3 else image
    # the language products at strides 32..8 are cut off: language still changes the output through the
    # full-resolution layers alone
    for proj in list(model.attention.net.semantic.lang_proj)[:3]:
        torch.nn.init.zeros_(proj.weight)
        torch.nn.init.ones_(proj.bias)
    with torch.no_grad():
        red = model.pick_logits(image, model.text([INSTRUCTION]))
        blue = model.pick_logits(image, model.text(["put the blue blocks in a green bowl"]))
    assert not torch.allclose(red, blue)
    with pytest.raises(ValueError, match="lang_layers must be 1..8"):
        small_cfg(lang_layers=9)


def test_a_from_scratch_clip_can_give_each_net_its_own_image_trunk(tmp_path):
    from cliport_ros.training.train import Trainer, TrainSample

    torch.manual_seed(0)
    policy = Policy(small_cfg(clip_per_net=True), workspace=WS, device="cpu")
    model = policy.model
    trunks = [model.attention.net.visual, model.transport.key.visual, model.transport.query.visual]
    assert model.clip.clip.visual is None and len({id(t) for t in trunks}) == 3
    groups = model.parameter_groups()
    pick_ids, place_ids, clip_ids = ({id(p) for p in groups[k]} for k in ("pick", "place", "clip"))
    assert {id(p) for p in trunks[0].parameters()} <= pick_ids
    assert {id(p) for t in trunks[1:] for p in t.parameters()} <= place_ids
    assert not clip_ids & (pick_ids | place_ids)  # the text encoders keep their own optimiser
    # the place half owns a text encoder too: the key and query nets read it, the pick net the other one
    assert model.place_clip is not None and model.place_clip.clip.visual is None
    assert model.transport.key._clip is model.transport.query._clip is model.place_clip
    assert model.attention.net._clip is model.clip
    text = model.text([INSTRUCTION])
    assert text.pick.shape == text.place.shape and not torch.allclose(text.pick, text.place)
    assert model.halves_independent
    view = random_view()
    sample = TrainSample(view.color, view.height, INSTRUCTION, (10, 12), (30, 20), 0.3)
    before = [t.conv1.weight.detach().clone() for t in trunks]
    Trainer(policy, lr=1e-3, augment=False).step(sample)
    assert all(not torch.equal(b, t.conv1.weight) for b, t in zip(before, trunks))  # each trained by its net
    policy.save(tmp_path / "ckpt")
    loaded = Policy.load(tmp_path / "ckpt", device="cpu")
    a, b = policy.act(view, INSTRUCTION), loaded.act(view, INSTRUCTION)
    assert np.array_equal(a.pick_heatmap, b.pick_heatmap) and np.array_equal(a.place_heatmap, b.place_heatmap)
    with pytest.raises(ValueError, match="clip_per_net=True with the compact layout needs clip_weights='none'"):
        ModelConfig.named("paper", layout="compact", clip_per_net=True)


def _square(shape: tuple[int, int], centre: tuple[int, int], yaw: float, half: float = 4.5) -> np.ndarray:
    """1 inside a square of side 2 * half pixels at pixel ``centre`` turned by ``yaw`` (x = col, y = row)."""
    rows, cols = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    dx, dy = cols - centre[1], rows - centre[0]
    c, s = math.cos(yaw), math.sin(yaw)
    return ((np.abs(c * dx + s * dy) <= half) & (np.abs(-s * dx + c * dy) <= half)).astype(np.float32)


def test_the_place_input_conv_is_a_full_resolution_path_that_orients_a_block():
    """With the streams' outputs cut off, the key and query input convolutions alone match a turned block."""
    from cliport_ros.model.policy import CLIPortModel, rotation_bin
    from cliport_ros.model.streams import HEIGHT_MEAN, HEIGHT_STD

    torch.manual_seed(0)
    cfg = ModelConfig.named("tiny", crop_size=32, place_input_conv=True)
    model = CLIPortModel(cfg).eval()
    for net in (model.transport.key, model.transport.query):
        assert net.input_conv is not None and net.input_conv.weight.shape == (cfg.key_query_dim, 6, 3, 3)
        torch.nn.init.zeros_(net.fuse.weight)
        torch.nn.init.zeros_(net.fuse.bias)
        # output channel 0 = the height in units of HEIGHT_STD (the normalisation's offset added back)
        torch.nn.init.zeros_(net.input_conv.weight)
        torch.nn.init.zeros_(net.input_conv.bias)
        with torch.no_grad():
            net.input_conv.weight[0, 3, 1, 1] = 1.0
            net.input_conv.bias[0] = HEIGHT_MEAN / HEIGHT_STD
    h, w = WS.shape
    pick, place, yaw = (20, 12), (58, 26), math.radians(20.0)
    # the target twice as tall as the picked block, so that it, not the block itself, matches best
    height = 0.04 * _square((h, w), pick, 0.0) + 0.08 * _square((h, w), place, yaw)
    image = torch.zeros(1, 6, h, w)
    image[0, 3:] = torch.from_numpy(height)
    with torch.no_grad():
        logits = model.place_logits(image, torch.tensor([pick]), model.text([INSTRUCTION]))[0]
    r, rem = divmod(int(torch.argmax(logits)), h * w)
    assert divmod(rem, w) == place
    # a square looks the same every quarter turn: any of the label's four look-alike bins
    assert (r - rotation_bin(yaw, 36)) % 9 == 0, r
    assert (r - rotation_bin(0.0, 36)) % 9 != 0
    assert CLIPortModel(small_cfg()).transport.key.input_conv is None


def test_normalized_correlation_divides_the_place_logits_by_the_root_of_the_products_summed():
    from cliport_ros.model.policy import CLIPortModel, image_tensor

    torch.manual_seed(0)
    plain = CLIPortModel(small_cfg()).eval()
    cfg = small_cfg(normalized_correlation=True)
    scaled = CLIPortModel(cfg).eval()
    scaled.load_state_dict(plain.state_dict())
    view = random_view()
    image = image_tensor(view.color, view.height)
    image = image[None] if image.dim() == 3 else image
    pick = torch.tensor([[30, 20]])
    with torch.no_grad():
        a = plain.place_logits(image, pick, plain.text([INSTRUCTION]))
        b = scaled.place_logits(image, pick, scaled.text([INSTRUCTION]))
        text = plain.text([INSTRUCTION])
        assert torch.equal(plain.pick_logits(image, text), scaled.pick_logits(image, scaled.text([INSTRUCTION])))
    factor = math.sqrt(cfg.key_query_dim * cfg.crop_size**2)
    assert factor == math.sqrt(3 * 32 * 32)
    torch.testing.assert_close(b * factor, a, rtol=1e-5, atol=1e-3)
    assert a.abs().max() > 10 * b.abs().max()


@pytest.mark.parametrize(
    "flips, transforms",
    [("rows", [(True, False)]), ("rows_and_cols", [(True, False), (False, True), (True, True)])],
)
def test_test_time_flips_make_the_policy_equivariant_to_those_flips(flips, transforms):
    """With ``test_time_flips`` the decision for a flipped view is this view's decision flipped: pick map and
    place map flipped, and with one flip (a mirror) the place bin r turned into bin -r; the logits are the mean
    of the plain policy's over the views, mapped back."""
    torch.manual_seed(0)
    plain = Policy(small_cfg(), workspace=WS, device="cpu")
    policy = Policy(small_cfg(test_time_flips=flips), workspace=WS, device="cpu", model=plain.model)
    view, rows, cols = random_view(3), *WS.shape
    pick = (21, 13)

    def flipped(v: SimpleNamespace, fr: bool, fc: bool) -> SimpleNamespace:
        def f(a: np.ndarray) -> np.ndarray:
            a = a[::-1] if fr else a
            return np.ascontiguousarray(a[:, ::-1] if fc else a)

        return SimpleNamespace(color=f(v.color), height=f(v.height))

    def back(logits: np.ndarray, fr: bool, fc: bool) -> np.ndarray:
        """Logits of a flipped view, (rows, cols) or (R, rows, cols), mapped back to the view's frame."""
        out = logits[..., ::-1, :] if fr else logits
        out = out[..., ::-1] if fc else out
        if out.ndim == 3 and fr != fc:
            out = out[[(-r) % 12 for r in range(12)]]
        return out

    def decide(p: Policy, v: SimpleNamespace, fr: bool = False, fc: bool = False):
        px = (rows - 1 - pick[0] if fr else pick[0], cols - 1 - pick[1] if fc else pick[1])
        return p.act(flipped(v, fr, fc), INSTRUCTION, pick_pixel=px, keep_logits=True)

    a = decide(policy, view)
    for fr, fc in transforms:
        b = decide(policy, view, fr, fc)
        np.testing.assert_allclose(back(b.pick_logits, fr, fc), a.pick_logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(back(b.place_logits, fr, fc), a.place_logits, rtol=1e-4, atol=1e-4)
        # the flipped view's choice, mapped back, is this view's best place (up to float ties)
        u, v = b.place_pixel
        u, v = (rows - 1 - u if fr else u, cols - 1 - v if fc else v)
        rot = (-b.place_rotation_bin) % 12 if fr != fc else b.place_rotation_bin
        assert a.place_logits[rot, u, v] >= a.place_logits.max() - 1e-4
        yaw = -rot * 2 * math.pi / 12  # that place's yaw here; a mirror turns the other way
        assert math.cos(b.pick_place.place.yaw - (-yaw if fr != fc else yaw)) == pytest.approx(1.0, abs=1e-9)
    # the mean of the plain policy's logits over the views, which on their own disagree
    views = [(False, False)] + transforms
    plain_out = [decide(plain, view, fr, fc) for fr, fc in views]
    mean_pick = np.mean([back(o.pick_logits, fr, fc) for o, (fr, fc) in zip(plain_out, views)], axis=0)
    mean_place = np.mean([back(o.place_logits, fr, fc) for o, (fr, fc) in zip(plain_out, views)], axis=0)
    np.testing.assert_allclose(mean_pick, a.pick_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean_place, a.place_logits, rtol=1e-4, atol=1e-4)
    assert not np.allclose(back(plain_out[1].place_logits, *views[1]), plain_out[0].place_logits, atol=1e-2)


def test_test_time_flips_must_be_a_known_view_set():
    with pytest.raises(ValueError, match="test_time_flips must be one of .*'rows_and_cols'.*got 'mirror'"):
        small_cfg(test_time_flips="mirror")
    assert ModelConfig.from_dict(small_cfg(test_time_flips="rows").to_dict()).test_time_flips == "rows"


def test_test_time_flips_travel_with_the_checkpoint_and_load_can_replace_them(policy, tmp_path):
    torch.manual_seed(0)
    flipped = Policy(small_cfg(test_time_flips="rows_and_cols"), workspace=WS, device="cpu", model=policy.model)
    flipped.save(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["model"]["test_time_flips"] == "rows_and_cols"
    loaded = Policy.load(tmp_path / "ckpt", device="cpu")
    view = random_view(4)
    assert loaded.cfg.test_time_flips == "rows_and_cols"
    np.testing.assert_allclose(
        loaded.act(view, INSTRUCTION).place_heatmap, flipped.act(view, INSTRUCTION).place_heatmap, atol=1e-6
    )
    plain = Policy.load(tmp_path / "ckpt", device="cpu", test_time_flips="none")
    assert plain.cfg.test_time_flips == "none"
    np.testing.assert_allclose(
        plain.act(view, INSTRUCTION).place_heatmap, policy.act(view, INSTRUCTION).place_heatmap, atol=1e-6
    )
    with pytest.raises(ValueError, match="test_time_flips must be one of"):
        Policy.load(tmp_path / "ckpt", device="cpu", test_time_flips="cols")
