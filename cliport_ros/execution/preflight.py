"""Pre-flight checks of a real cell, as plain judgements on what was observed (no ROS here): each returns a
``Check`` that is ok, or a problem with its fix. cliport_ros.ros.doctor gathers the observations on the live
ROS graph and prints these.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cliport_ros.execution.cell import CellConfig

# Maximum reach from the base axis, from the makers' data sheets (m).
REACH = {
    "ur3": 0.50,
    "ur3e": 0.50,
    "ur5": 0.85,
    "ur5e": 0.85,
    "ur7e": 0.85,
    "ur10": 1.30,
    "ur10e": 1.30,
    "ur12e": 1.30,
    "ur16e": 0.90,
    "fr3": 0.855,
}

# The endpoint each gripper type needs: (kind, name suffix or parameter, ROS type).
GRIPPER_ENDPOINTS = {
    "suction_service": [("service", "service", "std_srvs/srv/SetBool")],
    "suction_ur_io": [("service", "io_service", "ur_msgs/srv/SetIO")],
    "parallel_jaw": [("action", "action", "control_msgs/action/GripperCommand")],
    "franka_hand": [
        ("action", "action:/grasp", "franka_msgs/action/Grasp"),
        ("action", "action:/move", "franka_msgs/action/Move"),
    ],
}


@dataclass(frozen=True)
class Check:
    """One item of the pre-flight list."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        head = f"{'ok' if self.ok else 'PROBLEM':8s}{self.name}: {self.detail}"
        return [head] if self.ok or not self.fix else [head, f"{'':8s}fix: {self.fix}"]


def _parse(xml: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"{what} is not valid XML: {exc}") from exc


def _names(
    xml: str | None, topic: str, tag: str, item: str, missing_fix: str, invalid_fix: str, checks: list[Check]
) -> set[str]:
    """The names of the ``tag`` elements of the XML heard on ``topic``; a problem is appended to ``checks``
    (and nothing returned) when nothing was heard or it is not XML."""
    if xml is None:
        checks.append(Check(item, False, f"nothing on {topic}", missing_fix))
        return set()
    try:
        return {str(element.get("name")) for element in _parse(xml, topic).iter(tag)}
    except ValueError as exc:
        checks.append(Check(item, False, str(exc), invalid_fix))
        return set()


def check_description(urdf: str | None, srdf: str | None, config: CellConfig) -> list[Check]:
    """The planning group exists in the SRDF, the base and TCP links in the URDF."""
    checks: list[Check] = []
    links = _names(
        urdf,
        "/robot_description",
        "link",
        "robot description",
        "start the robot driver (it publishes the URDF on /robot_description)",
        "check the driver's xacro arguments",
        checks,
    )
    for role, link in (("base frame", config.base_frame), ("TCP link", config.ee_link)):
        if link in links:
            checks.append(Check(role, True, f"link {link} is in the robot description"))
        elif links:
            checks.append(
                Check(
                    role,
                    False,
                    f"link {link} is not in the robot description",
                    f"set {'base_frame' if role == 'base frame' else 'ee_link'} to a link of "
                    f"the robot (it has {len(links)}, e.g. {', '.join(sorted(links)[:6])})",
                )
            )
    groups = _names(
        srdf,
        "/robot_description_semantic",
        "group",
        "planning group",
        "start MoveIt (move_group publishes the SRDF with publish_robot_description_semantic)",
        "check MoveIt's SRDF",
        checks,
    )
    if config.planning_group in groups:
        checks.append(Check("planning group", True, f"{config.planning_group} is in the SRDF"))
    elif groups:
        checks.append(
            Check(
                "planning group",
                False,
                f"{config.planning_group} is not in the SRDF",
                f"set planning_group to one of {', '.join(sorted(groups))}",
            )
        )
    return checks


def check_controllers(states: Mapping[str, str] | None, wanted: Iterable[str]) -> list[Check]:
    """Each controller the executor executes on is loaded and active (controller_manager's list)."""
    if states is None:
        return [
            Check(
                "controllers",
                False,
                "/controller_manager/list_controllers did not answer",
                "start the robot driver (ros2_control's controller_manager)",
            )
        ]
    checks = []
    for name in wanted:
        state = states.get(name)
        if state == "active":
            checks.append(Check(f"controller {name}", True, "active"))
        elif state is None:
            checks.append(
                Check(
                    f"controller {name}",
                    False,
                    "not loaded",
                    f"load it, or set the executor's controllers to a loaded one "
                    f"({', '.join(sorted(states)) or 'none loaded'})",
                )
            )
        else:
            checks.append(
                Check(
                    f"controller {name}",
                    False,
                    f"{state}, not active",
                    f"ros2 control switch_controllers --activate {name} (and deactivate the "
                    "controller that holds the same joints)",
                )
            )
    return checks


def gripper_endpoints(config: CellConfig) -> list[tuple[str, str, str]]:
    """(service | action, name, type) the configured gripper talks to."""
    gripper = config.gripper
    found = []
    for kind, source, ros_type in GRIPPER_ENDPOINTS[gripper.type]:
        attribute, _, suffix = source.partition(":")
        found.append(
            (
                kind,
                str(getattr(gripper, attribute)).rstrip("/") + suffix if suffix else str(getattr(gripper, attribute)),
                ros_type,
            )
        )
    return found


def check_gripper(config: CellConfig, offered: Mapping[str, Iterable[str]]) -> list[Check]:
    """``offered``: name -> types of the services and actions on the graph."""
    checks = []
    for kind, name, ros_type in gripper_endpoints(config):
        types = set(offered.get(name, ()))
        if ros_type in types:
            checks.append(Check(f"gripper {kind}", True, f"{name} ({ros_type}) is served"))
        elif types:
            checks.append(
                Check(
                    f"gripper {kind}",
                    False,
                    f"{name} is served as {', '.join(sorted(types))}, not {ros_type}",
                    f"check gripper.type ({config.gripper.type})",
                )
            )
        else:
            checks.append(
                Check(
                    f"gripper {kind}",
                    False,
                    f"no {kind} {name} ({ros_type})",
                    f"start the gripper's driver, or set gripper.{'action' if kind == 'action' else 'service'}"
                    " to its name",
                )
            )
    return checks


def check_stream(
    name: str,
    count: int,
    seconds: float,
    min_rate: float,
    encodings: set[str] | None = None,
    allowed: Iterable[str] = (),
) -> Check:
    """A topic publishes at ``min_rate`` Hz or more (and, for images, in an encoding the node reads)."""
    rate = count / seconds if seconds > 0 else 0.0
    if count == 0:
        return Check(
            name,
            False,
            f"no message in {seconds:.1f} s",
            "start the camera driver and check the topic names (camera_namespaces, *_topic)",
        )
    allowed = set(allowed)
    if encodings is not None and allowed and not encodings <= allowed:
        return Check(
            name, False, f"encoding {', '.join(sorted(encodings))}", f"publish one of {', '.join(sorted(allowed))}"
        )
    if rate < min_rate:
        return Check(
            name, False, f"{rate:.1f} Hz, below {min_rate:g} Hz", "check the camera's USB link and its fps settings"
        )
    return Check(name, True, f"{rate:.1f} Hz" + (f", {', '.join(sorted(encodings))}" if encodings else ""))


def connected(edges: Mapping[str, str], a: str, b: str) -> bool:
    """Whether TF frames ``a`` and ``b`` are in one tree, given child -> parent edges."""

    def root_path(frame: str) -> list[str]:
        path, seen = [frame], {frame}
        while path[-1] in edges and edges[path[-1]] not in seen:
            path.append(edges[path[-1]])
            seen.add(path[-1])
        return path

    return bool(set(root_path(a)) & set(root_path(b)))


def check_tf(edges: Mapping[str, str], base_frame: str, camera_frames: Mapping[str, str | None]) -> list[Check]:
    """``camera_frames``: camera name -> the frame_id of its camera_info (None if none arrived)."""
    checks = []
    for camera, frame in camera_frames.items():
        if frame is None:
            checks.append(
                Check(
                    f"TF {camera}",
                    False,
                    "no camera_info, so no camera frame to look up",
                    "fix the camera's topics first",
                )
            )
        elif connected(edges, base_frame, frame):
            checks.append(Check(f"TF {camera}", True, f"{base_frame} -> {frame}"))
        else:
            checks.append(
                Check(
                    f"TF {camera}",
                    False,
                    f"no TF between {base_frame} and {frame}",
                    "publish the camera calibration (calibration_file:= or handeye_calibration_name:= of the bringup)",
                )
            )
    return checks


def check_reach(config: CellConfig, robot: str) -> Check:
    """The workspace's far corners are within the arm's reach of the base axis (horizontally: a necessary
    condition; targets near the limit may still fail to plan with the tool pointing down)."""
    reach = REACH.get(robot)
    if reach is None:
        return Check("reach", False, f"no reach known for {robot!r}", f"one of {', '.join(sorted(REACH))}")
    ws = config.workspace
    corner = max(((x, y) for x in (ws.x_min, ws.x_max) for y in (ws.y_min, ws.y_max)), key=lambda c: math.hypot(*c))
    distance = math.hypot(*corner)
    if distance > reach:
        return Check(
            "reach",
            False,
            f"workspace corner ({corner[0]:g}, {corner[1]:g}) is {distance:.3f} m from "
            f"the base axis; the {robot} reaches {reach} m",
            "move workspace.x_*/y_* closer to the base (keep its extent)",
        )
    return Check("reach", True, f"farthest workspace corner {distance:.3f} m from the base axis, reach {reach} m")
