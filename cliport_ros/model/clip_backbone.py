"""One CLIP ResNet (image trunk up to its last residual stage) and text encoder, shared by the three nets.

Built with open_clip from the sizes in ``ModelConfig``; weights come from open_clip's ``openai`` download, a
local state-dict file, or random initialisation (``none``). A pretrained trunk is frozen; sentence embeddings
of a frozen trunk are cached per instruction (the ``TEXT_CACHE_SIZE`` most recently used).
"""

from __future__ import annotations

import os
import socket
import threading
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from cliport_ros.model.config import ModelConfig

# How long the reachability probe of the weights hub may take before we call it offline.
HUB_PROBE_TIMEOUT_S = 5.0
# Sentence embeddings kept per CLIP, least recently used dropped first. A robot repeats a handful of
# instructions, but a long-running node may be sent ever new ones: without a bound the cache grows for as
# long as it runs (an entry is embed_dim floats, 4 KiB for RN50, plus the tensor's overhead).
TEXT_CACHE_SIZE = 256


class ClipWeightsUnavailable(RuntimeError):
    """CLIP's pretrained weights cannot be obtained here; the message names the alternatives."""


def _alternatives(arch: str) -> str:
    return (
        f"alternatives: clip_weights=<path to a local open_clip {arch} state dict (.bin, .pt or "
        ".safetensors)>, "
        "or clip_weights='none' (random initialisation, for training from scratch, e.g. the 'tiny' config)"
    )


def _host_reachable(host: str, port: int = 443, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to host:port opens within ``timeout`` (DNS included, so it never hangs)."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def resolve_openai_weights(arch: str) -> str:
    """Local path of open_clip's ``openai`` weights for ``arch``: cached, else downloaded; never hangs."""
    import open_clip

    cfg = open_clip.pretrained.get_pretrained_cfg(arch, "openai")
    if not cfg:
        raise ClipWeightsUnavailable(f"open_clip has no 'openai' weights for {arch!r}; {_alternatives(arch)}")
    repo_id, filename = os.path.split(cfg.get("hf_hub", "").rstrip("/") + "/")
    repo_id = repo_id.rstrip("/")
    candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    try:
        from huggingface_hub import try_to_load_from_cache

        for name in candidates:
            cached = try_to_load_from_cache(repo_id, name, cache_dir=os.environ.get("HF_HUB_CACHE"))
            if isinstance(cached, str) and Path(cached).is_file():
                return cached
    except ImportError:
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    if offline:
        reason = "HF_HUB_OFFLINE is set and the weights are not in the local cache"
    elif not _host_reachable(endpoint.hostname or "huggingface.co", endpoint.port or 443):
        reason = f"{endpoint.hostname} is unreachable (no internet?) and the weights are not in the local cache"
    else:
        try:
            return open_clip.pretrained.download_pretrained(cfg)
        except Exception as exc:  # any download failure becomes one clear message
            reason = f"the download failed: {exc}"
    raise ClipWeightsUnavailable(f"cannot load CLIP {arch} 'openai' weights: {reason}; {_alternatives(arch)}")


def open_clip_model(cfg: ModelConfig) -> nn.Module:
    """A complete, randomly initialised open_clip ``CLIP`` of the configured sizes (as open_clip saves one)."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    return CLIP(
        embed_dim=cfg.clip_embed_dim,
        vision_cfg=CLIPVisionCfg(layers=list(cfg.clip_vision_layers), width=cfg.clip_vision_width, image_size=224),
        text_cfg=CLIPTextCfg(
            context_length=cfg.clip_context_length,
            width=cfg.clip_text_width,
            heads=cfg.clip_text_heads,
            layers=cfg.clip_text_layers,
        ),
        quick_gelu=cfg.clip_quick_gelu,
    )


def build_vision_trunk(cfg: ModelConfig) -> nn.Module:
    """A randomly initialised CLIP image trunk of the configured sizes, for a net of its own (``clip_per_net``)."""
    visual = open_clip_model(cfg).visual
    visual.attnpool = None
    return visual


def build_open_clip(cfg: ModelConfig) -> nn.Module:
    """An open_clip ``CLIP`` with the configured sizes and weights (attention pooling removed)."""
    import open_clip

    path = None
    if cfg.clip_weights == "openai":
        path = resolve_openai_weights(cfg.clip_arch)  # before building: fail fast, without a network
    elif cfg.clip_weights != "none":
        path = cfg.clip_weights
        if not Path(path).is_file():
            raise ValueError(
                f"clip_weights {path!r} is neither 'openai', 'none' nor an existing file; "
                f"{_alternatives(cfg.clip_arch)}"
            )
    model = open_clip_model(cfg)
    if path is not None:
        try:
            open_clip.load_checkpoint(model, path, strict=True)
        except Exception as exc:
            raise ValueError(
                f"clip_weights file {path!r} does not hold open_clip weights of this CLIP's sizes "
                f"(clip_arch={cfg.clip_arch!r}): {exc}"
            ) from exc
    # The policy uses the trunk up to its last residual stage: the attention pool is dead weight.
    model.visual.attnpool = None
    return model


class ClipBackbone(nn.Module):
    """CLIP image stages (strides 4..32) and sentence embeddings, frozen unless trained from scratch."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        import open_clip
        from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

        self.cfg = cfg
        self.clip = build_open_clip(cfg)
        if cfg.clip_per_net and cfg.layout == "compact":  # the nets own their image trunks: dead weight here
            self.clip.visual = None
        self.register_buffer("mean", torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1) * 255.0, persistent=False)
        self._tokenizer = open_clip.get_tokenizer("RN50", context_length=cfg.clip_context_length)
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()  # least recently used first
        self.trainable = cfg.clip_trainable
        for p in self.clip.parameters():
            p.requires_grad_(self.trainable)
        self.train(False)

    def train(self, mode: bool = True) -> ClipBackbone:
        super().train(mode)
        # A frozen (pretrained) trunk keeps its batch norm on the running statistics it was trained with.
        # A trunk trained from scratch uses batch statistics while training (of one image, or of the 36
        # crops of one): with its random running statistics its features would shrink layer by layer.
        self.clip.train(mode and self.trainable)
        if self.trainable and mode:
            self._text_cache.clear()
        return self

    def image_features(self, rgb: torch.Tensor, visual: nn.Module | None = None) -> list[torch.Tensor]:
        """RGB (B, 3, H, W) in 0..255, H and W multiples of 32 -> stage outputs at strides 4, 8, 16, 32.

        ``visual``: a net's own image trunk (``clip_per_net``) instead of the shared one.
        """
        x = (rgb - self.mean.to(rgb.dtype)) / self.std.to(rgb.dtype)
        return self.image_stages(x, visual)

    def image_stages(self, x: torch.Tensor, visual: nn.Module | None = None) -> list[torch.Tensor]:
        """Normalised RGB (B, 3, H, W) -> the four stage outputs (strides 4, 8, 16, 32)."""
        v = self.clip.visual if visual is None else visual
        x = x.to(v.conv1.weight.dtype)
        x = v.stem(x)
        feats = []
        for layer in (v.layer1, v.layer2, v.layer3, v.layer4):
            x = layer(x)
            feats.append(x)
        return feats

    def text_features(self, instructions: list[str], device: torch.device) -> torch.Tensor:
        """Sentence embeddings (B, embed_dim); cached per instruction while they cannot change."""
        cacheable = not self.trainable or not (torch.is_grad_enabled() and self.training)
        if not cacheable:
            return self._encode(instructions, device)
        # this call's embeddings, gathered apart from the cache: a batch of more distinct instructions than
        # the cache holds evicts some of its own before they are stacked
        found: dict[str, torch.Tensor] = {}
        for s in dict.fromkeys(instructions):
            cached = self._text_cache.get(s)  # one lookup: another thread may evict between two
            if cached is not None:
                found[s] = cached
                try:
                    self._text_cache.move_to_end(s)
                except KeyError:  # evicted meanwhile: this call still has it
                    pass
        missing = [s for s in dict.fromkeys(instructions) if s not in found]
        if missing:
            with torch.no_grad():
                emb = self._encode(missing, device)
            for s, e in zip(missing, emb):
                # a copy: a row view would keep the whole batch's storage alive after its neighbours go
                found[s] = self._text_cache[s] = e.detach().clone()
            while len(self._text_cache) > TEXT_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        return torch.stack([found[s].to(device) for s in instructions])

    def _encode(self, instructions: list[str], device: torch.device) -> torch.Tensor:
        tokens = self._tokenizer(instructions).to(device)
        return self.clip.encode_text(tokens, normalize=False).float()

    def clear_cache(self) -> None:
        self._text_cache.clear()

    def _apply(self, fn, recurse=True):  # moving devices or dtypes invalidates cached embeddings
        self._text_cache.clear()
        return super()._apply(fn, recurse)
