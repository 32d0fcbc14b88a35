"""A scripted operator teaches the shipped model a task it fails at, through the console's own API, then the
model is fine-tuned on what was recorded and evaluated again.

The operator is the simulator's oracle (``/sim/oracle_action``) playing an operator's eyes: on each step it asks
the console for the policy's proposal (``POST /api/propose``), executes it as it is when it agrees with the
oracle's (pick within ``--pick-tolerance`` and place within ``--place-tolerance``), and otherwise executes the
oracle's pick and place as a correction (``POST /api/execute`` with ``correction``), exactly as clicks on the page
would. Each episode is then marked done with the simulator's score (``POST /api/episode``), or failed when the
episode did not reach 100.

    python benchmarks/operator_finetune.py collect --out runs/operator --episodes 100
    python benchmarks/operator_finetune.py finetune --out runs/operator --steps 2000
    python benchmarks/operator_finetune.py evaluate --out runs/operator --n 100

``collect`` runs `cliport sim --serve` on put-block-in-bowl-unseen-colors (val seeds: colours the shipped model
never saw in training) and `cliport console` in child processes, and resumes where its log ends. ``finetune``
trains the pick and the place half from the shipped model at once (one process and core each) on the recorded
episodes and merges them. ``evaluate`` runs `cliport eval` on the test split for the shipped and the fine-tuned
model. Each phase prints JSON lines; the figures are in docs/experiments.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

TASK = "put-block-in-bowl-unseen-colors"
SHIPPED = "checkpoints/tiny-put-block-in-bowl-seen-colors"
# The shipped model's config (its README): the fine-tune starts from every one of its weights.
MODEL_SET = [
    "--model-set",
    "lang_layers=8",
    "--model-set",
    "semantic_decoder=[64,32,32,16,16,16,16,16]",
    "--model-set",
    "clip_per_net=true",
]
MAX_STEPS = 6  # a put-block-in-bowl episode moves at most three blocks


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cliport_ros.cli", *args]


def start(args: list[str], key: str, timeout: float = 240.0) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if line.startswith("{") and key in json.loads(line):
            # keep draining stdout so the child never blocks on a full pipe
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, json.loads(line)
    process.kill()
    raise SystemExit(f"{' '.join(args)} did not start")


class Console:
    """The console's HTTP API, as the page calls it."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=60) as reply:
            return json.loads(reply.read())

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{path}: {exc.code} {json.loads(exc.read()).get('error')}") from exc


def collect(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from cliport_ros.geometry.workspace import Workspace
    from cliport_ros.srv import OracleAction

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "collect.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if len(done) >= args.episodes:
        print(json.dumps({"collected": len(done), "note": "already complete"}))
        return 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    first_seed = args.seed + 2 * len(done)
    sim, _ = start(
        cli("sim", "--serve", "--task", TASK, "--split", "val", "--seed", str(first_seed), "--device", "cpu",
            "--camera-rate", "2", "--checkpoint", args.checkpoint),
        "serving",
    )  # fmt: skip
    console_process, started = start(
        cli("console", "--port", str(port), "--record", str(out / "recorded")), "console", 60
    )
    console = Console(started["console"])
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("scripted_operator", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    oracle = node.create_client(OracleAction, "/sim/oracle_action")
    workspace = Workspace()
    try:
        if not oracle.wait_for_service(timeout_sec=60):
            raise SystemExit("no /sim/oracle_action")
        while not console.get("api/state")["cell"]:
            time.sleep(0.2)
        with log.open("a") as handle:
            for k in range(len(done), args.episodes):
                seed = args.seed + 2 * k
                t0 = time.monotonic()
                state = console.post("api/reset", {"seed": seed, "discard": True})
                row = {"episode": k, "seed": seed, "accepted": 0, "corrected": 0, "steps": 0}
                try:
                    state = play(console, oracle, workspace, state, row, args)
                except RuntimeError as exc:  # the console refused (and said why): the episode is not kept
                    row["error"] = str(exc)
                    state = console.get("api/state")
                    row["steps"] = 0
                score = float(state["cell"]["score"])
                outcome = "done" if score >= 99.9 else "failed"
                saved = console.post("api/episode", {"outcome": outcome, "score": score}) if row["steps"] else {}
                row.update(score=score, outcome=outcome, file=Path(saved.get("path", "")).name)
                row["seconds"] = round(time.monotonic() - t0, 2)
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                print(json.dumps(row), flush=True)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        for process in (console_process, sim):
            process.terminate()
            process.wait(timeout=60)
    return summarize(log)


def play(console: Console, oracle, workspace, state: dict, row: dict, args: argparse.Namespace) -> dict:
    """One episode's steps, each executed as proposed or corrected; the console's last state."""
    from cliport_ros.ros.client import wait_for
    from cliport_ros.srv import OracleAction

    while not state["cell"]["done"] and state["cell"]["step"] < MAX_STEPS:
        state = console.post("api/propose", {"instruction": state["cell"]["instruction"]})
        future = oracle.call_async(OracleAction.Request())
        if not wait_for(future, 60) or not future.result().success:
            row["error"] = "oracle: " + (future.result().message if future.done() else "no answer")
            break
        act = future.result().action
        proposal = state["proposal"]
        pick = (act.pick.position.x, act.pick.position.y)
        place = (act.place.position.x, act.place.position.y)
        agree = (
            math.dist(pick, proposal["pick"][:2]) <= args.pick_tolerance
            and math.dist(place, proposal["place"][:2]) <= args.place_tolerance
        )
        body: dict = {"observation_id": state["observation_id"]}
        if not agree:
            yaw = 2 * math.atan2(act.place.orientation.z, act.place.orientation.w)
            body["correction"] = {
                "pick": list(workspace.xyz_to_pixel((*pick, 0.0))),
                "place": list(workspace.xyz_to_pixel((*place, 0.0))),
                "rotation": math.degrees(yaw),
            }
        result = console.post("api/execute", body)
        row["accepted" if agree else "corrected"] += 1
        row["steps"] += 1
        state = result["state"]
    return state


def summarize(log: Path) -> int:
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    steps = sum(r["steps"] for r in rows)
    print(
        json.dumps(
            {
                "summary": True,
                "episodes": len(rows),
                "steps": steps,
                "accepted": sum(r["accepted"] for r in rows),
                "corrected": sum(r["corrected"] for r in rows),
                "episodes_done": sum(r["outcome"] == "done" for r in rows),
            }
        )
    )
    return 0


def finetune(args: argparse.Namespace) -> int:
    out = Path(args.out)
    # --mix FOLDER adds simulated demos of --mix-task (what the model was trained on), drawn as often as the
    # recorded task's steps, so that the fine-tune does not forget it
    tasks = ["--tasks", f"{TASK},{args.mix_task}", "--data", args.mix] if args.mix else ["--task", TASK]
    common = [
        *tasks, "--config", "tiny", *MODEL_SET, "--init-from", args.checkpoint,
        "--data", str(out / "recorded"), "--n-demos", str(args.n_demos), "--operator-weight", str(args.operator_weight),
        "--steps", str(args.steps), "--lr", str(args.lr), "--lr-schedule", "cosine", "--val-every", "0",
        "--threads", "1", "--no-progress", "--seed", "0",
    ]  # fmt: skip
    t0 = time.monotonic()
    halves = {
        "pick": subprocess.Popen(cli("train", *common, "--nets", "pick", "--out", str(out / f"ft-{args.name}-pick"))),
        "place": subprocess.Popen(
            cli(
                "train",
                *common,
                "--nets",
                "place",
                "--place-loss",
                "position",
                "--out",
                str(out / f"ft-{args.name}-place"),
            )
        ),
    }
    codes = {name: process.wait() for name, process in halves.items()}
    if any(codes.values()):
        print(json.dumps({"error": "training failed", "exit": codes}))
        return 1
    merged = out / args.name
    subprocess.run(
        cli("merge", "--pick", str(out / f"ft-{args.name}-pick" / "last"),
            "--place", str(out / f"ft-{args.name}-place" / "last"), "--out", str(merged), "--weights", "fp16"),
        check=True,
    )  # fmt: skip
    print(
        json.dumps({"finetuned": str(merged), "steps": args.steps, "minutes": round((time.monotonic() - t0) / 60, 1)})
    )
    return 0


def evaluate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    models = [("shipped", args.checkpoint)] + [(name, str(out / name)) for name in args.models.split(",")]
    for name, checkpoint in models:
        for task in args.tasks.split(","):
            result = out / f"eval-{name}-{task}.jsonl"
            if result.exists():
                print(result.read_text().strip().splitlines()[-1])
                continue
            done = subprocess.run(
                cli("eval", task, "--checkpoint", checkpoint, "--split", "test", "--n", str(args.n), "--device", "cpu"),
                capture_output=True,
                text=True,
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                print(json.dumps({"error": f"eval {name} {task}", "stderr": done.stderr[-2000:]}))
                return 1
            result.write_text("\n".join(lines) + "\n")
            print(json.dumps({"model": name, "task": task, **json.loads(lines[-1])}), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="phase", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", default="runs/operator")
    c.add_argument("--episodes", type=int, default=100)
    c.add_argument("--seed", type=int, default=1, help="first val seed (every other seed after it)")
    c.add_argument("--checkpoint", default=SHIPPED)
    # what an operator would accept: the pick on the block the oracle takes (a 4 cm block: up to its
    # half-diagonal away), the place in the bowl the oracle uses (inside its rim)
    c.add_argument("--pick-tolerance", type=float, default=0.03, help="metres (default 0.03)")
    c.add_argument("--place-tolerance", type=float, default=0.04, help="metres (default 0.04)")
    f = sub.add_parser("finetune")
    f.add_argument("--out", default="runs/operator")
    f.add_argument("--checkpoint", default=SHIPPED)
    f.add_argument("--steps", type=int, default=2000)
    f.add_argument("--lr", type=float, default=1e-4)
    f.add_argument("--operator-weight", type=float, default=3.0)
    f.add_argument("--n-demos", type=int, default=0, help="episodes per task (0: every recorded one)")
    f.add_argument("--mix", default="", help="a folder of simulated demos to mix in")
    f.add_argument("--mix-task", default="put-block-in-bowl-seen-colors")
    f.add_argument("--name", default="finetuned", help="the merged model's folder under --out")
    e = sub.add_parser("evaluate")
    e.add_argument("--out", default="runs/operator")
    e.add_argument("--checkpoint", default=SHIPPED)
    e.add_argument("--n", type=int, default=100)
    e.add_argument("--tasks", default=TASK, help="comma-separated")
    e.add_argument("--models", default="finetuned", help="comma-separated names of merged models under --out")
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return {"collect": collect, "finetune": finetune, "evaluate": evaluate}[args.phase](args)


if __name__ == "__main__":
    sys.exit(main())
