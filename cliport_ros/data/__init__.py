"""Demonstration data: the episode format (atomic writer, loader) and augmentation."""

from cliport_ros.data.episodes import (
    FORMAT_VERSION,
    Episode,
    EpisodeFormatError,
    Step,
    episode_filename,
    list_episodes,
    load_episode,
    write_episode,
)

__all__ = [
    "FORMAT_VERSION",
    "Episode",
    "EpisodeFormatError",
    "Step",
    "episode_filename",
    "list_episodes",
    "load_episode",
    "write_episode",
]
