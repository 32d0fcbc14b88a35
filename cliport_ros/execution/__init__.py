"""ROS-free execution of one pick-and-place on a real cell: cell configuration, the waypoint plan with its
safety checks, and the stage machine that runs it on a motion backend and a gripper.

The ROS side (cliport_ros.ros.moveit_executor, moveit_backend, grippers) adapts MoveIt 2 and the gripper
drivers to the small Protocols defined here, so everything below can be tested without ROS or MoveIt.
"""

from cliport_ros.execution.cell import CellConfig, GripperConfig, SceneConfig
from cliport_ros.execution.codes import ErrorCode, Stage
from cliport_ros.execution.executor import (
    ExecutionResult,
    Gripper,
    MotionBackend,
    MotionOutcome,
    MotionStatus,
    PickPlaceExecutor,
)
from cliport_ros.execution.plan import PlanRejected, Waypoint, plan_pick_place

__all__ = [
    "CellConfig",
    "ErrorCode",
    "ExecutionResult",
    "Gripper",
    "GripperConfig",
    "MotionBackend",
    "MotionOutcome",
    "MotionStatus",
    "PickPlaceExecutor",
    "PlanRejected",
    "SceneConfig",
    "Stage",
    "Waypoint",
    "plan_pick_place",
]
