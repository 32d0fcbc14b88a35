"""``cliport import``: a checkpoint of the reference implementation's ``cliport`` agent -> our checkpoint folder.

The reference (github cliport/cliport) saves PyTorch Lightning checkpoints: a torch zip archive whose pickle
holds ``state_dict`` (1940 tensors: three CLIP RN50 copies, the pick, key and query nets) beside Lightning's
bookkeeping, including a pickled class object of Lightning's that we do not have. The file is read without
executing anything in it:

- the pickle is read by ``SafeUnpickler``: only an allow-list of names resolves (ordered dicts, torch's tensor
  rebuild functions and storage types, re-implemented here); every other global becomes an inert
  ``Placeholder`` that records its name, is never imported, and runs nothing when "called";
- tensor data is memory-mapped from the archive's uncompressed members, and the converted weights are
  streamed into ``model.safetensors`` one tensor at a time, so memory stays near the size of the weights.

The reference state dict maps 1:1 onto the ``reference`` layout (``reference_key_to_ours``): every tensor has
exactly one destination of the same shape except CLIP's unused attention pools. Three bit-identical CLIP copies
become one shared trunk; otherwise (a training run updates each copy's batch-norm statistics apart) each net
keeps its own (``clip_per_net``).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.model.config import OPENAI_ARCHS, ModelConfig
from cliport_ros.model.policy import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CONFIG_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    CLIPortModel,
)

# The reference agents `cliport import` converts (agent name -> its class in the reference).
SUPPORTED_AGENTS = {"cliport": "TwoStreamClipLingUNetLatTransporterAgent"}
# The three CLIP copies of the reference agent, by the net they belong to.
CLIP_PREFIXES = {
    "pick": "attention.attn_stream_two.clip_rn50.",
    "place": "transport.key_stream_two.clip_rn50.",
    "query": "transport.query_stream_two.clip_rn50.",
}
# Entries of the reference that the forward never reads (CLIP's attention pool): accepted and dropped.
UNUSED_MARKER = ".clip_rn50.visual.attnpool."

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "UntypedStorage": torch.uint8,
}
_SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


class ReferenceImportError(CheckpointError):
    """A file that ``cliport import`` cannot convert; the message says why and what is supported."""


# ------------------------------------------------------------------------------------------ safe unpickling
class Placeholder:
    """Stands for a global the pickle names but we do not trust: inert, never imported, runs nothing."""

    module = "?"
    name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args  # kept only for inspection

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<placeholder for {self.module}.{self.name}>"


def _placeholder(module: str, name: str) -> type:
    return type(f"Placeholder[{module}.{name}]", (Placeholder,), {"module": module, "name": name})


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


@dataclass
class _LazyStorage:
    """A storage of the archive: its bytes are memory-mapped when a tensor is made from it."""

    archive: _Archive
    key: str
    dtype: torch.dtype
    numel: int


def _rebuild_tensor_v2(
    storage: _LazyStorage,
    storage_offset: int,
    size: Iterable[int],
    stride: Iterable[int],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(storage, _LazyStorage):
        raise ReferenceImportError(f"a tensor in the checkpoint refers to {storage!r}, not to stored data")
    base = storage.archive.tensor(storage.key, storage.dtype, storage.numel)
    return base.as_strided(tuple(size), tuple(stride), int(storage_offset))


def _rebuild_parameter(data: torch.Tensor, requires_grad: bool = False, backward_hooks: Any = None) -> torch.Tensor:
    return data


class SafeUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals (re-implemented here); everything else becomes a ``Placeholder``."""

    ALLOWED: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file: Any, archive: _Archive) -> None:
        super().__init__(file)
        self.archive = archive
        self.placeholders: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        self.placeholders.add(f"{module}.{name}")
        return _placeholder(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ReferenceImportError(f"unsupported persistent reference in the checkpoint: {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise ReferenceImportError(f"unsupported storage type in the checkpoint: {storage_type!r}")
        return _LazyStorage(self.archive, str(key), storage_type.dtype, int(numel))


class _Archive:
    """A torch zip archive, memory-mapped; members are read in place (torch stores them uncompressed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ReferenceImportError(
                f"{path} is not a PyTorch checkpoint: not a torch.save zip archive ({exc}); the reference's "
                "checkpoints are .ckpt files written by PyTorch Lightning"
            ) from exc
        pkls = [n for n in self.zip.namelist() if n.endswith("/data.pkl")]
        if len(pkls) != 1:
            raise ReferenceImportError(f"{path} is a zip file but not a torch.save archive (no single */data.pkl)")
        self.root = pkls[0][: -len("data.pkl")]
        order = self.root + "byteorder"
        if order in self.zip.namelist() and self.zip.read(order).strip() != b"little":
            raise ReferenceImportError(f"{path} was written on a big-endian machine; only little-endian is supported")
        self._file = open(path, "rb")
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_COPY)

    def tensor(self, key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        name = f"{self.root}data/{key}"
        try:
            info = self.zip.getinfo(name)
        except KeyError as exc:
            raise ReferenceImportError(f"{self.path}: the archive has no member {name} for a tensor") from exc
        if info.compress_type != zipfile.ZIP_STORED:
            raise ReferenceImportError(f"{self.path}: member {name} is compressed; torch.save never compresses")
        header = self._map[info.header_offset : info.header_offset + 30]
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise ReferenceImportError(f"{self.path}: member {name} has a damaged local header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        offset = info.header_offset + 30 + name_len + extra_len
        itemsize = torch.empty((), dtype=dtype).element_size()
        if numel * itemsize > info.file_size or offset + info.file_size > len(self._map):
            raise ReferenceImportError(f"{self.path}: member {name} is shorter than its tensor (truncated file?)")
        if numel == 0:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(self._map, dtype=dtype, count=numel, offset=offset)

    def load(self) -> tuple[Any, set[str]]:
        with self.zip.open(self.root + "data.pkl") as f:
            unpickler = SafeUnpickler(f, self)
            try:
                obj = unpickler.load()
            except ReferenceImportError:
                raise
            except Exception as exc:  # a damaged pickle: say so, whatever the unpickler tripped on
                raise ReferenceImportError(f"{self.path}: the checkpoint's pickle cannot be read: {exc}") from exc
        return obj, unpickler.placeholders


def read_torch_archive(path: str | Path) -> tuple[Any, set[str]]:
    """The object a torch.save zip archive holds (tensors memory-mapped) and the globals left as placeholders."""
    file = Path(path)
    if not file.is_file():
        raise ReferenceImportError(f"checkpoint file {file} does not exist")
    return _Archive(file).load()


# ------------------------------------------------------------------------------------------ the mapping
def identify_agent(keys: Iterable[str]) -> str:
    """The reference agent whose state dict has these keys (its name in the reference's agents table)."""
    keys = set(keys)

    def has(fragment: str) -> bool:
        return any(fragment in k for k in keys)

    if has("attn_stream_one.") and has("attn_stream_two."):
        if has("attn_stream_two.clip_rn50."):
            if has("attn_stream_two.lat_fusion1.") and has("attn_stream_two.lang_proj1."):
                if has("attn_stream_two.gamma") or has("film"):
                    return "two_stream_clip_film_lingunet_lat_transporter"
                return "cliport"
            if has("attn_stream_two.lang_proj1."):
                return "two_stream_clip_lingunet_transporter"
            if has("attn_stream_two.lat_fusion1."):
                return "two_stream_clip_unet_lat_transporter"
            return "two_stream_clip_unet_transporter (or _woskip_)"
        return "two_stream_full_rn50_bert_* (an RN50-BERT variant)"
    if has("attention.attn_stream.") or has("transport.key_resnet."):
        if has("clip_rn50."):
            return "clip_lingunet_transporter / clip_unet_transporter (single stream)"
        return "transporter / transporter_lang (single stream)"
    return "unknown"


def reference_key_to_ours(key: str, clip_per_net: bool) -> str | None:
    """Our state-dict key for a reference ``cliport`` agent key; None for the unused attention pools."""
    if UNUSED_MARKER in key:
        return None
    if ".clip_rn50." in key:
        prefix, rest = key.split(".clip_rn50.", 1)
        return f"{prefix}.clip_rn50.clip.{rest}" if clip_per_net else f"clip.clip.{rest}"
    return key


def our_key_to_reference(key: str) -> list[str]:
    """The reference keys that map onto our ``key`` (three for a shared CLIP trunk's entries, else one)."""
    if key.startswith("clip.clip."):
        return [prefix + key[len("clip.clip.") :] for prefix in CLIP_PREFIXES.values()]
    return [key.replace(".clip_rn50.clip.", ".clip_rn50.", 1)]


def _expected_state(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Our state dict's keys, shapes and dtypes for ``cfg`` (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        model = CLIPortModel(cfg.replace(clip_weights="none"))
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def clip_copies_identical(state: Mapping[str, torch.Tensor]) -> tuple[bool, list[str]]:
    """Whether the three CLIP copies are bit-identical; else the pick copy's entries that differ."""
    pick = CLIP_PREFIXES["pick"]
    differing = []
    for key in (k for k in state if k.startswith(pick) and UNUSED_MARKER not in k):
        rest = key[len(pick) :]
        a = state[key]
        for prefix in (CLIP_PREFIXES["place"], CLIP_PREFIXES["query"]):
            b = state.get(prefix + rest)
            if b is None or b.shape != a.shape or b.dtype != a.dtype or not torch.equal(a, b):
                differing.append(rest)
                break
    return not differing, differing


@dataclass
class ImportReport:
    """What ``convert_reference_state`` found and did."""

    agent: str
    clip_per_net: bool
    tensors_in: int
    tensors_out: int
    dropped: list[str] = field(default_factory=list)
    clip_differing: list[str] = field(default_factory=list)


def convert_reference_state(
    state: Mapping[str, Any], base: ModelConfig | None = None
) -> tuple[ModelConfig, dict[str, torch.Tensor], ImportReport]:
    """The reference agent's state dict -> (our config, our state dict, report); clear errors otherwise."""
    if not isinstance(state, Mapping) or not state:
        raise ReferenceImportError("the checkpoint's state_dict is empty or not a mapping of tensors")
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ReferenceImportError(f"state_dict entries that are not tensors: {not_tensors[:5]}")
    agent = identify_agent(state)
    if agent not in SUPPORTED_AGENTS:
        raise ReferenceImportError(
            f"this checkpoint is of the reference's {agent!r} agent; `cliport import` supports "
            + ", ".join(f"{name!r} ({cls})" for name, cls in SUPPORTED_AGENTS.items())
        )
    identical, differing = clip_copies_identical(state)
    base = base or ModelConfig.named("paper")
    # the reference's CLIP is OpenAI's RN50, frozen; the weights themselves come from the file
    cfg = base.replace(
        clip_per_net=not identical,
        reference_resampling=True,
        clip_trainable=False,
        clip_weights="openai" if base.clip_arch in OPENAI_ARCHS else "none",
    )
    expected = _expected_state(cfg)
    ours: dict[str, torch.Tensor] = {}
    sources: dict[str, str] = {}
    dropped, unexpected, mismatched = [], [], []
    for key, value in state.items():
        target = reference_key_to_ours(key, cfg.clip_per_net)
        if target is None:
            dropped.append(key)
            continue
        if target not in expected:
            unexpected.append(key)
            continue
        if tuple(value.shape) != expected[target][0]:
            mismatched.append(f"{key}: file {tuple(value.shape)} vs network {expected[target][0]}")
            continue
        if target in ours:  # a shared trunk: the copies were checked identical above
            continue
        ours[target] = value
        sources[target] = key
    missing = sorted(set(expected) - set(ours))
    if unexpected or mismatched or missing:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {missing[:8]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {unexpected[:8]}")
        if mismatched:
            parts.append(f"{len(mismatched)} of the wrong shape: {mismatched[:8]}")
        raise ReferenceImportError(
            "the checkpoint's tensors do not fit the reference 'cliport' network: " + "; ".join(parts)
        )
    report = ImportReport(agent, cfg.clip_per_net, len(state), len(ours), dropped, differing)
    return cfg, ours, report


# ------------------------------------------------------------------------------------------ writing
def write_safetensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Stream ``tensors`` into a safetensors file, one tensor in memory at a time (same format as safetensors')."""
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    for key, t in tensors.items():
        if t.dtype not in _SAFETENSORS_DTYPES:
            raise ReferenceImportError(f"tensor {key} has dtype {t.dtype}, which safetensors cannot store")
        n = t.numel() * t.element_size()
        header[key] = {
            "dtype": _SAFETENSORS_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + n],
        }
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for t in tensors.values():
            flat = t.detach().to("cpu").contiguous().reshape(-1)
            if flat.numel():
                f.write(memoryview(flat.view(torch.uint8).numpy()))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def import_reference_checkpoint(
    ckpt: str | Path,
    out: str | Path,
    up_batchnorm_stats: str = "batch",
    workspace: Workspace | None = None,
    base: ModelConfig | None = None,
) -> tuple[Path, ImportReport]:
    """Convert a reference ``cliport`` checkpoint (.ckpt) into our checkpoint folder ``out``.

    ``up_batchnorm_stats``: ``batch`` (default) reproduces the paper's tables (the reference's eval.py mode);
    ``running`` is the usual inference convention (``agent.eval()``). ``base``: the network's sizes (default
    the ``paper`` config, the reference's; other sizes of the same layout serve tests).
    """
    source = Path(ckpt)
    obj, placeholders = read_torch_archive(source)
    if isinstance(obj, Mapping) and "state_dict" in obj:
        state = obj["state_dict"]
        info = {k: obj.get(k) for k in ("epoch", "global_step", "pytorch-lightning_version")}
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, info = obj, {}  # a bare state dict (agent.state_dict() saved alone)
    else:
        top = sorted(map(str, obj))[:10] if isinstance(obj, Mapping) else type(obj).__name__
        raise ReferenceImportError(
            f"{source} is a torch archive but not a Lightning checkpoint of a CLIPort agent: no 'state_dict' "
            f"(it holds {top})"
        )
    base = (base or ModelConfig.named("paper")).replace(up_batchnorm_stats=up_batchnorm_stats)
    cfg, tensors, report = convert_reference_state(state, base)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    ws = workspace if workspace is not None else Workspace()
    config = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": cfg.to_dict(),
        "workspace": ws.to_dict(),
        "clip_source": "imported",
        "weights": "as_imported",
        "metadata": {
            "imported_from": {
                "file": source.name,
                "sha256": _sha256(source),
                "bytes": source.stat().st_size,
                "agent": report.agent,
                "agent_class": SUPPORTED_AGENTS[report.agent],
                **{k: v for k, v in info.items() if isinstance(v, (int, str))},
                "globals_not_loaded": sorted(placeholders),
                "tensors": report.tensors_in,
                "dropped_unused": len(report.dropped),
                "clip_copies": "identical: one shared trunk"
                if not report.clip_per_net
                else f"differ in {len(report.clip_differing)} entries: one trunk per net",
            },
            "tasks": [],
            "nets": "all",
        },
    }
    tmp_w, tmp_c = folder / (WEIGHTS_FILE + ".tmp"), folder / (CONFIG_FILE + ".tmp")
    write_safetensors(tmp_w, tensors, {"format": CHECKPOINT_FORMAT})
    tmp_c.write_text(json.dumps(config, indent=2) + "\n")
    tmp_w.replace(folder / WEIGHTS_FILE)
    tmp_c.replace(folder / CONFIG_FILE)
    return folder, report
