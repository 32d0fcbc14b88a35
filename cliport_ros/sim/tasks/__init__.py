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


def make_task(key: str) -> Task:
    """The Task for a key ``<family>-<variant>``."""
    _discover()
    for family, cls in _FAMILIES.items():
        for variant in cls.variants:
            if key == f"{family}-{variant}":
                return cls(variant)
    raise ValueError(f"unknown task {key!r}; available: {', '.join(task_keys())}")


__all__ = ["SPLITS", "Goal", "Task", "make_task", "register", "task_keys"]
