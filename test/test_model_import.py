"""`cliport import`: reading reference checkpoints without running their pickles; conversion and its errors.

The conversion of the full `paper` network is checked against the reference's outputs in test_model_golden.py;
here a small network of the same layout makes the checkpoints, so each case takes a second.
"""

import json
import pickle
import zipfile

import pytest
import torch
from reference_checkpoints import reference_state_from_model, write_lightning_checkpoint
from test_model_reference import INSTRUCTION, random_image, small_reference

from cliport_ros.cli import main
from cliport_ros.model import Policy
from cliport_ros.model.importer import (
    CLIP_PREFIXES,
    ReferenceImportError,
    convert_reference_state,
    import_reference_checkpoint,
    read_torch_archive,
)
from cliport_ros.model.policy import CLIPortModel

CFG = small_reference(n_rotations=4, crop_size=32)


@pytest.fixture(scope="module")
def small_model() -> CLIPortModel:
    torch.manual_seed(0)
    return CLIPortModel(CFG).eval()


def _fp16_clip(state):
    """The reference holds CLIP's convolution and linear weights in fp16 (its convert_weights)."""
    out = dict(state)
    for key, value in state.items():
        if ".clip_rn50." in key and value.dim() >= 2 and "token_embedding" not in key and "positional" not in key:
            out[key] = value.half()
    return out


class _RunsACommand:
    """A pickle payload that would run a shell command if the unpickler resolved os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _torch_zip(path, obj):
    """A torch.save-style zip archive whose data.pkl pickles ``obj`` with plain pickle (no tensors)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return path


def test_a_crafted_pickle_that_would_run_a_command_runs_nothing(tmp_path, small_model):
    marker = tmp_path / "pwned"
    payload = _torch_zip(tmp_path / "evil.ckpt", {"state_dict": {"x": _RunsACommand(marker)}})
    with pytest.raises(ReferenceImportError, match="not tensors"):
        import_reference_checkpoint(payload, tmp_path / "out", base=CFG)
    assert not marker.exists()
    obj, placeholders = read_torch_archive(payload)
    assert placeholders == {"posix.system"} or placeholders == {"os.system"}
    assert "placeholder" in repr(obj["state_dict"]["x"])
    # the same payload beside real weights: the weights import, the payload stays inert and is reported
    ckpt = write_lightning_checkpoint(
        tmp_path / "mixed.ckpt", reference_state_from_model(small_model), hyper_parameters=_RunsACommand(marker)
    )
    folder, _ = import_reference_checkpoint(ckpt, tmp_path / "mixed", base=CFG)
    assert not marker.exists()
    meta = json.loads((folder / "config.json").read_text())["metadata"]["imported_from"]
    assert any(g.endswith(".system") for g in meta["globals_not_loaded"])
    assert "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint" in meta["globals_not_loaded"]
    # a control: plain pickle would have run it
    assert b"system" in (tmp_path / "evil.ckpt").read_bytes()


def test_import_round_trip_computes_what_the_reference_format_held(tmp_path, small_model, capsys):
    """Our model -> reference keys (CLIP fp16 as the reference stores it) -> .ckpt -> import -> same outputs."""
    state = _fp16_clip(reference_state_from_model(small_model))
    ckpt = write_lightning_checkpoint(tmp_path / "agent.ckpt", state)
    # the command converts to the paper's sizes, which this small network does not have: a clear refusal
    assert main(["import", str(ckpt), "--out", str(tmp_path / "paper")]) == 2
    assert "do not fit the reference 'cliport' network" in capsys.readouterr().err
    folder, report = import_reference_checkpoint(ckpt, tmp_path / "imported", up_batchnorm_stats="running", base=CFG)
    assert report.agent == "cliport" and not report.clip_per_net  # the three copies are one trunk here
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["reference_resampling"] is True and config["model"]["up_batchnorm_stats"] == "running"
    source = config["metadata"]["imported_from"]
    assert source["file"] == "agent.ckpt" and source["global_step"] == 201000 and len(source["sha256"]) == 64
    from safetensors.torch import load_file

    stored = load_file(folder / "model.safetensors")
    # CLIP's fp16 tensors are stored as they came (exact), everything else fp32
    assert stored["clip.clip.visual.conv1.weight"].dtype == torch.float16
    assert stored["attention.attn_stream_one.conv1.0.weight"].dtype == torch.float32
    policy = Policy.load(folder, device="cpu")
    reference = CLIPortModel(CFG.replace(reference_resampling=True)).eval()
    reference.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in stored.items()})
    assert torch.equal(
        policy.model.state_dict()["clip.clip.visual.conv1.weight"],
        small_model.state_dict()["clip.clip.visual.conv1.weight"].half().float(),
    )
    image = random_image(rows=64, cols=32)
    with torch.no_grad():
        text = policy.model.text([INSTRUCTION])
        a = policy.model.place_logits(image, torch.tensor([[20, 10]]), text)
        b = reference.place_logits(image, torch.tensor([[20, 10]]), reference.text([INSTRUCTION]))
    assert torch.equal(a, b)


def test_three_differing_clip_copies_stay_one_per_net(small_model):
    state = reference_state_from_model(small_model)
    bn = CLIP_PREFIXES["query"] + "visual.bn1.running_mean"
    state[bn] = state[bn] + 0.5  # a training run updates each copy's statistics apart
    cfg, tensors, report = convert_reference_state(state, CFG)
    assert report.clip_per_net and cfg.clip_per_net and report.clip_differing == ["visual.bn1.running_mean"]
    assert torch.equal(tensors["transport.query_stream_two.clip_rn50.clip.visual.bn1.running_mean"], state[bn])
    model = CLIPortModel(cfg.replace(clip_weights="none"))
    model.load_state_dict(tensors)  # strict: every tensor has its place


def _expect(state, message):
    with pytest.raises(ReferenceImportError, match=message):
        convert_reference_state(state, CFG)


def test_conversion_errors_name_the_tensors_and_the_agent(small_model):
    base = reference_state_from_model(small_model)
    missing = dict(base)
    del missing["attention.attn_stream_two.lat_fusion3.conv.1.weight"]
    _expect(missing, r"1 missing: \['attention.attn_stream_two.lat_fusion3.conv.1.weight'\]")
    extra = dict(base, **{"transport.key_stream_one.layer11.0.conv1.weight": torch.zeros(1)})
    _expect(extra, r"1 unexpected: \['transport.key_stream_one.layer11.0.conv1.weight'\]")
    wrong = dict(base, **{"attention.attn_stream_two.conv2.0.bias": torch.zeros(2)})
    _expect(wrong, r"attention.attn_stream_two.conv2.0.bias: file \(2,\) vs network \(1,\)")
    transporter = {
        k.replace("attn_stream_one", "attn_stream").replace("key_stream_one", "key_resnet"): v
        for k, v in base.items()
        if "stream_two" not in k
    }
    _expect(
        transporter,
        r"'transporter / transporter_lang \(single stream\)' agent; `cliport import` supports "
        r"'cliport' \(TwoStreamClipLingUNetLatTransporterAgent\)",
    )
    no_lang = {k: v for k, v in base.items() if ".lang_proj" not in k}
    _expect(no_lang, "'two_stream_clip_unet_lat_transporter' agent")


def test_files_that_are_not_checkpoints_get_clear_errors(tmp_path, capsys):
    (tmp_path / "text.ckpt").write_text("hello")
    assert main(["import", str(tmp_path / "text.ckpt"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a PyTorch checkpoint: not a torch.save zip archive" in capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("readme.txt", "x")
    with pytest.raises(ReferenceImportError, match="not a torch.save archive"):
        read_torch_archive(tmp_path / "other.zip")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ReferenceImportError, match="not a Lightning checkpoint of a CLIPort agent: no 'state_dict'"):
        import_reference_checkpoint(tmp_path / "list.pt", tmp_path / "o2", base=CFG)
    with pytest.raises(ReferenceImportError, match="does not exist"):
        read_torch_archive(tmp_path / "missing.ckpt")
    truncated = tmp_path / "truncated.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, truncated)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReferenceImportError):
        read_torch_archive(truncated)


def _rss_bytes() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_tensors_are_memory_mapped_not_copied(tmp_path):
    """Reading a checkpoint maps its tensors: resident memory grows only as their pages are touched."""
    import gc

    path = tmp_path / "big.ckpt"
    n = 32 << 20  # 128 MB of int32
    torch.save({"state_dict": {"w": torch.arange(n, dtype=torch.int32)}}, path)
    gc.collect()
    before = _rss_bytes()
    obj, _ = read_torch_archive(path)
    w = obj["state_dict"]["w"]
    assert _rss_bytes() - before < 16 << 20
    assert w.shape == (n,) and int(w[-1]) == n - 1 and int(w[12345]) == 12345
