"""Soak the ROS loop: N episodes through `cliport sim --serve`, driven over ROS as a user drives it.

The system under test is a child process (`cliport sim --serve`: the simulation bridge and the CLIPort node
with the shipped model). This process resets episodes through /sim/reset_episode, across the built task
families in blocks of --block episodes, and plays up to --steps steps each, mixing the ways a user acts:
FollowInstruction goals (most steps), instructions on /cliport/instruction, goals cancelled while the arm
moves, and resets in the middle of an episode. It reports:

- stalls: a step that got no answer (result, or a status line for a topic instruction) within --stall-s;
- double executions: a single instruction after which the bridge counted more than one step;
- failures by cause (the node's result code and the first words of its reason);
- the child's RSS after the warm-up (--warmup episodes) and at the end, its open file descriptors, and the
  Fast DDS participant segments in /dev/shm before, during and after (a leak is one left after it exits);
- p50/p95 of instruction -> execution start (the goal's first EXECUTE feedback).

    .venv/bin/python benchmarks/soak.py --episodes 500 --out runs/soak/soak.jsonl

One JSON line per episode goes to --out as it ends (the run can be read while it goes), then a summary line
on stdout and in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

SHM = Path("/dev/shm")
PARTICIPANT_SEGMENT = re.compile(r"^fastrtps_[0-9a-f]{16}(_el)?$")
# The built families (the google-objects ones need generated meshes), seen and unseen colors.
TASKS = (
    "put-block-in-bowl-seen-colors",
    "stack-block-pyramid-seq-seen-colors",
    "towers-of-hanoi-seq-seen-colors",
    "packing-boxes-pairs-seen-colors",
    "assembling-kits-seq-seen-colors",
    "packing-shapes",
    "align-rope",
    "separating-piles-seen-colors",
    "put-block-in-bowl-unseen-colors",
    "stack-block-pyramid-seq-unseen-colors",
    "towers-of-hanoi-seq-unseen-colors",
    "packing-boxes-pairs-unseen-colors",
    "assembling-kits-seq-unseen-colors",
    "separating-piles-unseen-colors",
)


def segments() -> set[str]:
    return {p.name for p in SHM.iterdir() if PARTICIPANT_SEGMENT.match(p.name)} if SHM.is_dir() else set()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Driver:
    """The soak's ROS side: reset, goals, topic instructions, status."""

    def __init__(self, stall_s: float) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node

        from cliport_ros.action import FollowInstruction
        from cliport_ros.ros.client import CliportClient, wait_for

        self.FollowInstruction, self.wait = FollowInstruction, wait_for
        self.stall_s = stall_s
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node("soak_driver", context=self.context)
        self.client = CliportClient(self.node)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

    @property
    def task_status(self) -> Any:
        return self.client.task_status

    def wait_status(self, predicate: Any, timeout: float) -> Any:
        return self.client.wait_for_status(predicate, timeout)

    def reset(self, task: str, seed: int) -> tuple[bool, str]:
        self.client.wait_for_servers(30, simulation=True)  # discovery, the first time; the answer decides
        future = self.client.reset_episode(task, "test", seed)
        if not self.wait(future, self.stall_s):
            return False, "reset: no answer"
        res = future.result()
        if not res.success:
            return False, res.message
        ok = self.wait_status(lambda s: s.task == task and s.seed == seed and s.step == 0, 30) is not None
        return ok, res.instruction if ok else "reset: no status"

    def goal_step(self, instruction: str, cancel: bool) -> dict[str, Any]:
        """One FollowInstruction step; cancelled at its first EXECUTE feedback when ``cancel``."""
        t0 = time.monotonic()
        marks: dict[str, float] = {}
        box: dict[str, Any] = {}

        def on_feedback(feedback: Any) -> None:
            if feedback.stage == self.FollowInstruction.Feedback.EXECUTE and "execute" not in marks:
                marks["execute"] = time.monotonic()
                if cancel:
                    self.client.cancel(box["task"])

        box["task"] = task = self.client.follow(instruction, max_steps=1, execute=True, feedback=on_feedback)
        if not self.wait(task.done_future, self.stall_s):
            self.client.cancel(task)
            return {"stall": "goal not answered" if task.accepted() is None else "no result"}
        if not task.accepted():
            return {"code": "REJECTED", "message": "goal rejected"}
        result = task.result()
        from cliport_ros.agent import DecisionCode  # the same values as FollowInstruction.Result's codes

        code = (
            DecisionCode(result.error_code).name
            if result.error_code in DecisionCode._value2member_map_
            else str(result.error_code)
        )
        row = {"code": code, "message": result.message, "success": result.success, "seconds": time.monotonic() - t0}
        if "execute" in marks:
            row["to_execute_s"] = marks["execute"] - t0
        return row

    def topic_step(self, instruction: str) -> dict[str, Any]:
        """One instruction on the topic; answered by a line on /cliport/status."""
        seen = self.client.lines_heard
        t0 = time.monotonic()
        self.client.instruct(instruction)
        line = self.client.wait_for_line(seen, self.stall_s)
        if line is None:
            return {"stall": "no status line"}
        ok = "step(s) for" in line
        return {"code": "SUCCESS" if ok else "FAILED", "message": line, "success": ok, "seconds": time.monotonic() - t0}

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.spinner.join(timeout=5)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--steps", type=int, default=3, help="steps per episode at most (then the next reset)")
    parser.add_argument("--block", type=int, default=5, help="episodes per task before the next task")
    parser.add_argument("--warmup", type=int, default=20, help="episodes before the RSS baseline")
    parser.add_argument("--stall-s", type=float, default=60.0, help="a step unanswered this long is a stall")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/soak/soak.jsonl")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    driver = Driver(args.stall_s)  # first: its own participant's segments stay until this process exits
    shm_before = segments()
    child = subprocess.Popen(
        [sys.executable, "-m", "cliport_ros.cli", "sim", "--serve", "--device", args.device, "--task", TASKS[0]],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = ""
    while '"serving"' not in line:
        line = child.stdout.readline()
        if not line and child.poll() is not None:
            print(json.dumps({"error": "cliport sim --serve did not start"}))
            return 1
    try:
        return soak(args, out, child, shm_before, driver)
    finally:
        if child.poll() is None:  # the soak itself failed: the system under test must not outlive it
            child.kill()
            child.wait()


def soak(args: argparse.Namespace, out: Path, child: subprocess.Popen, shm_before: set[str], driver: Driver) -> int:
    counts: Counter = Counter()
    causes: Counter = Counter()
    latencies: list[float] = []
    stalls, doubles = [], []
    rss_warm = fds_warm = None
    t_start = time.monotonic()
    with out.open("w") as log:
        for k in range(args.episodes):
            task = TASKS[(k // args.block) % len(TASKS)]
            seed = 10001 + 2 * k
            ok, instruction = driver.reset(task, seed)
            row: dict[str, Any] = {"episode": k, "task": task, "seed": seed, "steps": []}
            if not ok:
                causes[f"reset: {instruction[:60]}"] += 1
                row["reset_error"] = instruction
            steps = args.steps if k % 13 != 5 else 1  # every 13th episode is reset after its first step
            for n in range(1, steps + 1 if ok else 1):
                before = driver.task_status.step if driver.task_status is not None else 0
                mode = "topic" if k % 7 == 3 else "cancel" if k % 11 == 4 and n == 1 else "goal"
                step = (
                    driver.topic_step(instruction)
                    if mode == "topic"
                    else driver.goal_step(instruction, mode == "cancel")
                )
                step["mode"] = mode
                counts[mode] += 1
                if "stall" in step:
                    stalls.append({"episode": k, "step": n, **step})
                    row["steps"].append(step)
                    break
                if "to_execute_s" in step:
                    latencies.append(step["to_execute_s"])
                if not step["success"]:
                    causes[f"{step['code']}: {' '.join(step['message'].split()[:6])}"] += 1
                # The bridge's count after this one instruction: never more than one step on.
                status = driver.wait_status(
                    lambda s, before=before: s.step >= before + 1 or s.done, 5.0 if step["success"] else 1.0
                )
                after = status.step if status is not None else driver.task_status.step
                if after > before + 1:
                    doubles.append({"episode": k, "step": n, "before": before, "after": after})
                step["bridge_steps"] = after - before
                row["steps"].append(step)
                if status is None and step["success"]:
                    stalls.append({"episode": k, "step": n, "stall": "no task status after a successful step"})
                    break
                if driver.task_status.done:
                    break
                instruction = driver.task_status.instruction
            row["score"] = float(driver.task_status.score) if driver.task_status is not None else 0.0
            log.write(json.dumps(row) + "\n")
            log.flush()
            if k + 1 == args.warmup:
                rss_warm, fds_warm = rss_mb(child.pid), open_fds(child.pid)
            if (k + 1) % 25 == 0:
                print(
                    json.dumps(
                        {
                            "episodes": k + 1,
                            "stalls": len(stalls),
                            "doubles": len(doubles),
                            "rss_mb": round(rss_mb(child.pid), 1),
                            "fds": open_fds(child.pid),
                            "minutes": round((time.monotonic() - t_start) / 60, 1),
                        }
                    ),
                    flush=True,
                )
        rss_end, fds_end = rss_mb(child.pid), open_fds(child.pid)
        shm_during = len(segments() - shm_before)
        t0 = time.monotonic()
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        exit_s = time.monotonic() - t0
        leaked = sorted(segments() - shm_before)
        driver.close()
        summary = {
            "summary": True,
            "episodes": args.episodes,
            "steps_per_episode": args.steps,
            "minutes": round((time.monotonic() - t_start) / 60, 1),
            "steps_by_mode": dict(counts),
            "stalls": len(stalls),
            "stall_list": stalls[:10],
            "double_executions": len(doubles),
            "double_list": doubles[:10],
            "failures_by_cause": dict(causes.most_common()),
            "rss_mb_after_warmup": round(rss_warm, 1) if rss_warm else None,
            "rss_mb_end": round(rss_end, 1),
            "rss_growth_after_warmup": round(rss_end / rss_warm - 1, 4) if rss_warm else None,
            "fds_after_warmup": fds_warm,
            "fds_end": fds_end,
            "shm_segments_while_running": shm_during,
            "shm_segments_leaked": leaked,
            "exit_s": round(exit_s, 2),
            "exit_code": child.returncode,
            "instruction_to_execution_s": {
                "p50": round(percentile(latencies, 50), 3),
                "p95": round(percentile(latencies, 95), 3),
                "n": len(latencies),
            },
        }
        log.write(json.dumps(summary) + "\n")
    print(json.dumps(summary), flush=True)
    return 0 if not stalls and not doubles and not leaked else 1


if __name__ == "__main__":
    sys.exit(main())
