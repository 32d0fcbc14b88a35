"""doctor: before anything moves, check what a first run on a real cell needs, on the live ROS graph.

    cliport doctor ur5 robot_ip:=192.168.1.102 [cell_config:=...] [--window 3]
    ros2 run cliport_ros doctor franka use_fake_hardware:=true

It takes the bringup's own arguments (``name:=value``, as ``ros2 launch``), so it checks the very parameters the
bringup would give the nodes (cliport_ros.ros.bringup): the ROS distribution; the MoveIt planning group, base
and TCP links (/robot_description, /robot_description_semantic); the executor's controllers active
(/controller_manager/list_controllers); the gripper's service or actions served with their types; each
camera's color, depth and camera_info at a sane rate and in encodings the node reads; TF from the base frame to
each camera (or the calibration file); the workspace within the arm's reach; the checkpoint loads. Each item is
printed as ok or PROBLEM with its fix; the exit code is 1 if any item failed (2 for bad arguments).

The doctor only listens and asks: it sends no goal and calls no service that acts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cliport_ros.cli import Command
from cliport_ros.execution.cell import CellConfig
from cliport_ros.execution.preflight import (
    Check,
    check_controllers,
    check_description,
    check_gripper,
    check_reach,
    check_stream,
    check_tf,
)
from cliport_ros.ros.bringup import (
    FRANKA_ARGUMENTS,
    UR5_ARGUMENTS,
    Bringup,
    BringupError,
    check_distro,
    franka_bringup,
    ur5_bringup,
)

ROBOTS: dict[str, tuple[Callable[..., Bringup], list]] = {
    "ur5": (ur5_bringup, UR5_ARGUMENTS),
    "franka": (franka_bringup, FRANKA_ARGUMENTS),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("robot", choices=sorted(ROBOTS), help="which bringup to check against")
    parser.add_argument("arguments", nargs="*", metavar="name:=value", help="the bringup's launch arguments")
    parser.add_argument("--window", type=float, default=3.0, help="seconds to listen to the topics (default 3)")
    parser.add_argument("--min-rate", type=float, default=5.0, help="lowest camera rate in Hz (default 5)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds for each service answer (default 5)")
    parser.add_argument("--distro", default=os.environ.get("ROS_DISTRO", ""), help="default: $ROS_DISTRO")
    parser.add_argument("--skip-checkpoint", action="store_true", help="do not load the policy")


def launch_values(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise BringupError(f"{item!r}: launch arguments are name:=value")
        values[name] = value
    return values


def robot_name(robot: str, values: dict[str, str], arguments: list) -> str:
    if robot == "franka":
        return "fr3"
    return values.get("ur_type") or next(a.default for a in arguments if a.name == "ur_type")


class Observer:
    """Subscriptions and clients on a plain rclpy node; the caller spins it."""

    def __init__(self, node: Any, bringup: Bringup) -> None:
        from rclpy.qos import (
            DurabilityPolicy,
            QoSProfile,
            ReliabilityPolicy,
            qos_profile_sensor_data,
        )
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String

        self.node = node
        self.descriptions: dict[str, str | None] = {"/robot_description": None, "/robot_description_semantic": None}
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        for topic in self.descriptions:
            node.create_subscription(
                String, topic, lambda msg, t=topic: self.descriptions.__setitem__(t, msg.data), latched
            )
        p = bringup.cliport_parameters
        self.cameras: dict[str, dict[str, Any]] = {}
        for camera, namespace in zip(p["camera_names"], p["camera_namespaces"]):
            record: dict[str, Any] = {"frame": None}
            for kind, suffix, msg_type in (
                ("color", p["color_topic"], Image),
                ("depth", p["depth_topic"], Image),
                ("info", p["info_topic"], CameraInfo),
            ):
                topic = f"{namespace.rstrip('/')}/{suffix}"
                record[kind] = {"topic": topic, "count": 0, "encodings": set()}
                node.create_subscription(
                    msg_type, topic, lambda msg, r=record, k=kind: self._frame(r, k, msg), qos_profile_sensor_data
                )
            self.cameras[camera] = record
        self.tf_edges: dict[str, str] = {}
        self.tf_available = True
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.tf_available = False
        else:
            static = QoSProfile(
                depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
            )
            node.create_subscription(TFMessage, "/tf_static", self._tf, static)
            node.create_subscription(TFMessage, "/tf", self._tf, QoSProfile(depth=100))
        self.counting = False

    def _frame(self, record: dict[str, Any], kind: str, msg: Any) -> None:
        if kind == "info":
            record["frame"] = msg.header.frame_id
        else:
            record[kind]["encodings"].add(msg.encoding)
        if self.counting:
            record[kind]["count"] += 1

    def _tf(self, msg: Any) -> None:
        for transform in msg.transforms:
            self.tf_edges[transform.child_frame_id.lstrip("/")] = transform.header.frame_id.lstrip("/")

    def controller_states(self, executor: Any, timeout: float) -> dict[str, str] | None:
        """None if controller_manager does not answer; ImportError without controller_manager_msgs."""
        from controller_manager_msgs.srv import ListControllers

        client = self.node.create_client(ListControllers, "/controller_manager/list_controllers")
        try:
            future = client.call_async(ListControllers.Request())
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            if not future.done():
                future.cancel()
                return None
            return {c.name: c.state for c in future.result().controller}
        finally:
            self.node.destroy_client(client)

    def offered(self) -> dict[str, list[str]]:
        from rclpy.action import get_action_names_and_types

        names = dict(self.node.get_service_names_and_types())
        names.update(dict(get_action_names_and_types(self.node)))
        return names


def examine(
    node: Any,
    executor: Any,
    bringup: Bringup,
    robot: str,
    window: float,
    min_rate: float,
    timeout: float,
    load_checkpoint: Callable[[str], Any] | None,
) -> list[Check]:
    """Listen for ``window`` seconds and ask what is needed; every check, in order."""
    from cliport_ros.ros.images import COLOR_ENCODINGS, DEPTH_ENCODINGS

    observer = Observer(node, bringup)
    cell_names = CellConfig().to_parameters()
    config = CellConfig.from_parameters({k: v for k, v in bringup.executor_parameters.items() if k in cell_names})
    # Let discovery settle before counting, so the rate is not biased by late matching.
    settle = time.monotonic() + min(1.0, window / 3)
    while time.monotonic() < settle:
        executor.spin_once(timeout_sec=0.05)
    observer.counting = True
    start = time.monotonic()
    while time.monotonic() - start < window:
        executor.spin_once(timeout_sec=0.05)
    seconds = time.monotonic() - start
    observer.counting = False

    checks = check_description(
        observer.descriptions["/robot_description"], observer.descriptions["/robot_description_semantic"], config
    )
    try:
        checks += check_controllers(observer.controller_states(executor, timeout), config.controllers)
    except ImportError as exc:
        checks.append(
            Check(
                "controllers",
                False,
                f"controller_manager_msgs is not importable ({exc})",
                "source the ROS 2 install (ros-jazzy-controller-manager-msgs)",
            )
        )
    checks += check_gripper(config, observer.offered())
    for camera, record in observer.cameras.items():
        for kind, allowed in (("color", COLOR_ENCODINGS), ("depth", DEPTH_ENCODINGS), ("info", ())):
            entry = record[kind]
            checks.append(
                check_stream(
                    f"camera {camera} {kind} {entry['topic']}",
                    entry["count"],
                    seconds,
                    min_rate,
                    entry["encodings"] if allowed else None,
                    allowed,
                )
            )
    if bringup.cliport_parameters.get("camera_pose_source") == "tf":
        if observer.tf_available:
            checks += check_tf(
                observer.tf_edges, config.base_frame, {c: r["frame"] for c, r in observer.cameras.items()}
            )
        else:
            checks.append(Check("TF", False, "tf2_msgs is not importable", "source the ROS 2 install"))
    checks.append(check_reach(config, robot))
    if load_checkpoint is not None:
        checkpoint = bringup.cliport_parameters.get("checkpoint", "")
        try:
            policy = load_checkpoint(checkpoint)
            checks.append(
                Check("checkpoint", True, f"{checkpoint or 'the shipped model'} loads ({type(policy).__name__})")
            )
        except Exception as exc:  # noqa: BLE001 - whatever stops the load is the finding
            checks.append(
                Check(
                    "checkpoint",
                    False,
                    f"{checkpoint or 'the shipped model'}: {exc}",
                    "give checkpoint:= a folder with model.safetensors and config.json",
                )
            )
    return checks


def run(
    args: argparse.Namespace, out: Any = None, context: Any = None, load_checkpoint: Callable[[str], Any] | None = None
) -> int:
    """Print the checks; 0 if all are ok, 1 if any is not, 2 for unusable arguments."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    out = out or sys.stdout
    build, arguments = ROBOTS[args.robot]
    distro = Check("ROS distribution", True, args.distro)
    try:
        check_distro(args.distro)
    except BringupError as exc:
        distro = Check("ROS distribution", False, str(exc), "use ROS 2 Jazzy")
    try:
        values = launch_values(args.arguments)
        # Judge the cell with Jazzy's parameters even where the distribution is refused (reported above).
        bringup = build(values, _share(), "jazzy")
    except (BringupError, ValueError) as exc:
        print(f"cliport doctor: {exc}", file=out)
        return 2
    if load_checkpoint is None and not args.skip_checkpoint:
        from cliport_ros.ros.cliport_node import load_policy

        load_checkpoint = lambda path: load_policy(path, "cpu")  # noqa: E731
    own_context = context is None
    if own_context:
        context = rclpy.Context()
        # No ROS arguments: rcl would read the bringup's name:=value arguments as (deprecated) remap rules.
        rclpy.init(context=context, args=[])
    node = rclpy.create_node("cliport_doctor", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        checks = [distro] + examine(
            node,
            executor,
            bringup,
            robot_name(args.robot, values, arguments),
            args.window,
            args.min_rate,
            args.timeout,
            None if args.skip_checkpoint else load_checkpoint,
        )
    finally:
        executor.shutdown()
        node.destroy_node()
        if own_context:
            rclpy.try_shutdown(context=context)
    for check in checks:
        for line in check.lines():
            print(line, file=out)
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} ok, {len(failed)} problem(s)", file=out)
    return 1 if failed else 0


def _share() -> Path:
    from cliport_ros.resources import config_path

    return config_path("ur5.yaml").parent.parent


command = Command(add_arguments=add_arguments, run=run)


def main(args: list[str] | None = None) -> int:
    """``ros2 run cliport_ros doctor ur5 robot_ip:=...``."""
    parser = argparse.ArgumentParser(prog="doctor", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    # ros2 run appends --ros-args ...: the doctor takes no ROS arguments.
    argv = sys.argv[1:] if args is None else args
    return run(parser.parse_args(argv[: argv.index("--ros-args")] if "--ros-args" in argv else argv))


if __name__ == "__main__":
    sys.exit(main())
