"""``CliportClient``: one cell's CLIPort node (and, in simulation, its bridge) from another program, in the spirit
of nav2_simple_commander but PEP 8 and without spinning inside library calls.

    client = CliportClient(node, namespace="cell_a")       # the caller's node; spin it (an executor thread)
    task = client.follow("put the red block in the green bowl", max_steps=3, feedback=print)
    if wait_for(task.done_future, 120): print(task.result().message)
    client.cancel(task)                                     # a Future of the cancel's answer

Every call returns at once: a ``Future`` or a ``FollowTask`` whose futures complete while the caller's executor
spins the node. The only waiting is ``wait_for``, ``wait_for_status`` and ``wait_until_active``, which block the
calling thread on events that the executor's callbacks set (so they need the executor spinning in another
thread, as `cliport sim` and the benchmarks do).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import String

from cliport_ros.action import FollowInstruction
from cliport_ros.msg import TaskStatus
from cliport_ros.srv import ResetEpisode

# How long ``wait_until_active`` waits for one GetState answer before asking again.
STATE_ASK_INTERVAL_S = 1.0


def wait_for(future: Any, timeout: float) -> bool:
    """Block the calling thread until ``future`` is done or ``timeout`` s pass; whether it is done. Another
    thread must spin the node the future belongs to."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    return done.wait(max(0.0, timeout))


def _name(namespace: str, relative: str) -> str:
    ns = namespace.strip("/")
    return f"/{ns}/{relative}" if ns else f"/{relative}"


class FollowTask:
    """One FollowInstruction goal: ``done_future`` completes with the result (or with the refusal)."""

    def __init__(self) -> None:
        self.goal_future: Future | None = None
        self.handle: Any = None
        self.done_future = Future()
        self.feedback: list[Any] = []

    def accepted(self) -> bool | None:
        """None until the node answered the goal."""
        return None if self.handle is None else bool(self.handle.accepted)

    def result(self) -> Any:
        """The FollowInstruction result (error_code, message, steps), or None before it is done."""
        return self.done_future.result() if self.done_future.done() else None


class CliportClient:
    """Follow instructions, cancel, reset a simulated episode, and know when the node is active."""

    def __init__(
        self, node: Node, namespace: str = "", node_name: str = "cliport_node", keep_status_lines: int = 100
    ) -> None:
        from lifecycle_msgs.srv import GetState
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        self.node = node
        self.namespace = namespace.strip("/")
        self._get_state_type = GetState
        self._follow = ActionClient(node, FollowInstruction, _name(namespace, "follow_instruction"))
        self._reset = node.create_client(ResetEpisode, _name(namespace, "sim/reset_episode"))
        self._state = node.create_client(GetState, _name(namespace, f"{node_name}/get_state"))
        self._instruction = node.create_publisher(String, _name(namespace, "cliport/instruction"), 10)
        self._changed = threading.Condition()
        self.task_status: TaskStatus | None = None
        self.status_lines: collections.deque[str] = collections.deque(maxlen=keep_status_lines)
        self.lines_heard = 0  # status lines received in all (the deque keeps only the newest)
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        from lifecycle_msgs.msg import TransitionEvent

        self._events = 0  # transition events heard
        self._subscriptions = [
            node.create_subscription(TaskStatus, _name(namespace, "sim/task_status"), self._on_status, latched),
            node.create_subscription(String, _name(namespace, "cliport/status"), self._on_line, 100),
            node.create_subscription(
                TransitionEvent,
                _name(namespace, f"{node_name}/transition_event"),
                lambda msg: self._on_state(msg.goal_state.id),
                10,
            ),
        ]

    # ----- what the callbacks keep -------------------------------------------------------------------------
    def _on_status(self, msg: TaskStatus) -> None:
        with self._changed:
            self.task_status = msg
            self._changed.notify_all()

    def _on_state(self, state_id: int) -> None:
        with self._changed:
            self._events += 1
            self._changed.notify_all()

    def _on_line(self, msg: String) -> None:
        with self._changed:
            self.status_lines.append(msg.data)
            self.lines_heard += 1
            self._changed.notify_all()

    # ----- calls (none blocks) ---------------------------------------------------------------------------
    def follow(
        self, instruction: str, max_steps: int = 0, execute: bool = True, feedback: Callable[[Any], None] | None = None
    ) -> FollowTask:
        """Send a FollowInstruction goal; the task's ``done_future`` completes with its result."""
        task = FollowTask()

        def on_feedback(msg: Any) -> None:
            task.feedback.append(msg.feedback)
            if feedback is not None:
                feedback(msg.feedback)

        def on_goal(future: Future) -> None:
            task.handle = future.result()
            if not task.handle.accepted:
                refused = FollowInstruction.Result(success=False, message="the CLIPort node rejected the goal")
                task.done_future.set_result(refused)
                return
            task.handle.get_result_async().add_done_callback(
                lambda answer: task.done_future.set_result(answer.result().result)
            )

        goal = FollowInstruction.Goal(instruction=instruction, max_steps=max_steps, execute=execute)
        task.goal_future = self._follow.send_goal_async(goal, feedback_callback=on_feedback)
        task.goal_future.add_done_callback(on_goal)
        return task

    def cancel(self, task: FollowTask) -> Future:
        """Ask the node to cancel ``task``; a Future of the cancel's answer (done at once if not yet accepted)."""
        if task.handle is None:
            future = Future()
            future.set_result(None)
            return future
        return task.handle.cancel_goal_async()

    def instruct(self, instruction: str) -> None:
        """One pick-and-place through the instruction topic (its outcome is reported on cliport/status)."""
        self._instruction.publish(String(data=instruction))

    def reset_episode(self, task: str, split: str, seed: int) -> Future:
        """Reset the simulated cell; a Future of the ResetEpisode response (success, message, instruction)."""
        return self._reset.call_async(ResetEpisode.Request(task=task, split=split, seed=seed))

    def node_state(self) -> Future:
        """A Future of the CLIPort node's lifecycle state (lifecycle_msgs/GetState response)."""
        return self._state.call_async(self._get_state_type.Request())

    # ----- waiting (blocks the calling thread; the executor spins elsewhere) -------------------------------
    def wait_for_status(self, predicate: Callable[[TaskStatus], bool], timeout: float) -> TaskStatus | None:
        """The bridge's newest TaskStatus once ``predicate`` holds for it; None after ``timeout`` s."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: self.task_status is not None and predicate(self.task_status), timeout
            )
            return self.task_status if found else None

    def wait_for_servers(self, timeout: float, simulation: bool = False) -> bool:
        """Whether the node's follow_instruction server (and, with ``simulation``, the bridge's reset service)
        are discovered within ``timeout`` s. Discovery only: a goal's or request's answer is what decides."""
        ready = self._follow.wait_for_server(timeout_sec=timeout)
        return ready and (not simulation or self._reset.wait_for_service(timeout_sec=timeout))

    def wait_for_line(self, after: int, timeout: float) -> str | None:
        """The newest status line once more than ``after`` lines were heard in all; None after ``timeout`` s."""
        with self._changed:
            found = self._changed.wait_for(lambda: self.lines_heard > after, timeout)
            return self.status_lines[-1] if found else None

    def wait_until_active(self, timeout: float) -> bool:
        """Whether the CLIPort node is active, or becomes so, within ``timeout`` s.

        Only GetState's answers decide, the newest answered ask. There is no readiness gate: rcl's
        ``service_is_ready`` was seen false for the whole timeout while the service answered in milliseconds. An
        ask without an answer within ``STATE_ASK_INTERVAL_S`` is followed by another (a request sent before
        discovery is lost); a transition event makes it ask again at once.
        """
        import time

        from lifecycle_msgs.msg import State

        deadline = time.monotonic() + timeout
        asked: list[Future] = []
        answered = threading.Event()
        try:
            while True:
                with self._changed:
                    events = self._events
                answered.clear()
                ask = self.node_state()
                ask.add_done_callback(lambda _: answered.set())
                asked.append(ask)
                answered.wait(max(0.0, min(STATE_ASK_INTERVAL_S, deadline - time.monotonic())))
                done = [f for f in asked if f.done() and f.result() is not None]
                if done:
                    newest = done[-1]
                    del asked[: asked.index(newest) + 1]  # older asks can only tell an older state
                    if newest.result().current_state.id == State.PRIMARY_STATE_ACTIVE:
                        return True
                    remaining = deadline - time.monotonic()
                    if remaining > 0:  # until the node changes state (or a while: an event may have been missed)
                        with self._changed:
                            self._changed.wait_for(lambda seen=events: self._events != seen, min(1.0, remaining))
                if time.monotonic() >= deadline:
                    return False
        finally:
            for unanswered in asked:  # an answer after this call has no one to tell
                unanswered.cancel()

    def destroy(self) -> None:
        self._follow.destroy()
        self.node.destroy_client(self._reset)
        self.node.destroy_client(self._state)
        self.node.destroy_publisher(self._instruction)
        for subscription in self._subscriptions:
            self.node.destroy_subscription(subscription)
