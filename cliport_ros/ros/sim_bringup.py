"""``cliport sim``: the simulated bringup in one process, no launch system needed.

The simulation bridge (SimNode) and the CLIPort node (CliportNode) run in one multi-threaded executor and
talk only through ROS topics and actions, exactly as the separate processes of launch/sim_bringup.launch.py
do. For each episode the driver resets the bridge through its service and, for each step, sends the task's
instruction as a FollowInstruction goal (one step, executed): the CLIPort node decides and sends
ExecutePickPlace, the bridge executes and scores. A refused or failed step ends the episode at once with the
node's reason. One JSON line per episode, then a summary line. ``--serve`` keeps running and waits for
instructions on ``/cliport/instruction`` instead (e.g. from ``ros2 topic pub``).

SIGINT and SIGTERM end it cleanly: the nodes are destroyed and the context shut down, so no shared-memory
segment is left behind.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from cliport_ros.cli import Command

#: Default --episode-timeout, seconds: an episode of the paper's tasks takes at most a few steps of seconds each.
EPISODE_TIMEOUT = 300.0
#: Seconds to wait for the bridge's TaskStatus after a step's result (it is published before the result).
STATUS_TIMEOUT = 30.0
#: How many of the node's status lines are kept for error reports.
KEPT_STATUS_LINES = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="put-block-in-bowl-seen-colors", help="task key (see `cliport tasks`)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="first episode's seed (default: the split's first seed, e.g. 10001 for test)",
    )
    parser.add_argument("--episodes", type=int, default=1, help="episodes to play (ignored with --serve)")
    parser.add_argument(
        "--checkpoint", default="", help="policy checkpoint folder (default: the shipped model for --task)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--robot", default="ur5", choices=("ur5", "panda"))
    parser.add_argument("--renderer", default="auto", choices=("auto", "egl", "tiny"))
    parser.add_argument("--record", default="", help="folder for PNGs of the top-down view and heatmaps per step")
    parser.add_argument(
        "--episode-timeout",
        type=float,
        default=EPISODE_TIMEOUT,
        help="seconds before an episode is abandoned (a failed step ends it at once)",
    )
    parser.add_argument("--serve", action="store_true", help="keep running; act on /cliport/instruction messages")
    parser.add_argument("--bag", default="", help="record cameras, instructions, decisions and executions to MCAP here")
    parser.add_argument(
        "--camera-rate", type=float, default=5.0, help="Hz the simulated cameras re-send the still scene (default 5)"
    )


class Recorder:
    """Writes the CLIPort node's step overlays (cliport/overlay: the maps on the view, the pick and place, the
    instruction and the step's outcome) as PNGs: <dir>/ep<k>_step<n>.png."""

    def __init__(self, node: Any, folder: Path) -> None:
        from sensor_msgs.msg import Image

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.episode, self.step, self.written = 0, 0, 0
        node.create_subscription(Image, "cliport/overlay", self._save, 10)

    def _save(self, msg: Any) -> None:
        import cv2

        from cliport_ros.ros.images import color_to_array

        self.step += 1
        path = self.folder / f"ep{self.episode:03d}_step{self.step:02d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(color_to_array(msg), cv2.COLOR_RGB2BGR))
        self.written += 1  # a count, not a list: --serve runs for days


def exit_on_signals() -> Any:
    """SIGTERM (and SIGINT) raise KeyboardInterrupt in the main thread, so ``run`` tears down in order (rclpy
    installs no handler for a context of our own, and SIGTERM's default would kill us without cleanup).
    Returns a function that puts the previous handlers back."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from cliport_ros.perception.camera import load_camera_rig
    from cliport_ros.ros.client import CliportClient, wait_for
    from cliport_ros.ros.cliport_node import CliportNode
    from cliport_ros.ros.sim_node import SimNode
    from cliport_ros.sim import seed_for

    if args.episodes < 1:
        print(json.dumps({"error": "--episodes must be >= 1"}))
        return 2
    context = rclpy.Context()
    rclpy.init(context=context)
    restore_signals = exit_on_signals()
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
        restore_signals()
        return 2
    agent = CliportNode(
        context=context,
        parameter_overrides=[
            Parameter("checkpoint", value=args.checkpoint),
            Parameter("task", value=args.task),
            Parameter("device", value=args.device),
            Parameter("primitive", value=primitive),
            Parameter("camera_names", value=rig.names),
            Parameter("camera_namespaces", value=list(rig.names)),
            Parameter("execute", value=True),
        ],
    )
    from rclpy.lifecycle import TransitionCallbackReturn

    if agent.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        print(json.dumps({"error": agent.last_error}))
        agent.destroy_node()
        rclpy.try_shutdown(context=context)
        restore_signals()
        return 1
    try:
        sim = SimNode(
            context=context,
            parameter_overrides=[
                Parameter("task", value=args.task),
                Parameter("split", value=args.split),
                Parameter("robot", value=args.robot),
                Parameter("renderer", value=args.renderer),
                # The driver sends each step's instruction as a goal; the node waits for images taken after it,
                # which the bridge streams (the still scene, re-stamped) at its default camera_rate.
                Parameter("publish_instructions", value=False),
                Parameter("seed", value=first_seed if args.serve else -1),
                Parameter("camera_rate", value=float(args.camera_rate)),
            ],
        )
    except (ValueError, KeyError) as exc:
        print(json.dumps({"error": f"simulator: {exc}"}))
        agent.destroy_node()
        rclpy.try_shutdown(context=context)
        restore_signals()
        return 2
    agent.trigger_activate()
    driver = Node("cliport_sim_driver", context=context)
    recorder = Recorder(driver, Path(args.record)) if args.record else None
    bag = None
    client = CliportClient(driver, keep_status_lines=KEPT_STATUS_LINES)
    executor = MultiThreadedExecutor(num_threads=6, context=context)
    for node in (sim, agent, driver):
        executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    results = []

    def wait_status(seed: int, step: int, timeout: float) -> Any:
        """The bridge's status for ``seed`` once it has counted ``step`` steps (or is done); None on timeout."""
        return client.wait_for_status(lambda msg: msg.seed == seed and (msg.step >= step or msg.done), timeout)

    def play(k: int, seed: int) -> dict[str, Any]:
        """One episode; the row that reports it."""
        t0 = time.monotonic()
        deadline = t0 + args.episode_timeout
        row: dict[str, Any] = {
            "episode": k,
            "task": args.task,
            "split": args.split,
            "seed": seed,
            "score": 0.0,
            "steps": 0,
            "success": False,
        }
        future = client.reset_episode(args.task, args.split, seed)
        if not wait_for(future, min(120.0, deadline - time.monotonic())) or not future.result().success:
            row["error"] = future.result().message if future.done() else "reset timed out"
            return row
        instruction = future.result().instruction
        msg = wait_status(seed, 0, STATUS_TIMEOUT)
        step = 0
        while msg is not None and not msg.done:
            step += 1
            task = client.follow(instruction, max_steps=1, execute=True)
            if not wait_for(task.done_future, deadline - time.monotonic()):
                client.cancel(task)
                row["error"] = (
                    "the CLIPort node did not answer the goal"
                    if task.accepted() is None
                    else f"episode timed out during step {step}"
                )
                break
            if not task.accepted():
                reports = client.status_lines
                row["error"] = "the CLIPort node rejected the goal" + (f": {reports[-1]}" if reports else "")
                break
            result = task.result()
            # The node numbers the steps of its one-step goal; the episode's step number is ours.
            reason = f"step {step}: {result.message.removeprefix('step 1: ')}"
            if not result.success and result.steps_taken == 0:
                # Refused (no images, bad instruction, outside the workspace...): the episode ends now, with
                # the node's reason, instead of waiting out the episode timeout.
                row["error"] = reason
                break
            # Executed. A motion that failed (a grasp on nothing) is a step of the episode, as in the paper's
            # evaluation: the bridge counted and scored it, and the episode goes on.
            msg = wait_status(seed, step, STATUS_TIMEOUT)
            if msg is None:
                row["error"] = reason if not result.success else f"no task status from the simulator after step {step}"
                break
            if not result.success:
                row.setdefault("failed_steps", []).append(reason)
            instruction = msg.instruction
        final = client.task_status
        if final is not None and final.seed == seed:
            row["score"], row["steps"] = round(float(final.score), 2), int(final.step)
            row["success"] = bool(final.done and final.score >= 99.9)
        row["seconds"] = round(time.monotonic() - t0, 2)
        return row

    try:
        if args.bag:
            import yaml

            from cliport_ros.ros.bag import BagRecorder

            try:
                bag = BagRecorder(
                    driver,
                    args.bag,
                    metadata={
                        "camera_rig": yaml.safe_dump(rig.to_dict()),
                        "workspace": json.dumps(agent.workspace.to_dict()),
                        "task": args.task,
                    },
                )
            except ValueError as exc:  # an existing bag is never overwritten
                print(json.dumps({"error": str(exc)}))
                return 2
        if args.serve:
            print(
                json.dumps(
                    {
                        "serving": True,
                        "task": args.task,
                        "seed": first_seed,
                        "instruction_topic": "/cliport/instruction",
                    }
                ),
                flush=True,
            )
            while rclpy.ok(context=context):
                time.sleep(0.5)
            return 0
        for k in range(args.episodes):
            seed = first_seed + 2 * k  # the paper's splits use every other seed
            if recorder:
                recorder.episode, recorder.step = k, 0
            row = play(k, seed)
            results.append(row)
            print(json.dumps(row), flush=True)
        summary = {
            "summary": True,
            "task": args.task,
            "split": args.split,
            "episodes": len(results),
            "mean_score": round(sum(r["score"] for r in results) / len(results), 2),
            "success_rate": round(sum(r["success"] for r in results) / len(results), 4),
            "errors": sum("error" in r for r in results),
        }
        if recorder:
            summary["recorded"] = recorder.written
            summary["record_dir"] = str(recorder.folder)
        if bag:
            # Messages still in flight when the last episode ends are the arm's last images: wait them out.
            time.sleep(0.5)
            summary["bag"] = str(bag.path)
            summary["bag_messages"] = sum(bag.close().values())
        print(json.dumps(summary), flush=True)
        return 0
    except KeyboardInterrupt as exc:
        return 143 if exc.args and exc.args[0] == "SIGTERM" else 130
    finally:
        # Order matters: no new work, then no spinning, then the simulator, then the nodes and the context.
        agent.stop_worker("cliport sim is exiting")
        sim.stop_executing()
        if bag:
            bag.close()
        executor.shutdown(timeout_sec=2.0)
        spinner.join(timeout=5)
        sim.close()
        for node in (sim, agent, driver):
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        restore_signals()


command = Command(add_arguments=add_arguments, run=run)
