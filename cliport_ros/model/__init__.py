"""CLIPort's policy: config, the shared CLIP trunk, the pick and place (attention, transport) nets, Policy."""

from cliport_ros.model.clip_backbone import ClipWeightsUnavailable
from cliport_ros.model.config import ModelConfig
from cliport_ros.model.policy import CheckpointError, CLIPortModel, Policy, PolicyOutput

__all__ = [
    "CheckpointError",
    "ClipWeightsUnavailable",
    "CLIPortModel",
    "ModelConfig",
    "Policy",
    "PolicyOutput",
]
