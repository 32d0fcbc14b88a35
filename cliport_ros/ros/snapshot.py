"""``cliport snapshot``: the live top-down view of the cameras as a PNG, to check a calibration before the
arm moves. It reads the CLIPort node's parameters (camera topics, poses, workspace), waits for one
synchronised frame per camera, fuses them exactly as the node does, and writes color | height side by side.
Tables, blocks and bowls should appear where they are on the real table, in the right colors, with the
same outline from every camera (``--per-camera`` writes one image per camera to compare).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cliport_ros.cli import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params",
        default="",
        help="ROS parameter file with a cliport_node section (default: config/cliport_node.yaml); e.g. config/ur5.yaml",
    )
    parser.add_argument("--node-name", default="cliport_node", help="section of the parameter file to read")
    parser.add_argument("--out", default="top_down.png", help="PNG to write")
    parser.add_argument("--per-camera", action="store_true", help="also write <out>_<camera>.png per camera")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the cameras")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter (value in YAML), e.g. --set camera_pose_source=tf "
        "--set 'camera_namespaces=[/camera/camera]'",
    )


def parameters_from_file(path: Path, node_name: str) -> dict[str, Any]:
    """The ``ros__parameters`` of ``/**`` and of ``node_name`` in a ROS parameter file, flattened (a.b: v)."""
    import yaml

    from cliport_ros.execution.cell import flatten_parameters

    data = yaml.safe_load(path.read_text()) or {}
    params: dict[str, Any] = {}
    for section in ("/**", node_name, f"/{node_name}"):
        params.update(flatten_parameters((data.get(section) or {}).get("ros__parameters", {})))
    return params


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` strings -> {name: YAML value}."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        out[name.strip()] = yaml.safe_load(value)
    return out


def render(view: Any) -> Any:
    """color | height (jet, 0 .. workspace height) as one BGR image, 2x scaled."""
    import cv2
    import numpy as np

    ws = view.workspace
    height = np.clip(view.height / (ws.z_max - ws.z_min) * 255.0, 0, 255).astype(np.uint8)
    panel = np.concatenate(
        [cv2.cvtColor(view.color, cv2.COLOR_RGB2BGR), cv2.applyColorMap(height, cv2.COLORMAP_JET)], axis=1
    )
    return cv2.resize(panel, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


def run(args: argparse.Namespace) -> int:
    import cv2
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from cliport_ros.agent import DecisionError
    from cliport_ros.perception.fusion import fuse_views
    from cliport_ros.resources import config_path
    from cliport_ros.ros.camera_inputs import CameraInputs
    from cliport_ros.ros.cliport_node import CliportNode

    params_file = Path(args.params) if args.params else config_path("cliport_node.yaml")
    if not params_file.is_file():
        print(json.dumps({"error": f"parameter file not found: {params_file}"}))
        return 2
    overrides = parameters_from_file(params_file, args.node_name)
    try:
        overrides.update(parse_overrides(args.set))
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = CliportNode(
            "cliport_snapshot",
            context=context,
            policy_factory=lambda c, d: None,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
        workspace, _ = node.read_config()
        inputs = CameraInputs(node, workspace.frame_id)
    except (ValueError, FileNotFoundError) as exc:
        print(json.dumps({"error": str(exc)}))
        rclpy.try_shutdown(context=context)
        return 2
    inputs.subscribe()
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + args.timeout
    while not inputs.ready() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    try:
        frames = inputs.frames()
        view = fuse_views([(f.rgb, f.depth, f.camera) for f in frames], workspace)
    except (DecisionError, ValueError) as exc:
        print(json.dumps({"error": getattr(exc, "message", str(exc)), "topics": [t.color for t in inputs.topics]}))
        return 1
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), render(view))
    written = [str(out)]
    if args.per_camera:
        for frame in frames:
            single = fuse_views([(frame.rgb, frame.depth, frame.camera)], workspace)
            path = out.with_name(f"{out.stem}_{frame.camera.name}.png")
            cv2.imwrite(str(path), render(single))
            written.append(str(path))
    print(
        json.dumps(
            {
                "written": written,
                "cameras": [f.camera.name for f in frames],
                "coverage": round(float((view.height > 0).mean()), 4),
                "max_height_m": round(float(view.height.max()), 4),
            }
        )
    )
    return 0


command = Command(add_arguments=add_arguments, run=run)
