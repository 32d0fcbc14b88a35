"""The CLIPort policy: top-down view + instruction -> pick and place poses, with save/load.

``CLIPortModel`` is the torch module (one shared CLIP, the pick net, the key and query nets); ``Policy`` wraps
it with the workspace, the device and precision, and turns heatmaps into poses in the base frame.
Checkpoints are a folder: ``model.safetensors`` (all weights) + ``config.json`` (model config, workspace,
where CLIP came from); loading needs neither the training code nor a network.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.model.attention import Attention
from cliport_ros.model.clip_backbone import ClipBackbone
from cliport_ros.model.config import PLACE_ONLY_FIELDS, ModelConfig
from cliport_ros.model.transport import Transport
from cliport_ros.types import PickPlace, Pose

CHECKPOINT_FORMAT = "cliport_ros.policy"
CHECKPOINT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# how a checkpoint stores its parameters
WEIGHT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


class CheckpointError(ValueError):
    """A checkpoint folder is missing, foreign, or does not fit the network its config describes."""


@dataclass(frozen=True)
class SentenceEmbeddings:
    """Embeddings (B, D) of a batch of instructions for the pick net, the place (key) net and the query net.

    One tensor for all when the nets share one CLIP; the compact layout's ``clip_per_net`` gives the pick and
    place halves a text encoder each, the reference layout's gives each of the three nets its own.
    """

    pick: torch.Tensor
    place: torch.Tensor
    query: torch.Tensor | None = None  # None: the query net reads ``place``

    @property
    def place_query(self) -> torch.Tensor:
        return self.place if self.query is None else self.query


class CLIPortModel(nn.Module):
    """The pick net and the place (key, query) nets over one shared CLIP, or over a CLIP per net or half."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.place_clip: ClipBackbone | None = None
        self.attention: nn.Module
        self.transport: nn.Module
        if cfg.layout == "reference":
            from cliport_ros.model.reference import ReferenceAttention, ReferenceTransport

            # shared: one trunk here, lent to the three nets; per net: each net's semantic stream owns one
            shared = None if cfg.clip_per_net else ClipBackbone(cfg)
            self.attention = ReferenceAttention(cfg, shared)
            self.transport = ReferenceTransport(cfg, (shared, shared))
            if shared is not None:
                self.clip = shared
            else:  # the pick net's, not registered twice
                object.__setattr__(self, "clip", self.attention.attn_stream_two.clip)
            self.set_up_batchnorm_stats(cfg.up_batchnorm_stats)
        else:
            self.clip = ClipBackbone(cfg)
            # clip_per_net: the place half owns a text encoder too, so that the pick and place halves share no
            # trainable parameter (they can then train apart, see ``merge_halves``)
            self.place_clip = ClipBackbone(cfg) if cfg.clip_per_net else None
            self.attention = Attention(cfg, self.clip)
            self.transport = Transport(cfg, self.place_clip or self.clip)
        self.to(memory_format=torch.channels_last)  # see TwoStreamNet.forward

    def set_up_batchnorm_stats(self, stats: str) -> None:
        """Reference layout: how the up blocks' batch norms normalise outside training (UP_BATCHNORM_STATS)."""
        from cliport_ros.model.config import UP_BATCHNORM_STATS
        from cliport_ros.model.reference import UpBatchNorm

        if stats not in UP_BATCHNORM_STATS:
            raise ValueError(f"up_batchnorm_stats must be one of {UP_BATCHNORM_STATS}, got {stats!r}")
        if self.cfg.layout != "reference":
            raise ValueError("up_batchnorm_stats belongs to the reference layout; this model is compact")
        for m in self.modules():
            if isinstance(m, UpBatchNorm):
                m.batch_stats = stats == "batch"

    def text_encoders(self) -> dict[str, ClipBackbone]:
        """The CLIP whose text encoder each net reads: pick, place (key) and query."""
        if self.cfg.layout == "reference":
            return {
                "pick": self.attention.attn_stream_two.clip,
                "place": self.transport.key_stream_two.clip,
                "query": self.transport.query_stream_two.clip,
            }
        place = self.place_clip or self.clip
        return {"pick": self.clip, "place": place, "query": place}

    def clips(self) -> list[ClipBackbone]:
        """Every distinct CLIP of the model."""
        return list({id(c): c for c in self.text_encoders().values()}.values())

    def text(self, instructions: Sequence[str]) -> SentenceEmbeddings:
        device = next(self.attention.parameters()).device
        computed: dict[int, torch.Tensor] = {}
        out = {}
        for net, clip in self.text_encoders().items():
            if id(clip) not in computed:
                computed[id(clip)] = clip.text_features(list(instructions), device)
            out[net] = computed[id(clip)]
        query = None if out["query"] is out["place"] else out["query"]
        return SentenceEmbeddings(out["pick"], out["place"], query)

    def pick_logits(self, image: torch.Tensor, text: SentenceEmbeddings) -> torch.Tensor:
        """(B, 6, H, W), B sentences -> (B, H, W)."""
        return self.attention(image, text.pick)

    def place_logits(self, image: torch.Tensor, pick: torch.Tensor, text: SentenceEmbeddings) -> torch.Tensor:
        """(B, 6, H, W), pick pixels (B, 2), B sentences -> (B, R, H, W)."""
        if self.cfg.layout == "reference":
            return self.transport(image, pick, text.place, text.place_query)
        return self.transport(image, pick, text.place)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of each CLIP copy together, and of the pick, key and query nets without CLIP."""
        clip_ids = {id(p) for c in self.clips() for p in c.parameters()}

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters() if id(p) not in clip_ids)

        if self.cfg.layout == "reference":
            t = self.transport
            key = count(t.key_stream_one) + count(t.key_stream_two) + count(t.fusion_key)
            query = count(t.query_stream_one) + count(t.query_stream_two) + count(t.fusion_query)
        else:
            key, query = count(self.transport.key), count(self.transport.query)
        return {
            "clip": sum(p.numel() for c in self.clips() for p in c.parameters()),
            "pick": count(self.attention),
            "place_key": key,
            "place_query": query,
        }

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by optimiser: pick, place, and CLIP (only when trained from scratch)."""
        clip_ids = {id(p) for c in self.clips() for p in c.parameters()}
        groups = {
            "pick": [p for p in self.attention.parameters() if p.requires_grad and id(p) not in clip_ids],
            "place": [p for p in self.transport.parameters() if p.requires_grad and id(p) not in clip_ids],
        }
        clip = [p for c in self.clips() for p in c.parameters() if p.requires_grad]
        if clip:
            groups["clip"] = clip
        return groups

    @property
    def halves_independent(self) -> bool:
        """Whether the pick and place halves share no trainable parameter (so they can train apart)."""
        if self.cfg.layout == "reference":
            return self.cfg.clip_per_net or not self.clip.trainable
        return self.place_clip is not None or not self.clip.trainable

    def half_keys(self) -> dict[str, list[str]]:
        """State-dict keys of the pick half and of the place half (only when ``halves_independent``)."""
        if not self.halves_independent:
            raise ValueError(
                "the pick and place nets share a CLIP trained from scratch, so they cannot be split; "
                "use clip_per_net=true (or a frozen, pretrained CLIP)"
            )
        keys = list(self.state_dict())
        # a frozen shared CLIP ("clip.") belongs to both halves: it goes with the pick
        place_prefixes = ("transport.", "place_clip.") if self.place_clip is not None else ("transport.",)
        return {
            "pick": [k for k in keys if k.startswith(("attention.", "clip."))],
            "place": [k for k in keys if k.startswith(place_prefixes)],
        }


def image_tensor(color: np.ndarray, height: np.ndarray) -> torch.Tensor:
    """(rows, cols, 3) uint8 color + (rows, cols) height (m) -> (1, 6, rows, cols) float32 RGB, height x3."""
    color = np.asarray(color)
    height = np.asarray(height, dtype=np.float32)
    if color.ndim != 3 or color.shape[2] != 3 or height.shape != color.shape[:2]:
        raise ValueError(
            f"need color (rows, cols, 3) and height (rows, cols) of the same size, got {color.shape} and {height.shape}"
        )
    rgb = torch.from_numpy(np.ascontiguousarray(color, dtype=np.float32)).permute(2, 0, 1)
    h = torch.from_numpy(np.ascontiguousarray(height))[None].expand(3, -1, -1)
    return torch.cat([rgb, h], dim=0)[None]


def rotation_bin(place_yaw: float, n_rotations: int) -> int:
    """The place-rotation bin whose theta is -place_yaw (the label of a place yaw relative to the pick)."""
    step = 2 * math.pi / n_rotations
    return int(round(-place_yaw / step)) % n_rotations


def bin_to_yaw(rotation: int, n_rotations: int) -> float:
    """Place yaw (relative to the pick, in (-pi, pi]) of a rotation bin: -theta."""
    yaw = -rotation * 2 * math.pi / n_rotations
    return math.atan2(math.sin(yaw), math.cos(yaw))


@dataclass
class PolicyOutput:
    """One decision with its evidence."""

    pick_place: PickPlace
    pick_heatmap: np.ndarray  # (rows, cols) float32 probabilities, summing to 1
    place_heatmap: np.ndarray  # (rows, cols) float32, max over rotations of the joint place probabilities
    pick_pixel: tuple[int, int]
    place_pixel: tuple[int, int]
    place_rotation: float  # place yaw relative to the pick (rad) = -theta of the argmax rotation bin
    place_rotation_bin: int
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds
    # with ``act(..., keep_logits=True)``: the raw logits, pick (rows, cols) and place (R, rows, cols)
    pick_logits: np.ndarray | None = None
    place_logits: np.ndarray | None = None


def _resolve_device(device: str | torch.device) -> torch.device:
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {device!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA GPU is available; use device='cpu' or 'auto'")
    return torch.device(name)


def _resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if device.type != "cuda":
        if precision in ("bf16", "fp16"):
            raise ValueError(f"precision {precision!r} is for GPUs; on {device.type} use 'fp32' or 'auto'")
        return torch.float32
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class Policy:
    """CLIPort acting on a TopDownView: ``act(view, instruction) -> PolicyOutput``."""

    def __init__(
        self,
        cfg: ModelConfig,
        workspace: Workspace | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
        model: CLIPortModel | None = None,
        reuse_host_memory: bool = True,
    ) -> None:
        """``reuse_host_memory``: on a CPU, keep freed host memory for reuse (``host_memory``; ~15 % faster
        decisions of the paper network, at the price of the process keeping its peak memory)."""
        if not isinstance(cfg, ModelConfig):
            raise ValueError(f"Policy needs a ModelConfig (e.g. ModelConfig.named('tiny')), got {type(cfg).__name__}")
        self.cfg = cfg
        self.workspace = workspace if workspace is not None else Workspace()
        self.device = _resolve_device(device)
        self.dtype = _resolve_precision(precision, self.device)
        if reuse_host_memory and self.device.type == "cpu":
            from cliport_ros.model.host_memory import keep_freed_host_memory

            keep_freed_host_memory()
        self.model = (model if model is not None else CLIPortModel(cfg)).to(self.device)
        self.model.eval()
        self.metadata: dict[str, Any] = {}

    # ------------------------------------------------------------------ acting
    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def _check_view(self, color: np.ndarray, height: np.ndarray) -> None:
        if tuple(np.shape(color)[:2]) != self.workspace.shape or tuple(np.shape(height)) != self.workspace.shape:
            raise ValueError(
                f"view is {np.shape(color)[:2]} (color) / {np.shape(height)} (height) pixels but the "
                "policy's "
                f"workspace grid is {self.workspace.shape}"
            )

    def _views(self) -> list[tuple[bool, bool]]:
        """(rows flipped, columns flipped) of each view a decision averages (``ModelConfig.test_time_flips``)."""
        flips = self.cfg.test_time_flips
        rows = (False, True) if flips != "none" else (False,)
        cols = (False, True) if flips == "rows_and_cols" else (False,)
        return [(r, c) for r in rows for c in cols]

    @staticmethod
    def _flip(tensor: torch.Tensor, rows: bool, cols: bool) -> torch.Tensor:
        dims = [d for d, f in ((-2, rows), (-1, cols)) if f]
        return tensor.flip(dims) if dims else tensor

    def _pick_logits(self, image: torch.Tensor, text: SentenceEmbeddings) -> torch.Tensor:
        """(1, rows, cols) pick logits, the mean over the test-time views mapped back to this one."""
        views = self._views()
        logits = [self._flip(self.model.pick_logits(self._flip(image, r, c), text).float(), r, c) for r, c in views]
        return logits[0] if len(logits) == 1 else torch.stack(logits).mean(0)

    def _place_logits(self, image: torch.Tensor, pick_px: tuple[int, int], text: SentenceEmbeddings) -> torch.Tensor:
        """(R, rows, cols) place logits for a pick pixel, the mean over the test-time views mapped back.

        In a view with one flip the pick is at the mirrored pixel, and a crop turned by theta there is the mirror
        of this view's crop turned by -theta: that view's bin i is this view's bin -i. Two flips (a half turn)
        keep the bins: the object's turn between pick and place is the same.
        """
        height, width = image.shape[-2:]
        out = []
        for r, c in self._views():
            pick = (height - 1 - pick_px[0] if r else pick_px[0], width - 1 - pick_px[1] if c else pick_px[1])
            pick_t = torch.tensor([pick], device=self.device)
            logits = self._flip(self.model.place_logits(self._flip(image, r, c), pick_t, text)[0].float(), r, c)
            if r != c:
                n_rot = logits.shape[0]
                logits = logits[(-torch.arange(n_rot, device=self.device)) % n_rot]
            out.append(logits)
        return out[0] if len(out) == 1 else torch.stack(out).mean(0)

    def act(
        self,
        view: Any,
        instruction: str,
        pick_pixel: tuple[int, int] | None = None,
        keep_logits: bool = False,
    ) -> PolicyOutput:
        """One pick and place from a top-down view (with ``color`` and ``height``) and an instruction.

        ``pick_pixel`` (row, col) fixes the pick that the place map is computed for (the pick net still runs);
        ``keep_logits`` returns the raw pick and place logits too.
        """
        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("instruction must be a non-empty string, e.g. 'put the red blocks in a green bowl'")
        color, height = view.color, view.height
        self._check_view(color, height)
        if pick_pixel is not None:
            rows, cols = self.workspace.shape
            if (
                len(pick_pixel) != 2
                or not all(isinstance(v, (int, np.integer)) for v in pick_pixel)
                or not (0 <= pick_pixel[0] < rows and 0 <= pick_pixel[1] < cols)
            ):
                raise ValueError(f"pick_pixel must be (row, col) inside {rows} x {cols}, got {pick_pixel!r}")
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        t0 = time.perf_counter()
        with torch.inference_mode(), self._autocast():
            image = image_tensor(color, height).to(self.device)
            text = self.model.text([instruction])
            pick_logits = self._pick_logits(image, text)
            pick_prob = torch.softmax(pick_logits.flatten(), 0).reshape(pick_logits.shape[1:])
            idx = int(torch.argmax(pick_prob))
            pick_px = divmod(idx, pick_prob.shape[1]) if pick_pixel is None else tuple(int(v) for v in pick_pixel)
            sync()
            t1 = time.perf_counter()
            place_logits = self._place_logits(image, pick_px, text)
            place_prob = torch.softmax(place_logits.flatten(), 0).reshape(place_logits.shape)
            pidx = int(torch.argmax(place_prob))
            rot, rem = divmod(pidx, place_prob.shape[1] * place_prob.shape[2])
            place_px = divmod(rem, place_prob.shape[2])
            pick_map = pick_prob.cpu().numpy().astype(np.float32)
            place_map = place_prob.amax(0).cpu().numpy().astype(np.float32)
            sync()
            t2 = time.perf_counter()
        place_yaw = bin_to_yaw(rot, self.cfg.n_rotations)
        heights = np.asarray(height, dtype=np.float32)
        pick_pose = Pose.from_xyz_yaw(self.workspace.pixel_to_xyz(pick_px, heights), 0.0)
        place_pose = Pose.from_xyz_yaw(self.workspace.pixel_to_xyz(place_px, heights), place_yaw)
        action = PickPlace(
            pick=pick_pose,
            place=place_pose,
            pick_confidence=float(min(1.0, pick_map[pick_px])),
            place_confidence=float(min(1.0, place_prob[rot, place_px[0], place_px[1]].item())),
            instruction=instruction,
            frame_id=self.workspace.frame_id,
        )
        return PolicyOutput(
            pick_place=action,
            pick_heatmap=pick_map,
            place_heatmap=place_map,
            pick_pixel=(int(pick_px[0]), int(pick_px[1])),
            place_pixel=(int(place_px[0]), int(place_px[1])),
            place_rotation=place_yaw,
            place_rotation_bin=int(rot),
            timings={"pick_ms": (t1 - t0) * 1e3, "place_ms": (t2 - t1) * 1e3, "total_ms": (t2 - t0) * 1e3},
            pick_logits=pick_logits[0].cpu().numpy() if keep_logits else None,
            place_logits=place_logits.cpu().numpy() if keep_logits else None,
        )

    def act_from_images(self, images: Sequence[tuple[np.ndarray, np.ndarray, Any]], instruction: str) -> PolicyOutput:
        """Fuse calibrated RGB-D views ``(rgb, depth, CameraModel)`` into a top-down view, then ``act``."""
        from cliport_ros.perception.fusion import fuse_views

        t0 = time.perf_counter()
        view = fuse_views(images, self.workspace)
        fuse_ms = (time.perf_counter() - t0) * 1e3
        out = self.act(view, instruction)
        out.timings["fuse_ms"] = fuse_ms
        out.timings["total_ms"] += fuse_ms
        return out

    def warm_up(self, instruction: str = "put the red blocks in a green bowl", repeats: int = 2) -> None:
        """Run a few decisions on an empty view so the first real one is not slowed by lazy set-up."""

        class _Blank:
            color = np.zeros((*self.workspace.shape, 3), np.uint8)
            height = np.zeros(self.workspace.shape, np.float32)

        for _ in range(repeats):
            self.act(_Blank(), instruction)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, metadata: Mapping[str, Any] | None = None, weights: str = "fp32") -> Path:
        """Write ``model.safetensors`` + ``config.json`` into folder ``path`` (created).

        ``weights='fp16'`` stores the parameters in half precision (half the file, e.g. to ship a model in
        the repository); buffers such as batch-norm statistics stay fp32, and loading returns to fp32.
        """
        from safetensors.torch import save_file

        if weights not in WEIGHT_DTYPES:
            raise ValueError(f"weights must be one of {sorted(WEIGHT_DTYPES)}, got {weights!r}")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        parameters = {k for k, _ in self.model.named_parameters()}

        def stored(key: str, value: torch.Tensor) -> torch.dtype:
            if not value.is_floating_point():
                return value.dtype
            return WEIGHT_DTYPES[weights] if key in parameters else torch.float32

        state = {k: v.detach().to("cpu", stored(k, v)).contiguous() for k, v in self.model.state_dict().items()}
        meta = {**self.metadata, **(dict(metadata) if metadata else {})}
        config = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model": self.cfg.to_dict(),
            "workspace": self.workspace.to_dict(),
            "clip_source": self.cfg.clip_weights,
            "weights": weights,
            "metadata": meta,
        }
        tmp_w, tmp_c = folder / (WEIGHTS_FILE + ".tmp"), folder / (CONFIG_FILE + ".tmp")
        save_file(state, str(tmp_w), metadata={"format": CHECKPOINT_FORMAT})
        tmp_c.write_text(json.dumps(config, indent=2) + "\n")
        tmp_w.replace(folder / WEIGHTS_FILE)  # replace, so an interrupted save never leaves a half checkpoint
        tmp_c.replace(folder / CONFIG_FILE)
        return folder

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | torch.device = "auto",
        precision: str = "auto",
        test_time_flips: str | None = None,
    ) -> Policy:
        """Rebuild a policy from a checkpoint folder written by ``save`` (no network needed).

        ``test_time_flips`` replaces the config's (``ModelConfig.test_time_flips``); None keeps it.
        """
        cfg, workspace, meta, state = read_checkpoint(path)
        if test_time_flips is not None:
            cfg = cfg.replace(test_time_flips=test_time_flips)
        model = _model_for_stored_weights(cfg)
        load_state(model, state, path)
        policy = cls(cfg, workspace, device=device, precision=precision, model=model)
        policy.metadata = meta
        return policy


def _model_for_stored_weights(cfg: ModelConfig) -> CLIPortModel:
    """The network of ``cfg`` to load a weights file into: the file holds CLIP too, so CLIP is built randomly
    initialised (never downloaded), and the model keeps the config as saved."""
    model = CLIPortModel(cfg.replace(clip_weights="none"))
    model.cfg = cfg
    return model


def read_checkpoint(path: str | Path) -> tuple[ModelConfig, Workspace, dict, dict[str, torch.Tensor]]:
    """Config, workspace, metadata and weights of a checkpoint folder, with clear errors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path)
    if folder.is_file():
        raise CheckpointError(f"{folder} is a file; a checkpoint is a folder holding {WEIGHTS_FILE} and {CONFIG_FILE}")
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder} is not a cliport_ros checkpoint: {name} is missing")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{folder / CONFIG_FILE} is not a cliport_ros policy config (expected format {CHECKPOINT_FORMAT!r})"
        )
    if config.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint version {config.get('version')!r} is not supported (this code reads {CHECKPOINT_VERSION})"
        )
    try:
        model_fields = dict(config["model"])
        # checkpoints written before the reference layout existed are of the compact layout
        model_fields.setdefault("layout", "compact")
        cfg = ModelConfig.from_dict(model_fields)
        workspace = Workspace.from_dict(config.get("workspace", {}))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} holds an invalid configuration: {exc}") from exc
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} is not a readable safetensors file: {exc}") from exc
    return cfg, workspace, dict(config.get("metadata", {})), state


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], where: str | Path) -> None:
    """Load weights, naming missing, unexpected or mis-shaped tensors in the error."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} tensor(s) of the wrong shape, e.g. {mismatched[:3]}")
        if missing:
            parts.append(f"{len(missing)} missing, e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[:3]}")
        raise CheckpointError(f"weights in {where} do not fit the configured network: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def merge_halves(pick_path: str | Path, place_path: str | Path, out: str | Path, weights: str = "fp32") -> Path:
    """A checkpoint with the pick half of ``pick_path`` and the place half of ``place_path`` (one config).

    The halves must share no trainable parameter (``clip_per_net``, or a frozen CLIP, which must then be the
    same in both); a checkpoint whose run trained only the other half is refused, since that half is untrained.
    """
    sources = {"pick": Path(pick_path), "place": Path(place_path)}
    cfg, workspace, pick_meta, pick_state = read_checkpoint(pick_path)
    place_cfg, place_ws, place_meta, place_state = read_checkpoint(place_path)
    # the pick net is the same network whatever the place-only fields say: take them from the place half
    cfg = cfg.replace(**{name: getattr(place_cfg, name) for name in PLACE_ONLY_FIELDS})
    if cfg != place_cfg:
        raise CheckpointError(
            f"{sources['pick']} and {sources['place']} have different model configs ({cfg.differing_fields(place_cfg)})"
        )
    if workspace != place_ws:
        raise CheckpointError(f"{sources['pick']} and {sources['place']} were trained over different workspaces")
    for half, meta in (("pick", pick_meta), ("place", place_meta)):
        other = "place" if half == "pick" else "pick"
        if meta.get("nets", "all") == other:
            raise CheckpointError(
                f"{sources[half]} comes from a run that trained only the {other} net: its {half} net is untrained"
            )
    model = _model_for_stored_weights(cfg)
    keys = model.half_keys()
    if model.place_clip is None:  # a frozen shared CLIP: both checkpoints must hold the same one
        differing = [
            k for k in model.state_dict() if k.startswith("clip.") and not torch.equal(pick_state[k], place_state[k])
        ]
        if differing:
            raise CheckpointError(
                f"{sources['pick']} and {sources['place']} hold different CLIP weights (e.g. {differing[0]})"
            )
    state = {k: pick_state[k] for k in keys["pick"] if k in pick_state}
    state.update({k: place_state[k] for k in keys["place"] if k in place_state})
    load_state(model, state, f"{sources['pick']} + {sources['place']}")
    policy = Policy(cfg, workspace, device="cpu", precision="fp32", model=model)
    policy.metadata = {
        "tasks": _joined_tasks([pick_meta, place_meta]),
        "nets": "all",
        "merged_from": {
            half: provenance(path, meta) for (half, path), meta in zip(sources.items(), (pick_meta, place_meta))
        },
    }
    return policy.save(out, weights=weights)


def average_checkpoints(paths: Sequence[str | Path], out: str | Path, weights: str = "fp32") -> Path:
    """A checkpoint whose weights are the mean of those of ``paths`` (one config, one workspace, one set of
    tensors): the last snapshots of a run, averaged, are a steadier net than any one of them, whose last
    steps' noise they average out. Integer tensors (batch-norm counters) are the last checkpoint's."""
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least two checkpoints, got {len(paths)}")
    cfg, workspace, meta, state = read_checkpoint(paths[0])
    keys = set(state)
    sums = {k: v.double() for k, v in state.items() if v.is_floating_point()}
    inputs = [meta]
    for path in paths[1:]:
        other_cfg, other_ws, meta, state = read_checkpoint(path)
        inputs.append(meta)
        if other_cfg != cfg:
            raise CheckpointError(
                f"{paths[0]} and {path} have different model configs ({cfg.differing_fields(other_cfg)})"
            )
        if other_ws != workspace:
            raise CheckpointError(f"{paths[0]} and {path} were trained over different workspaces")
        if set(state) != keys:
            raise CheckpointError(f"{paths[0]} and {path} hold different tensors")
        for k in sums:
            sums[k] += state[k].double()
    # ``state`` is the last checkpoint's: its integer tensors are kept
    state = {k: (sums[k] / len(paths)).float() if k in sums else v for k, v in state.items()}
    model = _model_for_stored_weights(cfg)
    load_state(model, state, f"the mean of {len(paths)} checkpoints")
    policy = Policy(cfg, workspace, device="cpu", precision="fp32", model=model)
    policy.metadata = _averaged_metadata(paths, inputs)
    return policy.save(out, weights=weights)


def _joined_tasks(inputs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The tasks recorded by checkpoints joined into one: in order, each once (the node picks a shipped model by
    them, so a merge or an average must keep every input's)."""
    return list(dict.fromkeys(t for meta in inputs for t in meta.get("tasks", [])))


def _averaged_metadata(paths: Sequence[str | Path], inputs: list[dict]) -> dict:
    """What an average of checkpoints was trained on: every input's tasks (the node picks a shipped model by
    them) and nets, and each input's own record."""
    tasks = _joined_tasks(inputs)
    nets = {meta.get("nets", "all") for meta in inputs}
    metadata: dict = {"tasks": tasks, "nets": nets.pop() if len(nets) == 1 else "all"}
    merged = [meta.get("merged_from") for meta in inputs]
    if merged[0] is not None and all(m == merged[0] for m in merged):
        metadata["merged_from"] = merged[0]
    metadata["averaged_from"] = [provenance(path, meta) for path, meta in zip(paths, inputs)]
    return metadata


# what a checkpoint records of the checkpoints it was made from (a fine-tune's start, a merge's halves, an
# average's inputs); a derived checkpoint copies its inputs' records, so its whole lineage stays in its config
LINEAGE_KEYS = ("init_from", "place_init_from", "merged_from", "averaged_from")


def lineage(meta: Mapping[str, Any]) -> dict:
    """A checkpoint's own record of the checkpoints it was made from (the ``LINEAGE_KEYS`` it holds)."""
    return {k: meta[k] for k in LINEAGE_KEYS if k in meta}


def provenance(path: str | Path, meta: Mapping[str, Any]) -> dict:
    """What a merge or an average records of one input: its path, step, tasks and nets, and the input's own
    lineage (so that a model made of merges of fine-tunes names every run behind it, not only the last paths)."""
    return {
        "path": str(path),
        "step": meta.get("step"),
        **{k: meta[k] for k in ("tasks", "nets") if k in meta},
        **lineage(meta),
    }
