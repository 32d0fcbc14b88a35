"""The decision loop without ROS: camera frames + an instruction -> a checked pick-and-place decision."""

from cliport_ros.agent.decider import (
    AgentConfig,
    CameraFrame,
    Decider,
    Decision,
    DecisionCode,
    DecisionError,
    quote_text,
    validate_instruction,
)

__all__ = [
    "AgentConfig",
    "CameraFrame",
    "Decider",
    "Decision",
    "DecisionCode",
    "DecisionError",
    "quote_text",
    "validate_instruction",
]
