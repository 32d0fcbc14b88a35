"""Shared fixtures. ROS tests use real rclpy nodes, each test with a fresh Context."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never write to ~/.ros and never talk to another run (`make test` and .ci/run set these too).
os.environ.setdefault("ROS_LOG_DIR", str(REPO / "build" / "ros_log"))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
# Runs of the suite side by side (two checkouts, CI beside a developer) must not hear each other: without an
# explicit ROS_DOMAIN_ID, each pytest process takes one from its process id (valid ids: 0-101).
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 5))
os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))
Path(os.environ["ROS_LOG_DIR"]).mkdir(parents=True, exist_ok=True)
# rosidl's field checks on (off by default in Jazzy): a value of the wrong type assigned to a message field
# raises instead of being serialised as something else (an int8 constant in a float32 went out as 0.0).
# Set before any message module is imported; subprocesses inherit it.
os.environ["ROS_PYTHON_CHECK_FIELDS"] = "1"


@pytest.fixture
def ros_context():
    """A fresh, initialised rclpy Context; shut down after the test."""
    rclpy = pytest.importorskip("rclpy")
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


def spin_until(executor, predicate, timeout: float = 10.0) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout`` seconds pass."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    """A `tiny` policy with random weights, saved as a real checkpoint: drives the ROS loop, not the task."""
    import torch

    from cliport_ros.model import ModelConfig, Policy

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    Policy(ModelConfig.named("tiny"), device="cpu").save(path)
    return path
