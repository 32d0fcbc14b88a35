"""Episode seeds as the paper: train even from 0, validation odd from 1, test odd from 10001."""

from __future__ import annotations

SEED_BASES = {"train": 0, "val": 1, "test": 10001}


def seed_for(split: str, index: int) -> int:
    """Seed of the ``index``-th episode of a split."""
    if split not in SEED_BASES:
        raise ValueError(f"unknown split {split!r}; choose from {tuple(SEED_BASES)}")
    if not isinstance(index, int) or index < 0:
        raise ValueError(f"episode index must be a non-negative integer, got {index!r}")
    return SEED_BASES[split] + 2 * index


def seed_matches_split(seed: int, split: str) -> bool:
    """Whether ``seed`` is one of the split's seeds."""
    base = SEED_BASES[split]
    return seed >= base and (seed - base) % 2 == 0 and (split != "val" or seed < SEED_BASES["test"])


def index_for_seed(split: str, seed: int) -> int:
    """The episode index of a split's seed (the inverse of ``seed_for``); ValueError for another split's."""
    if split not in SEED_BASES:
        raise ValueError(f"unknown split {split!r}; choose from {tuple(SEED_BASES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not seed_matches_split(seed, split):
        first = SEED_BASES[split]
        raise ValueError(
            f"seed {seed!r} is not a {split} seed ({split} seeds are {first}, {first + 2}, {first + 4}, ...)"
        )
    return (seed - SEED_BASES[split]) // 2


def deprecated_option(command: str, old: str, new: str) -> str:
    """The deprecation message of an old option spelling (printed on stderr; the old spelling still works)."""
    return f"cliport {command}: {old} is deprecated and will be removed; use {new}"


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    return seed
