"""Result codes and feedback stages of ExecutePickPlace, mirrored without ROS.

The values must equal the constants generated from action/ExecutePickPlace.action (a test checks it), so the
ROS-free core can return them and the node can copy them into the result unchanged.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    SUCCESS = 0
    INVALID_GOAL = 1
    OUT_OF_WORKSPACE = 2
    PLANNING_FAILED = 3
    EXECUTION_FAILED = 4
    GRASP_FAILED = 5
    RELEASE_FAILED = 6
    CANCELED = 7
    TIMEOUT = 8
    BUSY = 9
    INTERNAL_ERROR = 10


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
