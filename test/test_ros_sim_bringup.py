"""The composed simulated bringup (`cliport sim`) end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from cliport_ros.msg import PickPlace, TaskStatus
from cliport_ros.ros.sim_node import LATCHED
from conftest import spin_until


def run_cli(*args, timeout=600):
    done = subprocess.run([sys.executable, "-m", "cliport_ros.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done, lines


@pytest.mark.slow
def test_episodes_run_through_ros_and_are_scored(random_checkpoint, tmp_path):
    done, lines = run_cli("sim", "--checkpoint", str(random_checkpoint), "--device", "cpu", "--episodes", "2",
                          "--split", "test", "--record", str(tmp_path / "rec"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    episodes, summary = lines[:-1], lines[-1]
    assert [e["seed"] for e in episodes] == [10001, 10003]
    for e in episodes:
        assert e["task"] == "put-block-in-bowl-seen-colors" and e["steps"] >= 1 and 0 <= e["score"] <= 100
        assert "error" not in e, e
    assert summary["summary"] and summary["episodes"] == 2
    pngs = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert "ep000_step01_top_down.png" in pngs and "ep000_step01_pick_heatmap.png" in pngs
    assert summary["recorded"] == len(pngs) and len(pngs) % 3 == 0


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    done, lines = run_cli("sim", "--checkpoint", str(tmp_path / "missing"), "--device", "cpu", timeout=300)
    assert done.returncode == 1
    assert "configure failed" in lines[-1]["error"] and "missing" in lines[-1]["error"]


@pytest.mark.slow
def test_an_instruction_from_another_process_moves_the_robot(ros_context, random_checkpoint):
    server = subprocess.Popen([sys.executable, "-m", "cliport_ros.cli", "sim", "--serve", "--seed", "10001",
                               "--checkpoint", str(random_checkpoint), "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ))
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
        statuses, decisions = [], []
        node.create_subscription(TaskStatus, "/sim/task_status", statuses.append, LATCHED)
        node.create_subscription(PickPlace, "/cliport/pick_place", decisions.append, 10)
        pub = node.create_publisher(String, "/cliport/instruction", 10)
        assert spin_until(executor, lambda: pub.get_subscription_count() > 0 and statuses, 60)
        instruction = statuses[-1].instruction
        assert statuses[-1].step == 0
        pub.publish(String(data=instruction))
        assert spin_until(executor, lambda: statuses[-1].step == 1, 120), "the robot did not execute a step"
        assert decisions and decisions[0].instruction == instruction
        executor.shutdown()
    finally:
        server.terminate()
        server.wait(timeout=30)
