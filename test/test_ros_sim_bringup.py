"""The composed simulated bringup (`cliport sim`) end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import spin_until
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cliport_ros.msg import PickPlace, TaskStatus
from cliport_ros.ros.sim_node import LATCHED

# Test seeds on which the shipped model (99 % success over 100 test episodes: see the README) completes the
# episode; `cliport eval put-block-in-bowl-seen-colors --checkpoint <shipped> --split test --n 10` lists them.
# Pinned so the test shows the whole ROS loop delivering a success; the model's rate is measured by eval.
SHIPPED_SUCCESS_SEEDS = [10007, 10009, 10011]
# One block, done in one step by the shipped model.
NAMED_BLOCK_SEED, NAMED_BLOCK_INSTRUCTION = 10009, "put the brown blocks in a yellow bowl"


def run_cli(*args, timeout=240):
    """Run ``cliport ARGS`` as a user does; returns (CompletedProcess, the JSON lines of its stdout)."""
    command = [sys.executable, "-X", "faulthandler", "-m", "cliport_ros.cli", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack: the report says where it hung
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        pytest.fail(f"cliport {' '.join(args)} hung for {timeout} s; its stacks:\n{stderr[-6000:]}")
    done = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return done, lines


@pytest.mark.slow
def test_episodes_run_through_ros_and_are_scored(random_checkpoint, tmp_path):
    done, lines = run_cli(
        "sim",
        "--checkpoint",
        str(random_checkpoint),
        "--device",
        "cpu",
        "--episodes",
        "2",
        "--split",
        "test",
        "--record",
        str(tmp_path / "rec"),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    episodes, summary = lines[:-1], lines[-1]
    assert [e["seed"] for e in episodes] == [10001, 10003]
    for e in episodes:
        assert e["task"] == "put-block-in-bowl-seen-colors" and e["steps"] >= 1 and 0 <= e["score"] <= 100
        assert "error" not in e, e
    assert summary["summary"] and summary["episodes"] == 2
    pngs = sorted(p.name for p in (tmp_path / "rec").iterdir())
    # One overlay per step (the maps on the view, the pick and place, the instruction and the outcome).
    assert "ep000_step01.png" in pngs and "ep001_step01.png" in pngs
    assert summary["recorded"] == len(pngs) == sum(e["steps"] for e in episodes)
    import cv2

    picture = cv2.imread(str(tmp_path / "rec" / "ep000_step01.png"))
    assert picture.shape[1] == 2 * 2 * 160 + 4 and picture.shape[0] > 2 * 320


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    done, lines = run_cli("sim", "--checkpoint", str(tmp_path / "missing"), "--device", "cpu")
    assert done.returncode == 1
    assert "configure failed" in lines[-1]["error"] and "missing" in lines[-1]["error"]


@pytest.mark.slow
def test_the_shipped_model_completes_episodes_through_ros():
    done, lines = run_cli(
        "sim", "--device", "cpu", "--episodes", str(len(SHIPPED_SUCCESS_SEEDS)), "--seed", str(SHIPPED_SUCCESS_SEEDS[0])
    )  # the default checkpoint: the shipped model
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    episodes, summary = lines[:-1], lines[-1]
    assert [e["seed"] for e in episodes] == SHIPPED_SUCCESS_SEEDS
    assert all(e["success"] and e["score"] == 100.0 for e in episodes), episodes
    assert summary["success_rate"] == 1.0


@pytest.mark.slow
def test_an_instruction_from_another_process_moves_the_named_block(ros_context):
    server = subprocess.Popen(
        [sys.executable, "-m", "cliport_ros.cli", "sim", "--serve", "--seed", str(NAMED_BLOCK_SEED), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 180
        line = ""
        while time.monotonic() < deadline and not line.startswith("{"):
            line = server.stdout.readline()
        assert json.loads(line)["serving"], line
        # This test process plays `ros2 topic pub /cliport/instruction std_msgs/msg/String "data: '...'"`.
        node = Node("topic_pub", context=ros_context)
        executor = SingleThreadedExecutor(context=ros_context)
        executor.add_node(node)
        statuses, decisions, frames, reports = [], [], [], []
        node.create_subscription(TaskStatus, "/sim/task_status", statuses.append, LATCHED)
        node.create_subscription(PickPlace, "/cliport/pick_place", decisions.append, 10)
        node.create_subscription(String, "/cliport/status", lambda m: reports.append(m.data), 10)
        node.create_subscription(Image, "/front/color/image_raw", frames.append, qos_profile_sensor_data)
        pub = node.create_publisher(String, "/cliport/instruction", 10)
        # As a user would: wait until the cameras stream (an instruction before any image is refused).
        assert spin_until(executor, lambda: pub.get_subscription_count() > 0 and statuses and len(frames) >= 2, 120)
        instruction = statuses[-1].instruction
        assert statuses[-1].step == 0
        pub.publish(String(data=instruction))
        assert spin_until(executor, lambda: statuses[-1].step == 1, 120), f"no step executed; node said: {reports}"
        assert decisions and decisions[0].instruction == instruction
        # The named block is in a bowl of the named color: the simulator scores it (its only block: 100).
        assert instruction == NAMED_BLOCK_INSTRUCTION
        assert statuses[-1].score == 100.0 and statuses[-1].done
        executor.shutdown()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_switching_tasks_through_the_reset_service_keeps_the_bridge_alive(ros_context):
    """A reset to another task builds a new world; with the EGL renderer, closing the old one after the new one
    was built crashed the process (SIGSEGV) at the new world's first render."""
    from cliport_ros.srv import ResetEpisode

    server = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "cliport_ros.cli", "sim", "--serve", "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        line = ""
        while '"serving"' not in line and server.poll() is None:
            line = server.stdout.readline()
        node = Node("task_switcher", context=ros_context)
        executor = SingleThreadedExecutor(context=ros_context)
        executor.add_node(node)
        client = node.create_client(ResetEpisode, "/sim/reset_episode")
        client.wait_for_service(timeout_sec=30)
        for task in ("stack-block-pyramid-seq-seen-colors", "put-block-in-bowl-seen-colors"):
            future = client.call_async(ResetEpisode.Request(task=task, split="test", seed=10001))
            assert spin_until(executor, lambda future=future: future.done() or server.poll() is not None, 120)
            assert server.poll() is None, f"cliport sim died ({server.returncode}) resetting to {task}"
            assert future.result().success and task in future.result().message
        executor.shutdown()
        node.destroy_node()
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
