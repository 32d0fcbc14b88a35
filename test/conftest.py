"""Shared fixtures. ROS tests use real rclpy nodes, each test with a fresh Context."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def fresh_ros_context() -> Iterator[Any]:
    """A fresh, initialised rclpy Context; at the end every node made in it is destroyed, then it is shut down.

    A node nobody destroyed keeps its DDS participant, and with it its topics and services, in the graph of
    every later test of the process, however its context ended: nine stale ``/cliport/propose`` servers of
    earlier tests once left a client's ``service_is_ready`` false for a minute. So the nodes a test leaves
    alive (a peer it made, a node a failed assertion skipped the destruction of) are destroyed here."""
    import rclpy
    from rclpy.node import Node

    context = rclpy.Context()
    rclpy.init(context=context)
    made: list[Node] = []
    original_init = Node.__init__

    def tracked_init(node: Node, *args: Any, **kwargs: Any) -> None:
        original_init(node, *args, **kwargs)
        if node.context is context:
            made.append(node)

    Node.__init__ = tracked_init  # subclasses reach it through super().__init__
    try:
        yield context
    finally:
        Node.__init__ = original_init
        for node in reversed(made):
            if _alive(node):
                node.destroy_node()
        rclpy.try_shutdown(context=context)


def _alive(node: Any) -> bool:
    """Whether ``node`` has not been destroyed (a destroyed node's handle raises InvalidHandle)."""
    from rclpy.exceptions import InvalidHandle

    try:
        with node.handle:
            return True
    except InvalidHandle:
        return False


@pytest.fixture
def ros_context():
    """A fresh, initialised rclpy Context (``fresh_ros_context``): its nodes are destroyed after the test."""
    pytest.importorskip("rclpy")
    with fresh_ros_context() as context:
        yield context


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
