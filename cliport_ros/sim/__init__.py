"""The simulator room: PyBullet tasks, robots (UR5 + suction, Panda), cameras, oracles, demos.

Importing this package does not import pybullet; ``SimEnvironment`` does when it is created.
"""

from cliport_ros.sim.environment import Observation, SimEnvironment, StepResult
from cliport_ros.sim.primitives import STAGES, PrimitiveConfig, PrimitiveResult
from cliport_ros.sim.rendering import CameraImage
from cliport_ros.sim.seeds import seed_for
from cliport_ros.sim.tasks import task_keys as list_tasks

__all__ = [
    "STAGES",
    "CameraImage",
    "Observation",
    "PrimitiveConfig",
    "PrimitiveResult",
    "SimEnvironment",
    "StepResult",
    "list_tasks",
    "seed_for",
]
