"""The demonstration format: one compressed ``.npz`` per episode, written atomically.

File ``<out>/<task>-<split>-<seed:06d>.npz`` (``numpy.savez_compressed``, no pickles) holding, for T steps:

==================  =========================  ==================================================
key                 dtype, shape               meaning
==================  =========================  ==================================================
``format``          str                        ``"cliport_ros.episode"`` (foreign files are refused)
``version``         int64 ()                   format version, currently 1
``meta``            str (JSON)                 task, split, seed, score (0-100), workspace fields
``colour``          uint8 (T, rows, cols, 3)   fused top-down RGB before each step
``height``          float32 (T, rows, cols)    fused height (m above workspace.z_min) before each step
``instruction``     str (T,)                   the instruction at each step
``pick``            float64 (T, 7)             pick pose: x, y, z, qx, qy, qz, qw (base frame)
``place``           float64 (T, 7)             place pose; its yaw = object rotation relative to pick
``pick_pixel``      int64 (T, 2)               (row, column) of the pick in the top-down maps
``place_pixel``     int64 (T, 2)               (row, column) of the place
``reward``          float64 (T,)               score gained by each step, as a fraction (0-1)
==================  =========================  ==================================================

Writes go to a temporary file in the same folder, are fsync'ed, then ``os.replace``d into place, so a
killed writer never leaves a half episode under a final name (leftover ``.tmp`` files are ignored).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.types import Pose

FORMAT_MARKER = "cliport_ros.episode"
FORMAT_VERSION = 1
SUFFIX = ".npz"
_NAME = re.compile(r"^(?P<task>[a-z0-9-]+?)-(?P<split>train|val|test)-(?P<seed>\d{6,})\.npz$")


class EpisodeFormatError(ValueError):
    """A file that is not a readable episode of this format/version."""


@dataclass(frozen=True)
class Step:
    colour: np.ndarray  # (rows, cols, 3) uint8
    height: np.ndarray  # (rows, cols) float32
    instruction: str
    pick: Pose
    place: Pose
    pick_pixel: tuple[int, int]
    place_pixel: tuple[int, int]
    reward: float


@dataclass(frozen=True)
class Episode:
    task: str
    split: str
    seed: int
    score: float
    steps: tuple[Step, ...]
    workspace: Workspace = Workspace()


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
        if s.colour.shape != (rows, cols, 3) or s.colour.dtype != np.uint8:
            raise ValueError(
                f"step {k}: colour must be uint8 {(rows, cols, 3)}, got {s.colour.dtype} {s.colour.shape}"
            )
        if s.height.shape != (rows, cols):
            raise ValueError(f"step {k}: height must be {(rows, cols)}, got {s.height.shape}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / episode_filename(episode.task, episode.split, episode.seed)
    meta = {
        "task": episode.task,
        "split": episode.split,
        "seed": int(episode.seed),
        "score": float(episode.score),
        "workspace": episode.workspace.to_dict(),
    }
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT_MARKER),
        "version": np.array(FORMAT_VERSION, dtype=np.int64),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
        "colour": np.stack([s.colour for s in episode.steps]),
        "height": np.stack([s.height.astype(np.float32) for s in episode.steps]),
        "instruction": np.array([s.instruction for s in episode.steps], dtype=str),
        "pick": np.array([_pose_row(s.pick) for s in episode.steps], dtype=np.float64),
        "place": np.array([_pose_row(s.place) for s in episode.steps], dtype=np.float64),
        "pick_pixel": np.array([s.pick_pixel for s in episode.steps], dtype=np.int64),
        "place_pixel": np.array([s.place_pixel for s in episode.steps], dtype=np.int64),
        "reward": np.array([s.reward for s in episode.steps], dtype=np.float64),
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


def load_episode(path: str | Path) -> Episode:
    """Read an episode; ``EpisodeFormatError`` for corrupt, truncated or foreign files."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            if "format" not in names or str(data["format"]) != FORMAT_MARKER:
                raise EpisodeFormatError(
                    f"{path}: not a cliport_ros episode (no '{FORMAT_MARKER}' format marker)"
                )
            version = int(data["version"]) if "version" in names else -1
            if version != FORMAT_VERSION:
                raise EpisodeFormatError(
                    f"{path}: episode format version {version}, this code reads version {FORMAT_VERSION}"
                )
            meta = json.loads(str(data["meta"]))
            workspace = Workspace.from_dict(meta["workspace"])
            colour, height = data["colour"], data["height"]
            instruction, pick, place = data["instruction"], data["pick"], data["place"]
            pick_pixel, place_pixel, reward = data["pick_pixel"], data["place_pixel"], data["reward"]
    except EpisodeFormatError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as exc:
        raise EpisodeFormatError(
            f"{path}: corrupt or truncated episode file ({type(exc).__name__}: {exc})"
        ) from exc
    n = len(reward)
    if not (len(colour) == len(height) == len(instruction) == len(pick) == len(place) == n):
        raise EpisodeFormatError(f"{path}: per-step arrays disagree on the number of steps")
    steps = tuple(
        Step(
            colour[k],
            height[k],
            str(instruction[k]),
            Pose(tuple(pick[k, :3]), tuple(pick[k, 3:])),
            Pose(tuple(place[k, :3]), tuple(place[k, 3:])),
            (int(pick_pixel[k, 0]), int(pick_pixel[k, 1])),
            (int(place_pixel[k, 0]), int(place_pixel[k, 1])),
            float(reward[k]),
        )
        for k in range(n)
    )
    return Episode(
        str(meta["task"]), str(meta["split"]), int(meta["seed"]), float(meta["score"]), steps, workspace
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
