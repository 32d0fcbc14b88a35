"""The demonstration format: one compressed ``.npz`` per episode, written atomically.

File ``<out>/<task>-<split>-<seed:06d>.npz`` (``numpy.savez_compressed``, no pickles) holding, for T steps:

==================  =========================  ==================================================
key                 dtype, shape               meaning
==================  =========================  ==================================================
``format``          str                        ``"cliport_ros.episode"`` (foreign files are refused)
``version``         int64 ()                   format version, currently 2 (version 1 files are read too)
``meta``            str (JSON)                 task, split, seed, score (0-100), workspace fields, and
                                               ``info``: what else the writer knew (e.g. the console's
                                               outcome and operator score)
``color``          uint8 (T, rows, cols, 3)   fused top-down RGB before each step
``height``          float32 (T, rows, cols)    fused height (m above workspace.z_min) before each step
``instruction``     str (T,)                   the instruction at each step
``pick``            float64 (T, 7)             pick pose: x, y, z, qx, qy, qz, qw (base frame)
``place``           float64 (T, 7)             place pose; its yaw = object rotation relative to pick
``pick_pixel``      int64 (T, 2)               (row, column) of the pick in the top-down maps
``place_pixel``     int64 (T, 2)               (row, column) of the place
``reward``          float64 (T,)               score gained by each step, as a fraction (0-1)
``source``          str (T,)                   who chose the step: ``oracle`` (simulated demos),
                                               ``policy`` (a proposal an operator executed as it was),
                                               ``operator`` (an operator's correction or demonstration);
                                               absent in version 1 files, whose steps are all ``oracle``
==================  =========================  ==================================================

Writes go to a temporary file in the same folder, are fsync'ed, then ``os.replace``d into place, so a
killed writer never leaves a half episode under a final name (leftover ``.tmp`` files are ignored).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.types import Pose

FORMAT_MARKER = "cliport_ros.episode"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
#: Who chose a step (field ``source``).
SOURCES = ("oracle", "policy", "operator")
SUFFIX = ".npz"
_NAME = re.compile(r"^(?P<task>[a-z0-9-]+?)-(?P<split>train|val|test)-(?P<seed>\d{6,})\.npz$")


class EpisodeFormatError(ValueError):
    """A file that is not a readable episode of this format/version."""


@dataclass(frozen=True)
class Step:
    color: np.ndarray  # (rows, cols, 3) uint8
    height: np.ndarray  # (rows, cols) float32
    instruction: str
    pick: Pose
    place: Pose
    pick_pixel: tuple[int, int]
    place_pixel: tuple[int, int]
    reward: float
    source: str = "oracle"


@dataclass(frozen=True)
class Episode:
    task: str
    split: str
    seed: int
    score: float
    steps: tuple[Step, ...]
    workspace: Workspace = Workspace()
    info: Mapping[str, Any] = field(default_factory=dict)  # JSON-able extras, written into meta["info"]


def episode_filename(task: str, split: str, seed: int) -> str:
    return f"{task}-{split}-{int(seed):06d}{SUFFIX}"


def _pose_row(pose: Pose) -> list[float]:
    return [*pose.position, *pose.orientation]


def write_episode(episode: Episode, out_dir: str | Path) -> Path:
    """Write one episode atomically; returns its path."""
    if not episode.steps:
        raise ValueError("an episode needs at least one step")
    rows, cols = episode.workspace.shape
    for k, s in enumerate(episode.steps):
        if s.color.shape != (rows, cols, 3) or s.color.dtype != np.uint8:
            raise ValueError(f"step {k}: color must be uint8 {(rows, cols, 3)}, got {s.color.dtype} {s.color.shape}")
        if s.height.shape != (rows, cols):
            raise ValueError(f"step {k}: height must be {(rows, cols)}, got {s.height.shape}")
        if s.source not in SOURCES:
            raise ValueError(f"step {k}: source must be one of {SOURCES}, got {s.source!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / episode_filename(episode.task, episode.split, episode.seed)
    meta = {
        "task": episode.task,
        "split": episode.split,
        "seed": int(episode.seed),
        "score": float(episode.score),
        "workspace": episode.workspace.to_dict(),
        "info": dict(episode.info),
    }
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT_MARKER),
        "version": np.array(FORMAT_VERSION, dtype=np.int64),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
        "colour": np.stack([s.color for s in episode.steps]),
        "height": np.stack([s.height.astype(np.float32) for s in episode.steps]),
        "instruction": np.array([s.instruction for s in episode.steps], dtype=str),
        "pick": np.array([_pose_row(s.pick) for s in episode.steps], dtype=np.float64),
        "place": np.array([_pose_row(s.place) for s in episode.steps], dtype=np.float64),
        "pick_pixel": np.array([s.pick_pixel for s in episode.steps], dtype=np.int64),
        "place_pixel": np.array([s.place_pixel for s in episode.steps], dtype=np.int64),
        "reward": np.array([s.reward for s in episode.steps], dtype=np.float64),
        "source": np.array([s.source for s in episode.steps], dtype=str),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename itself durable
        fd = os.open(out, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


# The per-step arrays: dtype ("str": any numpy unicode string) and the shape of one step, where "rows" and
# "cols" stand for the workspace grid recorded in ``meta``. Checked on load, so that a damaged or crafted file
# is refused naming the field instead of failing later as an IndexError/TypeError inside training.
_STEP_FIELDS: dict[str, tuple[str, tuple[int | str, ...]]] = {
    # "colour": the field's name in format version 1 files, kept so they stay readable (identifiers say color).
    "colour": ("uint8", ("rows", "cols", 3)),
    "height": ("float32", ("rows", "cols")),
    "instruction": ("str", ()),
    "pick": ("float64", (7,)),
    "place": ("float64", (7,)),
    "pick_pixel": ("int64", (2,)),
    "place_pixel": ("int64", (2,)),
    "reward": ("float64", ()),
}
_FIELDS = ("format", "version", "meta", *_STEP_FIELDS)
_V2_STEP_FIELDS: dict[str, tuple[str, tuple[int | str, ...]]] = {**_STEP_FIELDS, "source": ("str", ())}


def _describe(array: np.ndarray) -> str:
    kind = "str" if array.dtype.kind == "U" else str(array.dtype)
    return f"{kind} {tuple(array.shape)}"


def _dtype_is(array: np.ndarray, dtype: str) -> bool:
    if dtype == "str":
        return array.dtype.kind == "U"
    expected = np.dtype(dtype)
    # kind and size, so that a file written on a machine of the other byte order still reads
    return array.dtype.kind == expected.kind and array.dtype.itemsize == expected.itemsize


def _scalar_string(path: Path, name: str, array: np.ndarray) -> str:
    if array.shape != () or array.dtype.kind != "U":
        raise EpisodeFormatError(f"{path}: field {name!r} is {_describe(array)}, expected str ()")
    return str(array)


def _read_meta(path: Path, array: np.ndarray) -> tuple[dict[str, Any], Workspace]:
    """The JSON of field ``meta``, its fields checked, and the workspace it records."""
    text = _scalar_string(path, "meta", array)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EpisodeFormatError(f"{path}: field 'meta' is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise EpisodeFormatError(f"{path}: field 'meta' is a JSON {type(meta).__name__}, expected a JSON object")
    types = {"task": (str,), "split": (str,), "seed": (int,), "score": (int, float), "workspace": (dict,)}
    if "info" in meta and not isinstance(meta["info"], dict):
        raise EpisodeFormatError(f"{path}: field 'meta' is invalid: 'info' must be a JSON object, got {meta['info']!r}")
    for key, allowed in types.items():
        value = meta.get(key)
        if not isinstance(value, allowed) or isinstance(value, bool):
            what = (
                "a JSON object of Workspace fields" if key == "workspace" else " or ".join(t.__name__ for t in allowed)
            )
            raise EpisodeFormatError(f"{path}: field 'meta' is invalid: {key!r} must be {what}, got {value!r}")
    try:
        workspace = Workspace.from_dict(meta["workspace"])
    except (TypeError, ValueError) as exc:
        raise EpisodeFormatError(f"{path}: field 'meta' is invalid: workspace: {exc}") from exc
    return meta, workspace


def _check_step_arrays(
    path: Path, arrays: dict[str, np.ndarray], workspace: Workspace, fields: dict[str, Any] = _STEP_FIELDS
) -> int:
    """Dtype and shape of every per-step array against the format table; returns the number of steps."""
    rows, cols = workspace.shape
    sizes = {"rows": rows, "cols": cols}
    for name, (dtype, step_shape) in fields.items():
        array = arrays[name]
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in step_shape)
        if not _dtype_is(array, dtype) or array.ndim != 1 + len(shape) or tuple(array.shape[1:]) != shape:
            expected = ", ".join(["T", *(str(d) for d in shape)]) + ("," if not shape else "")
            raise EpisodeFormatError(
                f"{path}: field {name!r} is {_describe(array)}, expected {dtype} ({expected}) with T the "
                "number of steps"
            )
    lengths = {name: len(arrays[name]) for name in fields}
    counts = list(lengths.values())
    n = max(set(counts), key=counts.count)  # the count most fields agree on; the odd ones are named
    for name, length in lengths.items():
        if length != n:
            agree = ", ".join(k for k, v in lengths.items() if v == n)
            raise EpisodeFormatError(f"{path}: field {name!r} has {length} steps, expected {n} (the steps of {agree})")
    if n == 0:
        raise EpisodeFormatError(f"{path}: the episode holds no steps, expected at least one")
    for name in ("pick", "place", "reward"):
        bad = np.flatnonzero(~np.isfinite(arrays[name]).reshape(n, -1).all(axis=1))
        if bad.size:
            raise EpisodeFormatError(f"{path}: field {name!r} holds a non-finite value at step {bad[0]}")
    for name in ("pick_pixel", "place_pixel"):
        pixels = arrays[name]
        outside = np.flatnonzero(
            (pixels[:, 0] < 0) | (pixels[:, 0] >= rows) | (pixels[:, 1] < 0) | (pixels[:, 1] >= cols)
        )
        if outside.size:
            k = int(outside[0])
            raise EpisodeFormatError(
                f"{path}: field {name!r} holds {pixels[k].tolist()} at step {k}, expected a (row, column) "
                f"inside the {rows} x {cols} grid"
            )
    return n


def _pose(path: Path, name: str, k: int, row: np.ndarray) -> Pose:
    try:
        return Pose(tuple(row[:3]), tuple(row[3:]))
    except ValueError as exc:
        raise EpisodeFormatError(f"{path}: field {name!r} at step {k}: {exc}") from exc


def load_episode(path: str | Path) -> Episode:
    """Read an episode; ``EpisodeFormatError`` (a ``ValueError``) for corrupt, truncated or foreign files,
    naming the field, what it holds and what the format expects. Never unpickles (``allow_pickle=False``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            if "format" not in names or str(data["format"]) != FORMAT_MARKER:
                raise EpisodeFormatError(f"{path}: not a cliport_ros episode (no '{FORMAT_MARKER}' format marker)")
            missing = [name for name in _FIELDS if name not in names]
            if missing:
                raise EpisodeFormatError(
                    f"{path}: field {missing[0]!r} is missing (an episode holds {', '.join(_FIELDS)})"
                )
            arrays = {name: data[name] for name in _FIELDS}
            if "source" in names:
                arrays["source"] = data["source"]
    except EpisodeFormatError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise EpisodeFormatError(f"{path}: corrupt or truncated episode file ({type(exc).__name__}: {exc})") from exc
    version = arrays["version"]
    if version.shape != () or version.dtype.kind not in "iu":
        raise EpisodeFormatError(f"{path}: field 'version' is {_describe(version)}, expected an integer ()")
    if int(version) not in READABLE_VERSIONS:
        raise EpisodeFormatError(
            f"{path}: episode format version {int(version)}, this code reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    meta, workspace = _read_meta(path, arrays["meta"])
    if int(version) >= 2 and "source" not in arrays:
        raise EpisodeFormatError(f"{path}: field 'source' is missing (a version 2 episode holds it)")
    n = _check_step_arrays(path, arrays, workspace, _V2_STEP_FIELDS if int(version) >= 2 else _STEP_FIELDS)
    if int(version) >= 2:
        sources = [str(v) for v in arrays["source"]]
        bad = [k for k, v in enumerate(sources) if v not in SOURCES]
        if bad:
            raise EpisodeFormatError(
                f"{path}: field 'source' holds {sources[bad[0]]!r} at step {bad[0]}, expected one of {SOURCES}"
            )
    else:
        sources = ["oracle"] * n
    color, height, instruction = arrays["colour"], arrays["height"], arrays["instruction"]
    pick, place, reward = arrays["pick"], arrays["place"], arrays["reward"]
    pick_pixel, place_pixel = arrays["pick_pixel"], arrays["place_pixel"]
    steps = tuple(
        Step(
            color[k],
            height[k],
            str(instruction[k]),
            _pose(path, "pick", k, pick[k]),
            _pose(path, "place", k, place[k]),
            (int(pick_pixel[k, 0]), int(pick_pixel[k, 1])),
            (int(place_pixel[k, 0]), int(place_pixel[k, 1])),
            float(reward[k]),
            sources[k],
        )
        for k in range(n)
    )
    return Episode(
        str(meta["task"]),
        str(meta["split"]),
        int(meta["seed"]),
        float(meta["score"]),
        steps,
        workspace,
        dict(meta.get("info", {})),
    )


def list_episodes(directory: str | Path, task: str | None = None, split: str | None = None) -> list[Path]:
    """Episode files in a folder (sorted by task, split, seed), optionally of one task/split."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if not m or not entry.is_file():
            continue
        if task is not None and m["task"] != task:
            continue
        if split is not None and m["split"] != split:
            continue
        found.append((m["task"], m["split"], int(m["seed"]), entry))
    return [e[3] for e in sorted(found)]


def episode_seed(path: str | Path) -> int:
    """Seed encoded in an episode's file name."""
    m = _NAME.match(Path(path).name)
    if not m:
        raise EpisodeFormatError(f"{path}: not an episode file name (<task>-<split>-<seed>.npz)")
    return int(m["seed"])
