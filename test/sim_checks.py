"""Checks shared by the per-family simulator tests."""

import numpy as np


def episode_snapshot(env, seed: int, split: str = "train") -> tuple:
    """What a seed decides: instruction, object poses and names, and the oracle's first action."""
    env.reset(seed, split)
    poses = sorted((b, tuple(np.round(env.scene.pose(b)[0], 6))) for b in env.scene.objects)
    names = sorted((b, o.extras.get("name", "")) for b, o in env.scene.objects.items())
    a = env.oracle()
    return env.instruction, poses, names, a.pick.position, a.place.position, a.place.orientation


def assert_same_seed_same_episode(env) -> None:
    """The same seed gives the same episode (after another one ran), another seed another scene."""
    first = episode_snapshot(env, 8)
    assert episode_snapshot(env, 8) == first
    assert episode_snapshot(env, 10)[1] != first[1]
