"""The ``main()`` every plain node shares: init, build, spin until Ctrl-C or shutdown, tear down in order."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

#: What a node's constructor raises for parameters it cannot take: a wrong type, a value outside its range.
PARAMETER_ERRORS: tuple[type[BaseException], ...] = (
    rclpy.exceptions.InvalidParameterTypeException,
    rclpy.exceptions.InvalidParameterValueException,
)


def run_node(
    name: str,
    make_node: Callable[[], Node],
    args: list[str] | None = None,
    setup_errors: tuple[type[BaseException], ...] = (ValueError, KeyError, RuntimeError),
    close: Callable[[Node], None] | None = None,
    num_threads: int = 4,
) -> int:
    """0 after a clean shutdown; 2, with the reason on stderr, when the node cannot be built (bad parameters,
    missing packages)."""
    rclpy.init(args=args if args is not None else sys.argv)
    node: Node | None = None
    try:
        try:
            node = make_node()
        except setup_errors + PARAMETER_ERRORS as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        executor = MultiThreadedExecutor(num_threads=num_threads)
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            executor.shutdown()
    finally:
        if node is not None:
            if close is not None:
                close(node)
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
