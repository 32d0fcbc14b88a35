"""Where the package's data files live: ``config/`` and ``checkpoints/``.

Looked up, in order: an explicit environment variable (``CLIPORT_ROS_CONFIG_DIR``,
``CLIPORT_ROS_CHECKPOINT_DIR``); the ament share folder of a colcon install; the source checkout (the
development set-up); the copy that ``pip install .`` places inside the package (``cliport_ros/_data``).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _candidates(kind: str) -> list[Path]:
    env = os.environ.get(f"CLIPORT_ROS_{kind.upper().rstrip('S')}_DIR")
    found: list[Path] = []
    if env:
        found.append(Path(env))
    try:
        from ament_index_python.packages import get_package_share_directory

        found.append(Path(get_package_share_directory("cliport_ros")) / kind)
    except Exception:  # not a ROS install, or the package is not in the ament index
        pass
    found.append(_PACKAGE_DIR.parent / kind)
    found.append(_PACKAGE_DIR / "_data" / kind)
    return found


def _resolve(kind: str, name: str) -> Path:
    tried = []
    for folder in _candidates(kind):
        path = folder / name
        if path.exists():
            return path
        tried.append(str(path))
    raise FileNotFoundError(
        f"{kind[:-1] if kind.endswith('s') else kind} file {name!r} not found; looked in: " + ", ".join(tried)
    )


def config_path(name: str) -> Path:
    """Path of a file in the package's ``config/`` folder."""
    return _resolve("config", name)


def checkpoint_path(name: str) -> Path:
    """Path of a shipped checkpoint (a folder or file) in ``checkpoints/``."""
    return _resolve("checkpoints", name)


#: The model the simulated bringup and the CLIPort node use when no checkpoint is given and no shipped model was
#: trained on the task.
DEFAULT_CHECKPOINT = "tiny-put-block-in-bowl-seen-colors"


def shipped_checkpoints() -> dict[str, Path]:
    """Each task a shipped model was trained on -> that model's folder (from the ``tasks`` its config.json
    records; the first folder of the lookup order that has one wins)."""
    import json

    found: dict[str, Path] = {}
    for folder in _candidates("checkpoints"):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            try:
                tasks = json.loads((entry / "config.json").read_text()).get("metadata", {}).get("tasks", [])
            except (OSError, ValueError, AttributeError):
                continue  # not a checkpoint folder
            for task in tasks if isinstance(tasks, list) else []:
                found.setdefault(str(task), entry)
    return found


def shipped_checkpoint_for(task: str) -> tuple[Path, bool]:
    """The shipped model trained on ``task`` and True, or the default shipped model and False."""
    match = shipped_checkpoints().get(task) if task else None
    if match is not None:
        return match, True
    return checkpoint_path(DEFAULT_CHECKPOINT), False
