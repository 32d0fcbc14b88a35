"""Task registry. Each module in this package defines task families and registers them with ``@register``;
modules are discovered automatically, so adding a family is adding one module."""

from __future__ import annotations

import importlib
import pkgutil

from cliport_ros.sim.tasks.base import SPLITS, Goal, Task

_FAMILIES: dict[str, type[Task]] = {}
_LOADED = False


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a Task family available under its ``family`` name."""
    if not cls.family or not cls.variants:
        raise ValueError(f"{cls.__name__} must set `family` and `variants`")
    if cls.family in _FAMILIES and _FAMILIES[cls.family] is not cls:
        raise ValueError(f"task family {cls.family!r} is registered twice")
    _FAMILIES[cls.family] = cls
    return cls


def _discover() -> None:
    global _LOADED
    if _LOADED:
        return
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("base",):
            importlib.import_module(f"{__name__}.{module.name}")
    _LOADED = True


def task_keys() -> list[str]:
    """Every task key, e.g. ``put-block-in-bowl-seen-colors``."""
    _discover()
    return sorted(f"{family}-{v}" for family, cls in _FAMILIES.items() for v in cls.variants)


# Named task groups (the paper's multi-task settings). The Google Scanned Objects tasks need the user's mesh
# folder, so a group without them is named too.
_PAPER_BUILTIN = (
    "align-rope",
    "assembling-kits-seq-seen-colors",
    "assembling-kits-seq-unseen-colors",
    "packing-boxes-pairs-seen-colors",
    "packing-boxes-pairs-unseen-colors",
    "packing-shapes",
    "put-block-in-bowl-seen-colors",
    "put-block-in-bowl-unseen-colors",
    "separating-piles-seen-colors",
    "separating-piles-unseen-colors",
    "stack-block-pyramid-seq-seen-colors",
    "stack-block-pyramid-seq-unseen-colors",
    "towers-of-hanoi-seq-seen-colors",
    "towers-of-hanoi-seq-unseen-colors",
)
_PAPER_GOOGLE = (
    "packing-seen-google-objects-seq",
    "packing-unseen-google-objects-seq",
    "packing-seen-google-objects-group",
    "packing-unseen-google-objects-group",
)
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    "multi-language-conditioned": _PAPER_BUILTIN + _PAPER_GOOGLE,
    "multi-language-conditioned-builtin": _PAPER_BUILTIN,
}


def expand_tasks(spec: str) -> tuple[str, ...]:
    """Task keys from a comma-separated list of task keys and group names (``TASK_GROUPS``), in order,
    without repeats; an unknown name is an error that lists what exists."""
    keys: list[str] = []
    for name in (part.strip() for part in spec.split(",")):
        if not name:
            continue
        for key in TASK_GROUPS.get(name, (name,)):
            if key not in task_keys():
                raise ValueError(
                    f"unknown task or group {key!r}; tasks: {', '.join(task_keys())}; groups: "
                    f"{', '.join(sorted(TASK_GROUPS))}"
                )
            if key not in keys:
                keys.append(key)
    if not keys:
        raise ValueError(f"no task named in {spec!r}")
    return tuple(keys)


def make_task(key: str) -> Task:
    """The Task for a key ``<family>-<variant>``."""
    _discover()
    for family, cls in _FAMILIES.items():
        for variant in cls.variants:
            if key == f"{family}-{variant}":
                return cls(variant)
    raise ValueError(f"unknown task {key!r}; available: {', '.join(task_keys())}")


__all__ = ["SPLITS", "TASK_GROUPS", "Goal", "Task", "expand_tasks", "make_task", "register", "task_keys"]
