"""Clean exit: `cliport sim` and the node executables end within 5 s of SIGINT or SIGTERM, in every state, and
destroy their DDS participants (no shared-memory segment of theirs is left in /dev/shm)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import spin_until
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from cliport_ros.action import FollowInstruction

EXIT_LIMIT_S = 5.0
SHM = Path("/dev/shm")
# Fast DDS's per-participant segments (its port segments are shared by design and outlive processes).
PARTICIPANT_SEGMENT = re.compile(r"^fastrtps_[0-9a-f]{16}(_el)?$")


def participant_segments() -> set[str]:
    return {p.name for p in SHM.iterdir() if PARTICIPANT_SEGMENT.match(p.name)} if SHM.is_dir() else set()


def start(args: list[str], ready: str) -> tuple[subprocess.Popen, set[str]]:
    before = participant_segments()
    proc = subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    deadline = time.monotonic() + 180
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if ready in line:
            return proc, before
    proc.kill()
    pytest.fail(f"{args} did not become ready: {''.join(seen)[-3000:]}")


def kill(proc: subprocess.Popen) -> None:
    """A process a failed test left running must not outlive it (it would serve topics to later tests)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def stop(proc: subprocess.Popen, sig: signal.Signals, before: set[str] | None) -> float:
    """Seconds from ``sig`` to the exit; with ``before``, also that no participant segment was left."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=EXIT_LIMIT_S + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"did not exit within {EXIT_LIMIT_S + 10} s of {sig.name}")
    elapsed = time.monotonic() - t0
    if before is not None:
        leaked = participant_segments() - before
        assert not leaked, f"left in /dev/shm after {sig.name}: {sorted(leaked)}"
    return elapsed


@pytest.fixture
def client(ros_context):
    node = Node("exit_test_client", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()


def serve(request, seed: int = 10009) -> tuple[subprocess.Popen, set[str]]:
    """`cliport sim --serve`, killed when the test ends whatever happens."""
    proc, before = start(
        ["-m", "cliport_ros.cli", "sim", "--serve", "--seed", str(seed), "--device", "cpu"], '"serving"'
    )
    request.addfinalizer(lambda: kill(proc))
    return proc, before


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cliport_sim_serving_exits_when_idle(sig, client, request):
    proc, before = serve(request)
    node, executor = client
    frames = []
    node.create_subscription(Image, "/front/color/image_raw", frames.append, qos_profile_sensor_data)
    assert spin_until(executor, lambda: len(frames) >= 1, 60)  # up and streaming
    assert stop(proc, sig, before) < EXIT_LIMIT_S
    assert proc.returncode == (130 if sig == signal.SIGINT else 143)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cliport_sim_exits_while_deciding_executing_and_with_goals_queued(sig, client, request):
    proc, before = serve(request)
    node, executor = client
    follow = ActionClient(node, FollowInstruction, "follow_instruction")
    follow.wait_for_server(timeout_sec=30)
    goals = [
        follow.send_goal_async(
            FollowInstruction.Goal(instruction="put the brown blocks in a yellow bowl", max_steps=5, execute=True)
        )
        for _ in range(4)
    ]
    assert spin_until(executor, lambda: all(g.done() for g in goals), 60)
    handles = [g.result() for g in goals]
    assert all(h.accepted for h in handles)
    results = [h.get_result_async() for h in handles]
    # The first goal is under way (perceiving, deciding or executing), three are queued behind it.
    spin_until(executor, lambda: False, 2.0)
    if all(r.done() for r in results):
        ended = [(r.result().status, r.result().result.error_code, r.result().result.message) for r in results]
        # a second server of the action in the graph (one a test left alive) would answer the goals too
        servers = [i.node_name for i in node.get_publishers_info_by_topic("/follow_instruction/_action/status")]
        pytest.fail(
            f"the four goals had all ended 2 s after their acceptance (status, code, message): {ended}; "
            f"servers of the action: {servers}"
        )
    assert stop(proc, sig, before) < EXIT_LIMIT_S


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cliport_episodes_exit_mid_episode(sig, request):
    before = participant_segments()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cliport_ros.cli", "sim", "--episodes", "20", "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    request.addfinalizer(lambda: kill(proc))
    line = ""
    while not line.startswith("{") and proc.poll() is None:
        line = proc.stdout.readline()  # until the first episode's line: the loop runs
    assert json.loads(line)["episode"] == 0, line
    assert stop(proc, sig, before) < EXIT_LIMIT_S


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_node_executables_exit_when_idle(sig):
    sim, before = start(
        ["-m", "cliport_ros.ros.sim_node", "--ros-args", "-p", "renderer:=tiny", "-p", "seed:=10001"], "ready:"
    )
    try:
        node, _ = start(["-m", "cliport_ros.ros.cliport_node", "--ros-args", "-p", "device:=cpu"], "active:")
        try:
            assert stop(node, sig, None) < EXIT_LIMIT_S
        finally:
            kill(node)
        assert stop(sim, sig, before) < EXIT_LIMIT_S  # neither left a segment
    finally:
        kill(sim)
