"""``cliport replay BAG --checkpoint C``: the decisions of a recorded run, made again offline on its frames.

For each decision in the bag (``cliport/pick_place``), the frames it was made on are found by their stamps (the
decision carries the newest image's stamp; each camera's newest colour image at or before it, with the depth
image of the same stamp), fused and given to the checkpoint's policy with the decision's instruction, as the
node did live. One JSON line per decision says where the replayed pick and place fall against the live ones
(pixels of the top-down grid, and the place rotation), then a summary line. Exit status: 0 when every decision
was replayed and agrees, 1 when one differs or could not be replayed, 2 for a bad bag or arguments.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from cliport_ros.cli import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="a folder written by --bag (or its .mcap file)")
    parser.add_argument("--checkpoint", default="", help="policy checkpoint folder (default: the shipped model)")
    parser.add_argument(
        "--cameras-file", default="", help="camera rig YAML (default: the rig the bag records, else the simulated)"
    )
    parser.add_argument("--namespace", default="", help="the cell's ROS namespace in the bag")
    parser.add_argument("--tolerance-px", type=int, default=0, help="pixels a pick or place may move (default 0)")
    parser.add_argument("--tolerance-deg", type=float, default=1.0, help="degrees the place rotation may turn")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")


def _stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def replay(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import yaml

    from cliport_ros.agent import AgentConfig, CameraFrame, Decider, DecisionError
    from cliport_ros.geometry.workspace import Workspace
    from cliport_ros.perception.camera import CameraModel, CameraRig, load_camera_rig
    from cliport_ros.ros.bag import read_bag
    from cliport_ros.ros.camera_inputs import CAMERA_PARAMETERS
    from cliport_ros.ros.cliport_node import load_policy
    from cliport_ros.ros.conversions import pick_place_from_msg
    from cliport_ros.ros.images import camera_info_intrinsics, color_to_array, depth_to_array

    metadata, messages = read_bag(args.bag)
    if args.cameras_file:
        rig = load_camera_rig(args.cameras_file)
    elif "camera_rig" in metadata:
        rig = CameraRig.from_dict(yaml.safe_load(metadata["camera_rig"]))
    else:
        rig = load_camera_rig()
    policy = load_policy(args.checkpoint, args.device)
    workspace = Workspace.from_dict(json.loads(metadata["workspace"])) if "workspace" in metadata else policy.workspace
    ns = "/" + args.namespace.strip("/") if args.namespace.strip("/") else ""
    colors: dict[str, list[tuple[int, Any]]] = {cam.name: [] for cam in rig}
    depths: dict[str, dict[int, Any]] = {cam.name: {} for cam in rig}
    infos: dict[str, list[tuple[int, Any]]] = {cam.name: [] for cam in rig}
    topics = {}
    for cam in rig:
        base = f"{ns}/{cam.name}"
        topics[f"{base}/{CAMERA_PARAMETERS['color_topic']}"] = ("color", cam.name)
        topics[f"{base}/{CAMERA_PARAMETERS['depth_topic']}"] = ("depth", cam.name)
        topics[f"{base}/{CAMERA_PARAMETERS['info_topic']}"] = ("info", cam.name)
    decisions = []
    for topic, log_time, msg in messages:
        if topic == f"{ns}/cliport/pick_place":
            decisions.append(msg)
        elif topic in topics:
            kind, name = topics[topic]
            if kind == "color":
                colors[name].append((_stamp_ns(msg.header.stamp), msg))
            elif kind == "depth":
                depths[name][_stamp_ns(msg.header.stamp)] = msg
            else:
                infos[name].append((log_time, msg))
    rows = []
    for k, live in enumerate(decisions):
        stamp = _stamp_ns(live.header.stamp)
        row: dict[str, Any] = {"decision": k, "stamp_ns": stamp, "instruction": live.instruction}
        frames = []
        try:
            for cam in rig:
                before = [(s, m) for s, m in colors[cam.name] if s <= stamp]
                if not before:
                    raise LookupError(f"no image of camera {cam.name!r} at or before the decision")
                color_stamp, color = max(before, key=lambda item: item[0])
                depth = depths[cam.name].get(color_stamp)
                if depth is None:
                    raise LookupError(f"no depth image of camera {cam.name!r} stamped as its colour image")
                if not infos[cam.name]:
                    raise LookupError(f"no camera_info of camera {cam.name!r}")
                intrinsics = camera_info_intrinsics(infos[cam.name][-1][1])
                model = CameraModel(name=cam.name, position=cam.position, orientation=cam.orientation, **intrinsics)
                frames.append(
                    CameraFrame(model, color_to_array(color), depth_to_array(depth), color_stamp * 1e-9, color_stamp)
                )
            primitive = live.primitive or "pick_place"
            decider = Decider(policy, workspace, AgentConfig(max_image_age=0.0, primitive=primitive))
            decision = decider.decide(frames, live.instruction, stamp * 1e-9)
        except (LookupError, DecisionError, ValueError) as exc:
            row.update(replayed=False, differs=True, reason=str(getattr(exc, "message", exc)))
            rows.append(row)
            continue
        recorded = pick_place_from_msg(live)
        out = decision.output
        live_pick = workspace.xyz_to_pixel(recorded.pick.position)
        live_place = workspace.xyz_to_pixel(recorded.place.position)
        pick_px = math.dist(live_pick, out.pick_pixel)
        place_px = math.dist(live_place, out.place_pixel)
        turn = math.degrees(math.remainder(out.place_rotation - recorded.place.yaw, 2 * math.pi))
        row.update(
            replayed=True,
            live_pick=list(live_pick),
            replay_pick=list(out.pick_pixel),
            live_place=list(live_place),
            replay_place=list(out.place_pixel),
            pick_error_px=round(pick_px, 2),
            place_error_px=round(place_px, 2),
            rotation_error_deg=round(turn, 2),
            differs=pick_px > args.tolerance_px or place_px > args.tolerance_px or abs(turn) > args.tolerance_deg,
        )
        rows.append(row)
    summary = {
        "summary": True,
        "bag": str(args.bag),
        "decisions": len(decisions),
        "replayed": sum(r["replayed"] for r in rows),
        "differ": sum(r["differs"] for r in rows),
        "frames": {name: len(v) for name, v in colors.items()},
    }
    return rows, summary


def run(args: argparse.Namespace) -> int:
    try:
        rows, summary = replay(args)
    except (OSError, ValueError, KeyError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 2
    for row in rows:
        print(json.dumps(row))
    print(json.dumps(summary), flush=True)
    if summary["decisions"] == 0:
        return 1
    return 1 if summary["differ"] else 0


command = Command(add_arguments=add_arguments, run=run)
