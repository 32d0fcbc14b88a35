"""Fine-tuning from a checkpoint (``init_from``), the rotation-free place loss (``place_loss="position"``), the
symmetric pose loss (``place_symmetry``) and the CLIP learning-rate scale."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cliport_ros.data.augment import se2_matrix, transform_point
from cliport_ros.geometry.workspace import Workspace
from cliport_ros.model import ModelConfig, Policy
from cliport_ros.model.policy import image_tensor, rotation_bin
from cliport_ros.training.train import TrainConfig, Trainer, TrainSample, centred_labels, train

WS = Workspace(pixel_size=0.025)  # 40 x 20 pixels: a step takes well under a second on one core
INSTRUCTION = "put the red blocks in a green bowl"
OVERRIDES = {"crop_size": 32, "n_rotations": 12}


def sample(seed: int, yaw: float = 0.3) -> TrainSample:
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 256, (*WS.shape, 3), dtype=np.uint8)
    height = (rng.random(WS.shape) * 0.1).astype(np.float32)
    return TrainSample(color, height, INSTRUCTION, (10, 12), (30, 5), yaw, task="synthetic")


def small_policy(seed: int = 0, **overrides) -> Policy:
    torch.manual_seed(seed)
    return Policy(ModelConfig.named("tiny", **OVERRIDES, **overrides), workspace=WS, device="cpu")


def place_log_probs(policy: Policy, s: TrainSample) -> torch.Tensor:
    """log softmax of the place logits over (rotation, row, col), shape (R, H, W)."""
    model = policy.model.eval()
    with torch.no_grad():
        image = image_tensor(s.color, s.height)
        logits = model.place_logits(image, torch.tensor([s.pick_pixel]), model.text([s.instruction]))[0]
    return F.log_softmax(logits.reshape(-1), dim=0).reshape(logits.shape)


@pytest.fixture
def labelled() -> tuple[Policy, TrainSample, torch.Tensor, int, int, int]:
    """An untrained policy, a sample, its place log-probabilities, the label pixel (row, col) and rotation bin."""
    policy = small_policy(clip_per_net=True)
    s = sample(0)
    return policy, s, place_log_probs(policy, s), *s.place_pixel, rotation_bin(s.place_yaw, policy.cfg.n_rotations)


def test_the_position_loss_sums_the_rotations_out_at_the_label_pixel(labelled):
    policy, s, log_p, row, col, rot = labelled
    position = Trainer(policy, augment=False, nets="place", place_loss="position")
    pose = Trainer(policy, augment=False, nets="place", place_loss="pose")
    policy.model.eval()  # no batch-norm updates between the three evaluations
    with torch.no_grad():
        got = position.losses(s)["place_loss"].item()
        got_pose = pose.losses(s)["place_loss"].item()
        # the same sample with another yaw: the position loss ignores it, the pose loss does not
        turned = sample(0, yaw=s.place_yaw + 1.5)
        got_turned = position.losses(turned)["place_loss"].item()
        got_pose_turned = pose.losses(turned)["place_loss"].item()
    expected = -math.log(log_p[:, row, col].exp().sum().item())
    assert got == pytest.approx(expected, rel=1e-4)
    assert got_pose == pytest.approx(-log_p[rot, row, col].item(), rel=1e-4)
    assert got < got_pose  # one rotation's probability is less than all of them
    assert got_turned == pytest.approx(got, rel=1e-5)
    assert got_pose_turned != pytest.approx(got_pose, rel=1e-3)
    with pytest.raises(ValueError, match="place_loss must be one of"):
        Trainer(policy, place_loss="yaw")
    with pytest.raises(ValueError, match="place_loss must be one of"):
        TrainConfig(tasks=("t",), out="x", place_loss="angle")


def test_a_symmetric_pose_loss_counts_the_look_alike_rotations_as_the_label(labelled):
    # 12 bins of 30 degrees; a 90-degree symmetry makes bins r, r+3, r+6, r+9 one label
    policy, s, log_p, row, col, rot = labelled
    symmetric = Trainer(policy, augment=False, nets="place", place_symmetry=90)
    pose = Trainer(policy, augment=False, nets="place")
    policy.model.eval()
    with torch.no_grad():
        got = symmetric.losses(s)["place_loss"].item()
        got_pose = pose.losses(s)["place_loss"].item()
        # a yaw a quarter turn away is the same label; 30 degrees away is the bins one before (theta = -yaw)
        quarter = symmetric.losses(sample(0, yaw=s.place_yaw + math.pi / 2))["place_loss"].item()
        other = symmetric.losses(sample(0, yaw=s.place_yaw + math.pi / 6))["place_loss"].item()
    bins = [(rot + k) % 12 for k in (0, 3, 6, 9)]
    expected = -math.log(log_p[bins, row, col].exp().sum().item())
    assert got == pytest.approx(expected, rel=1e-4)
    assert got < got_pose
    assert got_pose == pytest.approx(-log_p[rot, row, col].item(), rel=1e-4)
    assert quarter == pytest.approx(got, rel=1e-5)
    # the untrained net's rotations are nearly alike, so compare with the sum over the shifted bins exactly
    shifted = -math.log(log_p[[(b - 1) % 12 for b in bins], row, col].exp().sum().item())
    assert other == pytest.approx(shifted, rel=1e-5)
    assert abs(shifted - expected) > 1e-4
    # symmetry 0 is the paper's loss
    with torch.no_grad():
        assert Trainer(policy, augment=False, nets="place", place_symmetry=0).losses(s)[
            "place_loss"
        ].item() == pytest.approx(got_pose, rel=1e-6)
    with pytest.raises(ValueError, match="whole number of rotation bins"):
        Trainer(policy, place_symmetry=45)  # 45 degrees is 1.5 bins of 30
    with pytest.raises(ValueError, match="needs the pose loss"):
        Trainer(policy, place_loss="position", place_symmetry=90)
    with pytest.raises(ValueError, match="dividing 360"):
        TrainConfig(tasks=("t",), out="x", place_symmetry=70)
    with pytest.raises(ValueError, match="applies to the pose place loss"):
        TrainConfig(tasks=("t",), out="x", place_symmetry=90, place_loss="position")
    with pytest.raises(ValueError, match="rotation bins"):
        TrainConfig(tasks=("t",), out="x", model_overrides={"n_rotations": 12}, place_symmetry=45)
    assert TrainConfig(tasks=("t",), out="x", place_symmetry=90).place_symmetry == 90


def test_the_position_loss_fits_the_label_pixel():
    torch.set_num_threads(1)
    policy = small_policy(3, clip_per_net=True)
    trainer = Trainer(policy, lr=3e-3, augment=False, nets="place", place_loss="position")
    s = sample(1)
    row, col = s.place_pixel
    before = place_log_probs(policy, s)[:, row, col].exp().sum().item()
    for _ in range(30):
        trainer.step(s)
    p = place_log_probs(policy, s).exp()
    after = p[:, row, col].sum().item()
    assert before < 0.01 and after > 0.3
    # the argmax over everything lands on the label pixel, whatever its rotation
    _, r_row, r_col = np.unravel_index(int(p.reshape(-1).argmax()), tuple(p.shape))
    assert (int(r_row), int(r_col)) == (row, col)


def _common(**extra) -> dict:
    return dict(
        tasks=("synthetic",),
        model="tiny",
        model_overrides=dict(OVERRIDES),
        steps=3,
        log_every=3,
        val_every=0,
        device="cpu",
        seed=2,
        **extra,
    )


def test_a_run_fine_tunes_from_every_weight_of_a_checkpoint(tmp_path):
    torch.set_num_threads(1)
    demos = {"synthetic": [[sample(i)] for i in range(3)]}
    train(TrainConfig(out=str(tmp_path / "base"), **{**_common(), "seed": 7}), demos, progress=False, workspace=WS)
    base = Policy.load(tmp_path / "base" / "last", device="cpu")
    # zero steps of fine-tuning is impossible (steps >= 1), so compare against the source before training:
    # one step at a tiny learning rate keeps every weight within rounding of the checkpoint's
    summary = train(
        TrainConfig(
            out=str(tmp_path / "ft"), lr=1e-12, init_from=str(tmp_path / "base" / "last"), **{**_common(), "steps": 1}
        ),
        demos,
        progress=False,
        workspace=WS,
    )
    assert summary["steps"] == 1  # a fresh schedule: counted from 0, not from the source's step 3
    tuned = Policy.load(tmp_path / "ft" / "last", device="cpu")
    state, source = tuned.model.state_dict(), base.model.state_dict()
    weights = [k for k, v in source.items() if v.is_floating_point() and "running" not in k]
    assert all(torch.allclose(state[k], source[k], atol=1e-6) for k in weights)
    fresh = small_policy(2).model.state_dict()  # what this run (seed 2) would have started from
    assert all(not torch.allclose(fresh[k], source[k], atol=1e-3) for k in weights if source[k].dim() >= 2)
    meta = json.loads((tmp_path / "ft" / "last" / "config.json").read_text())["metadata"]
    assert meta["init_from"] == {"checkpoint": str(tmp_path / "base" / "last"), "step": 3, "nets": "all"}


def test_fine_tuning_refuses_another_config_and_a_second_source(tmp_path):
    torch.set_num_threads(1)
    demos = {"synthetic": [[sample(0)]]}
    small_policy(0, lang_layers=2).save(tmp_path / "other")
    with pytest.raises(ValueError, match=r"another model config than this run \(fields \['lang_layers'\]\)"):
        train(
            TrainConfig(out=str(tmp_path / "ft"), init_from=str(tmp_path / "other"), **_common()),
            demos,
            progress=False,
            workspace=WS,
        )
    with pytest.raises(ValueError, match="init_from and place_init_from both set the starting weights"):
        TrainConfig(out="x", init_from="a", place_init_from="b", **_common())


def test_the_clip_learning_rate_scale_moves_the_text_encoder_that_much_faster():
    s = sample(0)
    text_before = {}
    steps = {}
    for scale in (1.0, 10.0):
        policy = small_policy(clip_per_net=True)
        trainer = Trainer(policy, lr=1e-4, augment=False, nets="pick", clip_lr_scale=scale)
        text_params = dict(policy.model.clip.named_parameters())
        text_before[scale] = {k: p.detach().clone() for k, p in text_params.items()}
        trainer.step(s)
        assert trainer.optimisers["clip"].param_groups[0]["lr"] == pytest.approx(1e-4 * scale)
        assert trainer.optimisers["pick"].param_groups[0]["lr"] == pytest.approx(1e-4)
        # Adam's first step moves every parameter with a gradient by about lr
        moved = [(p.detach() - text_before[scale][k]).abs().max().item() for k, p in text_params.items()]
        steps[scale] = max(moved)
    assert steps[1.0] == pytest.approx(1e-4, rel=0.05)
    assert steps[10.0] == pytest.approx(1e-3, rel=0.05)
    with pytest.raises(ValueError, match=r"clip_lr_scale must be a number in \(0, 1000\]"):
        TrainConfig(tasks=("synthetic",), out="x", clip_lr_scale=0)


def test_place_labels_are_where_the_pick_pixels_centre_must_go():
    # the policy's tool lands on the centre of the pick pixel; the demo's pick point is 0.45 px off it in
    # each axis, and a half turn carries that offset to the other side of the place point
    policy = small_policy(clip_per_net=True)
    s = replace(sample(0, yaw=math.pi), pick_point=(10.45, 12.45), place_point=(30.45, 5.45))
    log_p = place_log_probs(policy, s)
    rot = rotation_bin(s.place_yaw, policy.cfg.n_rotations)
    policy.model.eval()
    with torch.no_grad():
        centred = Trainer(policy, augment=False, nets="place").losses(s)["place_loss"].item()
        demo = Trainer(policy, augment=False, nets="place", place_label="demo").losses(s)["place_loss"].item()
        unknown = Trainer(policy, augment=False, nets="place").losses(sample(0, yaw=math.pi))["place_loss"].item()
    assert centred == pytest.approx(-log_p[rot, 31, 6].item(), rel=1e-5)
    assert demo == pytest.approx(-log_p[rot, 30, 5].item(), rel=1e-5)
    assert unknown == pytest.approx(demo, rel=1e-6)  # no exact points: the recorded pixels
    with pytest.raises(ValueError, match="place_label must be one of"):
        Trainer(policy, place_label="exact")
    with pytest.raises(ValueError, match="place_label must be one of"):
        TrainConfig(tasks=("t",), out="x", place_label="centre")


@pytest.mark.parametrize("seed", range(20))
def test_centred_labels_follow_the_demo_motion_through_any_augmentation(seed):
    rng = np.random.default_rng(seed)
    shape = (160, 320)
    pick_point = tuple(rng.uniform(20, 140, 2))
    place_point = tuple(rng.uniform(20, 140, 2))
    demo_yaw = float(rng.uniform(-math.pi, math.pi))
    yaws = [demo_yaw + k * math.pi / 2 for k in range(4)]
    matrix = se2_matrix(shape, float(rng.normal(0, 0.3)), tuple(rng.normal(0, 5, 2)))
    pick, places = centred_labels(pick_point, place_point, yaws, matrix, shape)
    p, q = np.array(transform_point(matrix, pick_point)), np.array(transform_point(matrix, place_point))
    assert np.all(np.abs(np.array(pick) - p) <= 0.5 + 1e-9)  # the pixel holding the (moved) pick point
    for yaw, place in zip(yaws, places):
        # the demo's rigid motion, pick point to place point turned by the yaw, applied to the pick pixel's
        # centre: (row, col) = (y, x), counter-clockwise from x to y
        c, s = math.cos(yaw), math.sin(yaw)
        d_row, d_col = pick[0] - p[0], pick[1] - p[1]
        landed = q + np.array([s * d_col + c * d_row, c * d_col - s * d_row])
        assert np.all(np.abs(np.array(place) - landed) <= 0.5 + 1e-9)
    # without a turn or an offset the place is the place point's own pixel
    same, (only,) = centred_labels((10.0, 12.0), (30.2, 5.4), [0.0], se2_matrix(shape, 0.0, (0.0, 0.0)), shape)
    assert same == (10, 12) and only == (30, 5)


def test_workspace_points_round_to_their_pixels():
    ws = Workspace()
    for xyz in [(0.3012, -0.2199, 0.0), (0.6, 0.1, 0.02), (0.25 + 1e-4, -0.5 + 1e-4, 0.0)]:
        row, col = ws.xyz_to_point(xyz)
        assert (math.floor(row + 0.5), math.floor(col + 0.5)) == ws.xyz_to_pixel(xyz)
