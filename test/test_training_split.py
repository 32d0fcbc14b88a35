"""Training the pick and place halves apart (``--nets pick|place``) and merging them into one policy."""

import json

import numpy as np
import pytest
import torch

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.model import CheckpointError, ModelConfig, Policy
from cliport_ros.model.policy import average_checkpoints, image_tensor, merge_halves
from cliport_ros.training.train import TrainConfig, Trainer, TrainSample

WS = Workspace(pixel_size=0.0125)
INSTRUCTION = "put the red blocks in a green bowl"


def small_cfg(**overrides) -> ModelConfig:
    return ModelConfig.named("tiny", crop_size=32, n_rotations=12, **overrides)


def sample(seed: int = 0) -> TrainSample:
    rng = np.random.default_rng(seed)
    color = rng.integers(0, 256, (*WS.shape, 3), dtype=np.uint8)
    height = (rng.random(WS.shape) * 0.1).astype(np.float32)
    return TrainSample(color, height, INSTRUCTION, (10, 12), (30, 20), 0.3)


def snapshot(policy: Policy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.model.state_dict().items()}


def changed(before: dict[str, torch.Tensor], policy: Policy) -> set[str]:
    """The state-dict keys whose tensors differ from ``before``."""
    now = policy.model.state_dict()
    return {k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, now[k])}


def outputs(policy: Policy, s: TrainSample) -> tuple[torch.Tensor, torch.Tensor]:
    model = policy.model.eval()
    with torch.no_grad():
        image = image_tensor(s.color, s.height)
        text = model.text([s.instruction])
        return model.pick_logits(image, text), model.place_logits(image, torch.tensor([[20, 10]]), text)


@pytest.mark.parametrize("half", ["pick", "place"])
def test_one_half_trains_and_the_other_stays_exactly_as_it_was(half):
    torch.manual_seed(0)
    policy = Policy(small_cfg(clip_per_net=True), workspace=WS, device="cpu")
    keys = policy.model.half_keys()
    other = "place" if half == "pick" else "pick"
    before = snapshot(policy)
    trainer = Trainer(policy, lr=1e-3, augment=False, nets=half)
    losses = [trainer.step(sample(i)) for i in range(3)]
    assert all(set(x) == {f"{half}_loss", "lr"} for x in losses)
    moved = changed(before, policy)
    assert moved and moved <= set(keys[half])
    # every part of the half learns: its net, its image trunk and its text encoder
    prefix = {
        "pick": ("attention.net.spatial", "attention.net.visual", "clip.clip.transformer"),
        "place": ("transport.key.", "transport.query.visual", "place_clip.clip.transformer"),
    }[half]
    assert all(any(k.startswith(p) for k in moved) for p in prefix)
    assert not moved & set(keys[other])


def test_split_training_is_refused_when_the_halves_share_a_trainable_clip():
    torch.manual_seed(0)
    policy = Policy(small_cfg(), workspace=WS, device="cpu")  # tiny: one CLIP trained from scratch
    assert not policy.model.halves_independent
    with pytest.raises(ValueError, match="use clip_per_net=true"):
        Trainer(policy, nets="pick")
    with pytest.raises(ValueError, match="cannot be split"):
        policy.model.half_keys()
    with pytest.raises(ValueError, match="nets must be one of"):
        Trainer(policy, nets="key")
    with pytest.raises(ValueError, match="add clip_per_net=true"):
        TrainConfig(tasks=("put-block-in-bowl-seen-colors",), out="x", nets="pick", val_every=0)
    with pytest.raises(ValueError, match="set val_every to 0"):
        TrainConfig(
            tasks=("put-block-in-bowl-seen-colors",),
            out="x",
            nets="place",
            model_overrides={"clip_per_net": True},
        )
    # a frozen (pretrained) CLIP is shared but not trained: the halves are independent
    frozen = Policy(small_cfg(clip_trainable=False), workspace=WS, device="cpu")
    assert frozen.model.halves_independent
    assert not any(k.startswith("clip.") for k in frozen.model.half_keys()["place"])


def test_merge_takes_the_pick_net_of_one_run_and_the_place_nets_of_another(tmp_path):
    torch.manual_seed(0)
    cfg = small_cfg(clip_per_net=True)
    runs = {}
    for half in ("pick", "place"):
        torch.manual_seed(0)  # the same initialisation, as two runs with one seed
        policy = Policy(cfg, workspace=WS, device="cpu")
        trainer = Trainer(policy, lr=1e-3, augment=False, nets=half)
        for i in range(3):
            trainer.step(sample(i))
        policy.save(tmp_path / half, metadata={"tasks": ["t"], "nets": half, "step": 3})
        runs[half] = policy
    merged_path = merge_halves(tmp_path / "pick", tmp_path / "place", tmp_path / "merged")
    merged = Policy.load(merged_path, device="cpu")
    s = sample(7)
    pick_ref, _ = outputs(runs["pick"], s)
    _, place_ref = outputs(runs["place"], s)
    pick, place = outputs(merged, s)
    assert torch.equal(pick, pick_ref) and torch.equal(place, place_ref)
    # each run's untrained half is different from the merged one
    assert not torch.equal(outputs(runs["place"], s)[0], pick)
    meta = json.loads((merged_path / "config.json").read_text())["metadata"]
    assert meta["nets"] == "all" and meta["merged_from"]["place"]["step"] == 3
    assert meta["tasks"] == ["t"]

    with pytest.raises(CheckpointError, match="trained only the place net: its pick net is untrained"):
        merge_halves(tmp_path / "place", tmp_path / "place", tmp_path / "bad")
    other = Policy(small_cfg(clip_per_net=True, lang_layers=4), workspace=WS, device="cpu")
    other.save(tmp_path / "other")
    with pytest.raises(CheckpointError, match=r"different model configs \(\['lang_layers'\]\)"):
        merge_halves(tmp_path / "pick", tmp_path / "other", tmp_path / "bad")
    # the place-only fields may differ: the merged checkpoint takes the place half's
    torch.manual_seed(0)
    place_cfg = small_cfg(clip_per_net=True, place_input_conv=True, normalized_correlation=True)
    scaled = Policy(place_cfg, workspace=WS, device="cpu")
    scaled.save(tmp_path / "scaled", metadata={"tasks": ["u", "t"], "nets": "place", "step": 5})
    both = Policy.load(merge_halves(tmp_path / "pick", tmp_path / "scaled", tmp_path / "both"), device="cpu")
    assert both.cfg == place_cfg
    # a place half fine-tuned on another task too: the merge is for both tasks (the node picks models by them)
    assert both.metadata["tasks"] == ["t", "u"]
    pick, place = outputs(both, s)
    assert torch.equal(pick, pick_ref) and torch.equal(place, outputs(scaled, s)[1])
    shared = Policy(small_cfg(), workspace=WS, device="cpu")
    shared.save(tmp_path / "shared")
    with pytest.raises(ValueError, match="cannot be split"):
        merge_halves(tmp_path / "shared", tmp_path / "shared", tmp_path / "bad")


def test_merge_command_prints_json_and_fails_cleanly(tmp_path, capsys):
    from cliport_ros.cli import main

    torch.manual_seed(0)
    policy = Policy(small_cfg(clip_per_net=True), workspace=WS, device="cpu")
    policy.save(tmp_path / "a")
    assert (
        main(["merge", "--pick", str(tmp_path / "a"), "--place", str(tmp_path / "a"), "--out", str(tmp_path / "m")])
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["out"] == str(tmp_path / "m")
    assert (
        main(["merge", "--pick", str(tmp_path / "a"), "--place", str(tmp_path / "nope"), "--out", str(tmp_path / "m2")])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_the_place_half_can_start_from_a_trained_pick_net(tmp_path):
    from cliport_ros.training.train import init_place_from_pick

    torch.manual_seed(0)
    source = Policy(small_cfg(clip_per_net=True), workspace=WS, device="cpu")
    Trainer(source, lr=1e-3, augment=False, nets="pick").step(sample(0))
    source.save(tmp_path / "pick")
    torch.manual_seed(1)
    policy = Policy(small_cfg(clip_per_net=True), workspace=WS, device="cpu")
    pick_before = {k: v.clone() for k, v in policy.model.attention.state_dict().items()}
    copied = init_place_from_pick(policy.model, tmp_path / "pick")
    src = source.model
    for net in (policy.model.transport.key, policy.model.transport.query):
        assert torch.equal(net.spatial.stem.weight, src.attention.net.spatial.stem.weight)
        assert torch.equal(net.visual.conv1.weight, src.attention.net.visual.conv1.weight)
        assert torch.equal(net.semantic.lang_proj[0].weight, src.attention.net.semantic.lang_proj[0].weight)
        # the heads differ in width (3 key/query channels against 1 pick channel): left as initialised
        assert not torch.equal(net.spatial.head.weight[:1], src.attention.net.spatial.head.weight)
    place_text = policy.model.place_clip.clip.transformer.resblocks[0].mlp.c_fc.weight
    assert torch.equal(place_text, src.clip.clip.transformer.resblocks[0].mlp.c_fc.weight)
    assert all(torch.equal(v, policy.model.attention.state_dict()[k]) for k, v in pick_before.items())
    # all but, in each of the two nets, the two stream heads and the fusion (weight and bias each)
    assert copied == len(policy.model.half_keys()["place"]) - 2 * 6
    with pytest.raises(ValueError, match="clip_per_net=False"):
        shared = Policy(small_cfg(), workspace=WS, device="cpu")
        shared.save(tmp_path / "shared")
        init_place_from_pick(policy.model, tmp_path / "shared")
    with pytest.raises(ValueError, match="nets='pick' does not train"):
        TrainConfig(
            tasks=("t",), out="x", nets="pick", val_every=0, place_init_from="c", model_overrides={"clip_per_net": True}
        )


def test_fp16_weights_halve_the_file_and_load_back_to_fp32(tmp_path):
    torch.manual_seed(0)
    policy = Policy(small_cfg(clip_per_net=True), workspace=WS, device="cpu")
    Trainer(policy, lr=1e-3, augment=False).step(sample(0))  # batch-norm statistics move off their defaults
    policy.save(tmp_path / "pick", metadata={"nets": "pick"})
    policy.save(tmp_path / "place", metadata={"nets": "place"})
    merged = merge_halves(tmp_path / "pick", tmp_path / "place", tmp_path / "half", weights="fp16")
    full = (tmp_path / "pick" / "model.safetensors").stat().st_size
    assert (merged / "model.safetensors").stat().st_size < 0.55 * full
    assert json.loads((merged / "config.json").read_text())["weights"] == "fp16"
    from safetensors.torch import load_file

    stored = load_file(str(merged / "model.safetensors"))
    assert stored["attention.net.spatial.stem.weight"].dtype == torch.float16
    assert stored["clip.clip.positional_embedding"].dtype == torch.float16
    running = [k for k in stored if k.endswith("running_var")]
    assert running and all(stored[k].dtype == torch.float32 for k in running)
    loaded = Policy.load(merged, device="cpu")
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    s = sample(3)
    (pick, place), (pick_ref, place_ref) = outputs(loaded, s), outputs(policy, s)
    assert torch.allclose(pick, pick_ref, rtol=1e-2, atol=1e-2 * pick_ref.abs().max().item())
    assert torch.allclose(place, place_ref, rtol=1e-2, atol=1e-2 * place_ref.abs().max().item())
    with pytest.raises(ValueError, match="weights must be one of"):
        policy.save(tmp_path / "x", weights="int8")


def test_averaging_checkpoints_takes_the_mean_of_their_weights(tmp_path, capsys):
    from cliport_ros.cli import main

    paths = []
    for seed in range(3):
        torch.manual_seed(seed)
        policy = Policy(small_cfg(clip_per_net=True), workspace=WS, device="cpu")
        Trainer(policy, lr=1e-3, augment=False, nets="place").step(sample(seed))  # batch-norm counters move
        policy.save(tmp_path / f"s{seed}", metadata={"tasks": ["t"], "nets": "place", "step": 100 * seed})
        paths.append(tmp_path / f"s{seed}")
    states = [Policy.load(p, device="cpu").model.state_dict() for p in paths]
    mean = Policy.load(average_checkpoints(paths, tmp_path / "mean"), device="cpu")
    averaged = mean.model.state_dict()
    floats = [k for k, v in states[0].items() if v.is_floating_point()]
    counters = [k for k, v in states[0].items() if not v.is_floating_point()]
    assert floats and counters
    for k in floats:
        torch.testing.assert_close(averaged[k], (states[0][k] + states[1][k] + states[2][k]) / 3)
    assert not torch.equal(averaged[floats[0]], states[0][floats[0]])
    for k in counters:
        assert torch.equal(averaged[k], states[2][k])
    meta = json.loads((tmp_path / "mean" / "config.json").read_text())["metadata"]
    assert meta["nets"] == "place" and meta["tasks"] == ["t"]
    assert [m["step"] for m in meta["averaged_from"]] == [0, 100, 200]

    # a fine-tuned net averaged with the model it started from (trained on another task, and on both nets):
    # the mean was trained on both tasks, so the node still finds it for the first one
    merged = {"pick": {"path": "p", "step": 1}, "place": {"path": "q", "step": 2}}
    Policy.load(paths[0], device="cpu").save(
        tmp_path / "shipped", metadata={"tasks": ["a"], "nets": "all", "merged_from": merged}
    )
    Policy.load(paths[1], device="cpu").save(tmp_path / "tuned", metadata={"tasks": ["b", "a"], "nets": "place"})
    average_checkpoints([tmp_path / "shipped", tmp_path / "tuned"], tmp_path / "soup")
    meta = json.loads((tmp_path / "soup" / "config.json").read_text())["metadata"]
    assert meta["tasks"] == ["a", "b"] and meta["nets"] == "all" and "merged_from" not in meta
    assert meta["averaged_from"] == [
        {"path": str(tmp_path / "shipped"), "step": 0, "tasks": ["a"], "nets": "all", "merged_from": merged},
        {"path": str(tmp_path / "tuned"), "step": 100, "tasks": ["b", "a"], "nets": "place"},
    ]

    with pytest.raises(ValueError, match="at least two checkpoints, got 1"):
        average_checkpoints(paths[:1], tmp_path / "bad")
    Policy(small_cfg(clip_per_net=True, lang_layers=4), workspace=WS, device="cpu").save(tmp_path / "other")
    with pytest.raises(CheckpointError, match=r"different model configs \(\['lang_layers'\]\)"):
        average_checkpoints([paths[0], tmp_path / "other"], tmp_path / "bad")
    Policy(small_cfg(clip_per_net=True), workspace=Workspace(), device="cpu").save(tmp_path / "wide")
    with pytest.raises(CheckpointError, match="different workspaces"):
        average_checkpoints([paths[0], tmp_path / "wide"], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()

    assert main(["average", *map(str, paths[:2]), "--out", str(tmp_path / "two"), "--weights", "fp16"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["out"] == str(tmp_path / "two")
    assert main(["average", str(paths[0]), str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_merges_averages_and_fine_tunes_keep_their_inputs_lineage(tmp_path):
    """A model made by merging a fine-tune of a merge with another run names every run behind it: each derived
    checkpoint copies its inputs' own records (init_from, merged_from, averaged_from), not only their paths."""
    from cliport_ros.training.train import init_from_checkpoint

    cfg = small_cfg(clip_per_net=True)
    first_merge = {"pick": {"path": "runs/a", "step": 7}, "place": {"path": "runs/b", "step": 9}}
    Policy(cfg, workspace=WS, device="cpu").save(
        tmp_path / "shipped", metadata={"tasks": ["t"], "nets": "all", "merged_from": first_merge}
    )
    # a fine-tune of the shipped model records where its start came from
    tuned = Policy(cfg, workspace=WS, device="cpu")
    init = init_from_checkpoint(tuned, tmp_path / "shipped")
    assert init == {"checkpoint": str(tmp_path / "shipped"), "step": None, "nets": "all", "merged_from": first_merge}
    tuned.save(tmp_path / "tuned", metadata={"tasks": ["t"], "nets": "place", "step": 30, "init_from": init})

    meta = json.loads(
        (merge_halves(tmp_path / "shipped", tmp_path / "tuned", tmp_path / "m") / "config.json").read_text()
    )
    assert meta["metadata"]["merged_from"] == {
        "pick": {
            "path": str(tmp_path / "shipped"),
            "step": None,
            "tasks": ["t"],
            "nets": "all",
            "merged_from": first_merge,
        },
        "place": {"path": str(tmp_path / "tuned"), "step": 30, "tasks": ["t"], "nets": "place", "init_from": init},
    }
    soup = average_checkpoints([tmp_path / "shipped", tmp_path / "tuned"], tmp_path / "soup")
    averaged = json.loads((soup / "config.json").read_text())["metadata"]["averaged_from"]
    assert averaged[1]["init_from"]["merged_from"] == first_merge
