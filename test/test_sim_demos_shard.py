"""`cliport demos --shard I/N`: jobs of one run share its seeds without overlap and fill one folder."""

from __future__ import annotations

import argparse

import pytest

from cliport_ros.data import list_episodes
from cliport_ros.data.episodes import episode_seed
from cliport_ros.sim.commands import _shard
from cliport_ros.sim.demos import generate_demos

TASK = "put-block-in-bowl-seen-colors"


def test_shards_split_the_runs_seeds_and_fill_one_folder(tmp_path):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    generate_demos(TASK, "train", 5, whole, progress=False)
    summaries = [generate_demos(TASK, "train", 5, sharded, progress=False, shard=(i, 2)) for i in (1, 0)]
    assert [(s["shard"], s["target"], s["episodes"]) for s in summaries] == [("1/2", 2, 2), ("0/2", 3, 3)]
    seeds = sorted(episode_seed(p) for p in list_episodes(sharded))
    # the oracle reaches full score on these seeds, so the shards hold exactly the whole run's episodes
    assert seeds == sorted(episode_seed(p) for p in list_episodes(whole)) == [0, 2, 4, 6, 8]
    # a shard run again finds its own episodes on disk and writes nothing, whatever the other shards wrote
    again = generate_demos(TASK, "train", 5, sharded, progress=False, shard=(1, 2))
    assert (again["written"], again["skipped_on_disk"], again["episodes"]) == (0, 2, 2)


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/3", "0/0"])
def test_bad_shards_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="--shard takes I/N"):
        _shard(text)
    assert _shard("3/4") == (3, 4)
