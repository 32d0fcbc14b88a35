"""The operator console on a ROS graph: ``cliport console`` and ``ros2 run cliport_ros console_node``.

A plain node (``console_node``) reaches the cell as any client would: the CLIPort node's ``cliport/propose``
service for the view and the proposal, the arm's ``ExecutePickPlace`` action for what the operator chose,
``cliport/executions`` to say what was executed, and, on a simulated cell, ``sim/task_status`` and
``sim/reset_episode``. The web server (``cliport_ros.console.server``) runs on this process's asyncio loop; the
ROS executor spins on a thread beside it, and the two meet only through futures. The operator's computer needs
a browser and nothing else: by default the page is served on 127.0.0.1 only (see the README for reaching it
from another computer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from typing import Any

from cliport_ros.cli import Command
from cliport_ros.console.session import (
    CellStatus,
    ConsoleConfig,
    ConsoleError,
    ConsoleSession,
    ExecutionResult,
    Observation,
    Proposal,
)
from cliport_ros.ros.parameters import ParameterSpec

#: The console node's parameters: the one table (`cliport console` options map onto it; the docs show it).
CONSOLE_NODE_PARAMETERS = [
    ParameterSpec("host", "127.0.0.1", "address the web page is served on (0.0.0.0: every interface; see README)"),
    ParameterSpec("port", 8080, "TCP port of the web page", minimum=1, maximum=65535),
    ParameterSpec("record_dir", "recorded", "folder the episodes are written to (the dataset format)"),
    ParameterSpec("task", "", "task name of the recorded episodes; empty: the simulated cell's task, else cell"),
    ParameterSpec("split", "train", "split of the recorded episodes", choices=("train", "val", "test")),
    ParameterSpec("execute_action", "execute_pick_place", "the arm's ExecutePickPlace action"),
    ParameterSpec(
        "propose_timeout", 60.0, "seconds to wait for the CLIPort node's proposal", minimum=1.0, maximum=3600.0
    ),
    ParameterSpec(
        "execute_timeout", 300.0, "seconds before a running execution is cancelled", minimum=1.0, maximum=3600.0
    ),
    ParameterSpec("bag_dir", "", "folder for an MCAP recording of the cell's topics (empty: none)"),
]

#: Seconds the arm's action server has to accept or reject a goal.
GOAL_ANSWER_TIMEOUT = 30.0
#: ExecutePickPlace codes that mean the arm refused before any motion: such a step is not recorded.
_NOTHING_MOVED = (0, 2, 3, 10)  # UNKNOWN (no answer), INVALID_GOAL, OUT_OF_WORKSPACE, BUSY


def _bridge(loop: asyncio.AbstractEventLoop, future: Any) -> asyncio.Future:
    """An asyncio future on ``loop`` completed when the rclpy ``future`` is (from the executor's thread)."""
    out: asyncio.Future = loop.create_future()

    def transfer(done: Any) -> None:
        def settle() -> None:
            if out.done():
                return
            exc = done.exception()
            if exc is not None:
                out.set_exception(exc)
            else:
                out.set_result(done.result())

        loop.call_soon_threadsafe(settle)

    future.add_done_callback(transfer)
    return out


class RosCellLink:
    """``CellLink`` over ROS: services and actions of the cell's nodes, from a node spun on another thread."""

    def __init__(self, node: Any, loop: asyncio.AbstractEventLoop) -> None:
        from rclpy.action import ActionClient
        from rclpy.callback_groups import ReentrantCallbackGroup

        from cliport_ros.action import ExecutePickPlace
        from cliport_ros.msg import Execution, TaskStatus
        from cliport_ros.ros.sim_node import LATCHED
        from cliport_ros.srv import Propose, ResetEpisode

        self.node, self.loop = node, loop
        p = lambda name: node.get_parameter(name).value  # noqa: E731
        group = ReentrantCallbackGroup()
        self._propose = node.create_client(Propose, "cliport/propose", callback_group=group)
        self._reset = node.create_client(ResetEpisode, "sim/reset_episode", callback_group=group)
        self.action_name = p("execute_action")
        self._action = ActionClient(node, ExecutePickPlace, self.action_name, callback_group=group)
        self._executions = node.create_publisher(Execution, "cliport/executions", 10)
        node.create_subscription(TaskStatus, "sim/task_status", self._on_status, LATCHED, callback_group=group)
        self.propose_timeout = float(p("propose_timeout"))
        self.execute_timeout = float(p("execute_timeout"))
        self._status: CellStatus | None = None
        self._goal: Any = None  # the running goal's handle
        self.on_status: Any = None  # set by the session

    def _on_status(self, msg: Any) -> None:
        self._status = CellStatus(
            task=msg.task,
            split=msg.split,
            seed=int(msg.seed),
            instruction=msg.instruction,
            step=int(msg.step),
            score=float(msg.score),
            done=bool(msg.done),
        )
        if self.on_status is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.on_status)

    def status(self) -> CellStatus | None:
        return self._status

    def can_reset(self) -> bool:
        return self._status is not None and self._reset.service_is_ready()

    async def _status_where(self, predicate: Any, timeout: float) -> CellStatus | None:
        """The cell's status once ``predicate`` holds for it (it arrives on the executor's thread); None after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            status = self._status
            if status is not None and predicate(status):
                return status
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)

    async def _call(self, client: Any, request: Any, timeout: float, what: str) -> Any:
        future = client.call_async(request)
        try:
            return await asyncio.wait_for(_bridge(self.loop, future), timeout)
        except TimeoutError as exc:
            client.remove_pending_request(future)
            raise ConsoleError(
                f"{what}: no answer from {client.srv_name} within {timeout:.0f} s: is it running?", 504
            ) from exc

    async def propose(self, instruction: str, run_policy: bool) -> Observation:
        from cliport_ros.geometry.workspace import Workspace
        from cliport_ros.ros.conversions import pick_place_from_msg, stamp_to_nanoseconds
        from cliport_ros.ros.images import ImageError, color_to_array, float_image_to_array
        from cliport_ros.srv import Propose

        request = Propose.Request(instruction=instruction, run_policy=run_policy)
        reply = await self._call(self._propose, request, self.propose_timeout, "proposal")
        if not reply.success:
            raise ConsoleError(f"the CLIPort node refused (code {reply.error_code}): {reply.message}", 502)
        try:
            workspace = Workspace.from_dict(json.loads(reply.workspace))
            color = color_to_array(reply.color).copy()
            height = float_image_to_array(reply.height).copy()
            proposal = None
            if run_policy:
                proposal = Proposal(
                    pick_place=pick_place_from_msg(reply.proposal),
                    pick_pixel=(int(reply.pick_pixel[0]), int(reply.pick_pixel[1])),
                    place_pixel=(int(reply.place_pixel[0]), int(reply.place_pixel[1])),
                    place_rotation=float(reply.place_rotation),
                    pick_heatmap=float_image_to_array(reply.pick_heatmap).copy(),
                    place_heatmap=float_image_to_array(reply.place_heatmap).copy(),
                )
        except (ImageError, ValueError) as exc:
            raise ConsoleError(f"the CLIPort node's proposal is malformed: {exc}", 502) from exc
        return Observation(
            color, height, workspace, stamp_to_nanoseconds(reply.color.header.stamp), instruction, proposal
        )

    async def execute(self, action: Any, source: str) -> ExecutionResult:
        from std_msgs.msg import Header

        from cliport_ros.action import ExecutePickPlace
        from cliport_ros.msg import Execution
        from cliport_ros.ros.conversions import pick_place_to_msg

        msg = pick_place_to_msg(action, self.node.get_clock().now().to_msg())
        before = self._status
        sent = self._action.send_goal_async(ExecutePickPlace.Goal(pick_place=msg))
        try:
            handle = await asyncio.wait_for(asyncio.shield(_bridge(self.loop, sent)), GOAL_ANSWER_TIMEOUT)
        except TimeoutError:
            # Given up on: should the arm still accept it later, it is cancelled at once and never runs unseen.
            sent.add_done_callback(lambda f: f.result().accepted and f.result().cancel_goal_async())
            return ExecutionResult(
                False,
                ExecutePickPlace.Result.UNKNOWN,
                f"the arm's action '{self.action_name}' did not answer the goal within "
                f"{GOAL_ANSWER_TIMEOUT:.0f} s: is it running? Nothing was recorded",
                moved=False,
            )
        if not handle.accepted:
            return ExecutionResult(
                False, ExecutePickPlace.Result.BUSY, "the arm rejected the goal (busy?)", moved=False
            )
        self._goal = handle
        try:
            response = await asyncio.wait_for(_bridge(self.loop, handle.get_result_async()), self.execute_timeout)
        except TimeoutError:
            await _bridge(self.loop, handle.cancel_goal_async())
            response = await asyncio.wait_for(_bridge(self.loop, handle.get_result_async()), 30.0)
        finally:
            self._goal = None
        res = response.result
        code = int(res.error_code)
        result = ExecutionResult(
            success=bool(res.success) and code == ExecutePickPlace.Result.SUCCESS,
            error_code=code,
            message=res.message or "no reason given",
            moved=code not in _NOTHING_MOVED,
        )
        self._executions.publish(
            Execution(
                header=Header(stamp=self.node.get_clock().now().to_msg(), frame_id=msg.header.frame_id),
                pick_place=msg,
                source=source,
                success=result.success,
                error_code=code,
                message=result.message,
            )
        )
        if before is not None and result.moved:
            # The simulated cell counts the step before it answers; wait for that count to arrive here.
            await self._status_where(lambda now: now.seed != before.seed or now.step > before.step, 5.0)
        return result

    async def stop(self) -> bool:
        handle = self._goal
        if handle is None:
            return False
        await asyncio.wait_for(_bridge(self.loop, handle.cancel_goal_async()), 10.0)
        return True

    async def reset(self, seed: int | None) -> CellStatus:
        from cliport_ros.sim import seed_for
        from cliport_ros.srv import ResetEpisode

        current = self._status
        if current is None:
            raise ConsoleError("no simulated cell reports its episode (sim/task_status)", 409)
        if seed is None:
            seed = current.seed + 2 if current.seed >= 0 else seed_for(current.split, 0)
        request = ResetEpisode.Request(task="", split="", seed=int(seed))
        reply = await self._call(self._reset, request, 120.0, "reset")
        if not reply.success:
            raise ConsoleError(f"the simulator refused the reset: {reply.message}", 502)
        status = await self._status_where(lambda now: now.seed == seed and now.step == 0, 10.0)
        if status is None:
            raise ConsoleError(f"the simulator did not report episode seed {seed} after the reset", 504)
        return status


def make_console_node(context: Any = None, parameter_overrides: list[Any] | None = None, namespace: str | None = None):
    """The console's ROS node with its parameters declared."""
    from rclpy.node import Node

    from cliport_ros.ros.parameters import declare

    node = Node("console_node", context=context, namespace=namespace, parameter_overrides=parameter_overrides or [])
    declare(node, CONSOLE_NODE_PARAMETERS)
    return node


def session_config(node: Any) -> ConsoleConfig:
    p = lambda name: node.get_parameter(name).value  # noqa: E731
    try:
        return ConsoleConfig(record_dir=p("record_dir"), task=p("task"), split=p("split"))
    except ValueError as exc:
        raise ValueError(f"parameter {exc}") from exc


def serve(node: Any, executor: Any, ready: Any = None, stop_event: threading.Event | None = None) -> int:
    """Run the web console for ``node`` (already added to a spinning ``executor``) until stopped."""
    from aiohttp import web

    from cliport_ros.console.server import make_app

    config = session_config(node)
    host, port = node.get_parameter("host").value, int(node.get_parameter("port").value)
    stop_event = stop_event or threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        link = RosCellLink(node, loop)
        session = ConsoleSession(link, config)
        runner = web.AppRunner(make_app(session), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        url = f"http://{host}:{port}/"
        node.get_logger().info(f"console on {url}, recording into {config.record_dir}")
        print(json.dumps({"console": url, "record_dir": config.record_dir}), flush=True)
        if ready is not None:
            ready(url)
        try:
            while not stop_event.is_set():
                await asyncio.sleep(0.2)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return 0


def _run(node_args: list[str] | None, overrides: list[Any]) -> int:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from cliport_ros.ros.node_main import PARAMETER_ERRORS
    from cliport_ros.ros.sim_bringup import exit_on_signals

    context = rclpy.Context()
    rclpy.init(args=node_args, context=context)
    restore = exit_on_signals()
    node = bag = None
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    spinner = None
    try:
        try:
            node = make_console_node(context=context, parameter_overrides=overrides)
            session_config(node)
        except (ValueError, *PARAMETER_ERRORS) as exc:
            print(f"console: {exc}", file=sys.stderr)
            return 2
        if node.get_parameter("bag_dir").value:
            from cliport_ros.ros.bag import BagRecorder

            bag = BagRecorder(node, node.get_parameter("bag_dir").value)
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        try:
            return serve(node, executor)
        except OSError as exc:  # the port is taken, the address is not ours
            where = f"{node.get_parameter('host').value}:{node.get_parameter('port').value}"
            print(f"console: cannot serve on {where}: {exc}", file=sys.stderr)
            return 1
    except KeyboardInterrupt as exc:
        return 143 if exc.args and exc.args[0] == "SIGTERM" else 130
    finally:
        if bag is not None:
            bag.close()
        executor.shutdown(timeout_sec=2.0)
        if spinner is not None:
            spinner.join(timeout=5)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        restore()


def main(argv: list[str] | None = None) -> int:
    """``ros2 run cliport_ros console_node --ros-args -p port:=8080``."""
    return _run(argv if argv is not None else sys.argv, [])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="TCP port of the page (default 8080)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this computer only)"
    )
    parser.add_argument("--record", default="recorded", help="folder for the recorded episodes (default recorded)")
    parser.add_argument("--task", default="", help="task name of recorded episodes (default: the simulated task)")
    parser.add_argument("--namespace", default="", help="the cell's ROS namespace")
    parser.add_argument("--bag", default="", help="also record the cell's topics to MCAP in this folder")


def run(args: argparse.Namespace) -> int:
    from rclpy.parameter import Parameter

    overrides = [
        Parameter("host", value=args.host),
        Parameter("port", value=int(args.port)),
        Parameter("record_dir", value=args.record),
        Parameter("task", value=args.task),
        Parameter("bag_dir", value=args.bag),
    ]
    node_args = ["cliport_console"]
    if args.namespace:
        node_args += ["--ros-args", "-r", f"__ns:=/{args.namespace.strip('/')}"]
    return _run(node_args, overrides)


command = Command(add_arguments=add_arguments, run=run)

if __name__ == "__main__":
    sys.exit(main())
