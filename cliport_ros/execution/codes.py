"""Result codes and feedback stages of ExecutePickPlace, mirrored without ROS.

The values must equal the constants generated from action/ExecutePickPlace.action (a test checks it), so the
ROS-free core can return them and the node can copy them into the result unchanged.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    UNKNOWN = 0  # never set: an empty result reads as a failure
    SUCCESS = 1
    INVALID_GOAL = 2
    OUT_OF_WORKSPACE = 3
    PLANNING_FAILED = 4
    EXECUTION_FAILED = 5
    GRASP_FAILED = 6
    RELEASE_FAILED = 7
    CANCELED = 8
    TIMEOUT = 9
    BUSY = 10
    INTERNAL_ERROR = 11


class Stage(IntEnum):
    APPROACH = 1
    GRASP = 2
    LIFT = 3
    MOVE = 4
    RELEASE = 5
    RETREAT = 6

    @property
    def label(self) -> str:
        """The feedback's stage_name: approach, grasp, lift, move, release, retreat."""
        return self.name.lower()
