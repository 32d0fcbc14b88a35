"""The motion backend in a process of its own.

moveit_py's ``plan()`` holds the Python GIL for the whole plan (MoveIt 2.12 binds PlanningComponent.plan without
releasing it): in the executor node's process, every other thread (the cancel and goal services, feedback, the
cancel watch) would wait for up to ``planning_time`` per attempt. So the backend runs in a child process (spawn
start method: nothing of the node's threads or DDS state is forked) and the node talks to it over a pipe:

- requests (a motion, the collision boxes, quit) go one at a time and wait for the answer without holding the
  node's GIL;
- stop is a multiprocessing.Event shared with the child, which the child's backend uses as its own stop flag:
  a stop sent while a plan runs is seen the moment the plan returns (the planned motion is not executed), and
  a watcher thread of the child calls the backend's stop() (MoveIt's stop_execution, which releases the GIL)
  for a stop during execution.

The child's backend comes from a factory named "module:function", called as
``factory(config, node_name, stop_flag, *args)``.
"""

from __future__ import annotations

import importlib
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from cliport_ros.execution import CellConfig, MotionOutcome, MotionStatus
from cliport_ros.execution.scene import Box


class MotionProcessError(RuntimeError):
    """The motion process could not start, or ended."""


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def serve(conn: Any, stop: Any, factory: str, config: CellConfig, node_name: str, args: tuple) -> None:
    """The child process: build the backend, then answer requests until quit or the pipe closes."""
    # Ctrl-C reaches the whole process group: the node's process decides when this one ends (quit, or EOF
    # when it is gone), so a stop or shutdown in progress is not cut short here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        backend = _load(factory)(config, node_name, stop, *args)
    except BaseException as exc:  # noqa: BLE001 - the parent reports why the child could not start
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    done = threading.Event()
    next_motion = threading.Event()

    def watch() -> None:
        while True:
            stop.wait()
            if done.is_set():
                return
            backend.stop()
            # One stop per set: wait until the next motion (which clears the flag) before listening again.
            next_motion.wait()
            next_motion.clear()

    watcher = threading.Thread(target=watch, name="stop_watch", daemon=True)
    watcher.start()
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:
                break
            kind = request[0]
            if kind == "quit":
                break
            try:
                if kind == "move":
                    stop.clear()
                    next_motion.set()
                    reply: tuple = ("ok", backend.plan_and_execute(request[1], request[2]))
                elif kind == "boxes":
                    backend.add_collision_boxes(request[1])
                    reply = ("ok", None)
                else:
                    reply = ("error", f"unknown request {kind!r}")
            except Exception as exc:  # noqa: BLE001 - the node ends the goal with the reason
                reply = ("error", f"{type(exc).__name__}: {exc}")
            conn.send(reply)
    finally:
        done.set()
        stop.set()
        next_motion.set()
        backend.shutdown()
        watcher.join(2.0)


class ProcessBackend:
    """A SceneMotionBackend whose motions run in a child process (see the module's doc)."""

    def __init__(
        self,
        factory: str,
        config: CellConfig,
        node_name: str = "moveit_py",
        args: Sequence[Any] = (),
        start_timeout: float = 120.0,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._conn, child = context.Pipe()
        self._lock = threading.Lock()
        self._process = context.Process(
            target=serve,
            name="motion_process",
            daemon=True,
            args=(child, self._stop, factory, config, node_name, tuple(args)),
        )
        self._process.start()
        child.close()
        kind, detail = self._receive(start_timeout, "start")
        if kind != "ready":
            self._process.join(5.0)
            raise MotionProcessError(f"the motion process did not start: {detail}")

    def _receive(self, timeout: float | None, what: str) -> tuple:
        if not self._conn.poll(timeout):
            raise MotionProcessError(f"the motion process did not answer ({what}) within {timeout} s")
        try:
            return self._conn.recv()
        except EOFError as exc:
            self._process.join(1.0)
            raise MotionProcessError(
                f"the motion process ended (exit code {self._process.exitcode}) during {what}"
            ) from exc

    def _request(self, request: tuple, what: str) -> Any:
        with self._lock:
            try:
                self._conn.send(request)
            except (BrokenPipeError, OSError) as exc:
                raise MotionProcessError(f"the motion process is gone ({what}): {exc}") from exc
            kind, value = self._receive(None, what)
        if kind != "ok":
            raise MotionProcessError(f"{what}: {value}")
        return value

    def plan_and_execute(self, target: Any, linear: bool) -> MotionOutcome:
        try:
            return self._request(("move", target, linear), "motion")
        except MotionProcessError as exc:
            return MotionOutcome(MotionStatus.EXECUTION_FAILED, str(exc))

    def stop(self) -> None:
        self._stop.set()

    def add_collision_boxes(self, boxes: Sequence[Box]) -> None:
        self._request(("boxes", list(boxes)), "collision boxes")

    def shutdown(self) -> None:
        if not self._process.is_alive():
            return
        with self._lock:
            try:
                self._conn.send(("quit",))
            except (BrokenPipeError, OSError):
                pass
        self._process.join(10.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5.0)
        self._conn.close()
