"""``cliport sim``: the simulated bringup in one process, no launch system needed.

The simulation bridge (SimNode) and the CLIPort node (CliportNode) run in one multi-threaded executor and
talk only through ROS topics and actions, exactly as the separate processes of launch/sim_bringup.launch.py
do. For each episode the bridge is reset through its service, issues each step's instruction on
``/cliport/instruction``, the CLIPort node decides and sends ExecutePickPlace, the bridge executes and
scores. One JSON line per episode, then a summary line. ``--serve`` keeps running and waits for
instructions on the topic instead (e.g. from ``ros2 topic pub``).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from cliport_ros.cli import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="put-block-in-bowl-seen-colors", help="task key (see `cliport tasks`)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--seed", type=int, default=None,
                        help="first episode's seed (default: the split's first seed, e.g. 10001 for test)")
    parser.add_argument("--episodes", type=int, default=1, help="episodes to play (ignored with --serve)")
    parser.add_argument("--checkpoint", default="", help="policy checkpoint folder (default: the shipped model)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--robot", default="ur5", choices=("ur5", "panda"))
    parser.add_argument("--renderer", default="auto", choices=("auto", "egl", "tiny"))
    parser.add_argument("--record", default="", help="folder for PNGs of the top-down view and heatmaps per step")
    parser.add_argument("--episode-timeout", type=float, default=600.0, help="seconds before an episode is abandoned")
    parser.add_argument("--serve", action="store_true", help="keep running; act on /cliport/instruction messages")


class Recorder:
    """Writes the CLIPort node's published images as PNGs: <dir>/ep<k>_step<n>_<kind>.png."""

    def __init__(self, node: Any, folder: Path) -> None:
        from sensor_msgs.msg import Image

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.episode, self.step, self.written = 0, 0, []
        for kind in ("top_down", "pick_heatmap", "place_heatmap"):
            node.create_subscription(Image, f"/cliport/{kind}", lambda msg, k=kind: self._save(k, msg), 10)

    def _save(self, kind: str, msg: Any) -> None:
        import cv2

        from cliport_ros.ros.images import colour_to_array

        if kind == "top_down":
            self.step += 1
        path = self.folder / f"ep{self.episode:03d}_step{self.step:02d}_{kind}.png"
        cv2.imwrite(str(path), cv2.cvtColor(colour_to_array(msg), cv2.COLOR_RGB2BGR))
        self.written.append(path)


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from cliport_ros.msg import TaskStatus
    from cliport_ros.perception.camera import load_camera_rig
    from cliport_ros.ros.cliport_node import CliportNode
    from cliport_ros.ros.sim_node import LATCHED, SimNode
    from cliport_ros.sim import seed_for
    from cliport_ros.srv import ResetEpisode

    if args.episodes < 1:
        print(json.dumps({"error": "--episodes must be >= 1"}))
        return 2
    context = rclpy.Context()
    rclpy.init(context=context)
    rig = load_camera_rig()
    first_seed = args.seed if args.seed is not None else seed_for(args.split, 0)
    # The policy (torch, open_clip) is loaded before the simulator: Mesa's EGL renderer and triton (imported
    # by torchvision through torch._dynamo) each bring an LLVM, and importing triton after EGL has loaded
    # crashes the process.
    from cliport_ros.sim.tasks import make_task

    try:
        primitive = make_task(args.task).primitive
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}))
        rclpy.try_shutdown(context=context)
        return 2
    agent = CliportNode(context=context, parameter_overrides=[
        Parameter("checkpoint", value=args.checkpoint), Parameter("device", value=args.device),
        Parameter("primitive", value=primitive),
        Parameter("camera_names", value=rig.names), Parameter("camera_namespaces", value=[f"/{n}" for n in rig.names]),
        Parameter("execute", value=True)])
    from rclpy.lifecycle import TransitionCallbackReturn

    if agent.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        print(json.dumps({"error": agent.last_error}))
        agent.destroy_node()
        rclpy.try_shutdown(context=context)
        return 1
    try:
        sim = SimNode(context=context, parameter_overrides=[
            Parameter("task", value=args.task), Parameter("split", value=args.split),
            Parameter("robot", value=args.robot), Parameter("renderer", value=args.renderer),
            # Episodes: images after every reset and step are enough. Serving: the cameras stream, so an
            # instruction can come at any time and still find images younger than max_image_age.
            Parameter("camera_rate", value=1.0 if args.serve else 0.0),
            Parameter("publish_instructions", value=not args.serve),
            Parameter("seed", value=first_seed if args.serve else -1)])
    except (ValueError, KeyError) as exc:
        print(json.dumps({"error": f"simulator: {exc}"}))
        agent.destroy_node()
        rclpy.try_shutdown(context=context)
        return 2
    agent.trigger_activate()
    driver = Node("cliport_sim_driver", context=context)
    recorder = Recorder(driver, Path(args.record)) if args.record else None
    status: dict[str, Any] = {}
    status_event = threading.Event()
    errors: list[str] = []

    def on_status(msg: TaskStatus) -> None:
        status["msg"] = msg
        status_event.set()

    driver.create_subscription(TaskStatus, "/sim/task_status", on_status, LATCHED)
    driver.create_subscription(String, "/cliport/status", lambda m: errors.append(m.data), 10)
    reset_client = driver.create_client(ResetEpisode, "/sim/reset_episode")
    executor = MultiThreadedExecutor(num_threads=6, context=context)
    for node in (sim, agent, driver):
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    results = []
    try:
        if args.serve:
            print(json.dumps({"serving": True, "task": args.task, "seed": first_seed,
                              "instruction_topic": "/cliport/instruction"}), flush=True)
            while rclpy.ok(context=context):
                time.sleep(0.5)
            return 0
        for k in range(args.episodes):
            seed = first_seed + 2 * k  # the paper's splits use every other seed
            if recorder:
                recorder.episode, recorder.step = k, 0
            t0 = time.monotonic()
            status_event.clear()
            status.pop("msg", None)
            future = reset_client.call_async(ResetEpisode.Request(task=args.task, split=args.split, seed=seed))
            done = threading.Event()
            future.add_done_callback(lambda _: done.set())
            if not done.wait(120) or not future.result().success:
                message = future.result().message if future.done() else "reset timed out"
                print(json.dumps({"episode": k, "seed": seed, "error": message}), flush=True)
                results.append({"score": 0.0, "success": False})
                continue
            deadline = t0 + args.episode_timeout
            final = None
            while time.monotonic() < deadline:
                status_event.wait(0.5)
                status_event.clear()
                msg = status.get("msg")
                if msg is not None and msg.seed == seed and msg.done:
                    final = msg
                    break
            msg = final or status.get("msg")
            row = {"episode": k, "task": args.task, "split": args.split, "seed": seed,
                   "score": round(float(msg.score), 2) if msg else 0.0, "steps": int(msg.step) if msg else 0,
                   "success": bool(final is not None and final.score >= 99.9),
                   "seconds": round(time.monotonic() - t0, 2)}
            if final is None:
                row["error"] = "episode timed out" + (f"; last node message: {errors[-1]}" if errors else "")
            results.append(row)
            print(json.dumps(row), flush=True)
        summary = {"summary": True, "task": args.task, "split": args.split, "episodes": len(results),
                   "mean_score": round(sum(r["score"] for r in results) / len(results), 2),
                   "success_rate": round(sum(r["success"] for r in results) / len(results), 4)}
        if recorder:
            summary["recorded"] = len(recorder.written)
            summary["record_dir"] = str(recorder.folder)
        print(json.dumps(summary), flush=True)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        # Order matters: no new work, then no spinning, then the simulator, then the nodes and the context.
        agent.stop_worker()
        executor.shutdown()
        spinner.join(timeout=10)
        sim.close()
        for node in (sim, agent, driver):
            node.destroy_node()
        rclpy.try_shutdown(context=context)


command = Command(add_arguments=add_arguments, run=run)
