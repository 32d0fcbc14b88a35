"""What the real-cell bringups start, as plain data: launch arguments in, typed node parameters and the
arguments of each included launch file out.

launch/ur5_bringup.launch.py and launch/franka_bringup.launch.py perform their launch arguments in an
OpaqueFunction and hand the strings to ``ur5_bringup`` / ``franka_bringup``. The parameters come back as one
dict of final, typed values per node (the cell file's sections merged, launch arguments applied last), so
that:

- no value is a substitution (launch_ros turns a list holding one substitution into one string);
- a launch argument wins over the cell file (launch_ros writes dict parameters under ``/**``, and a section
  named after the node in a file given to the same node is applied after them);
- the tests build exactly what a launch would deliver and construct the real nodes with it.

This module imports neither launch nor rclpy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cliport_ros.execution.cell import flatten_parameters

# The one name both sides of ExecutePickPlace use.
EXECUTE_ACTION = "execute_pick_place"

# ROS 2 distributions the bringups run on. moveit_py's Python API as used here (PlanRequestParameters(robot,
# namespace), plan(single_plan_parameters=...), execute(trajectory, controllers=...)) is Jazzy's; Humble's
# backport has other signatures, and UR's Humble launch calls the mock argument use_fake_hardware.
SUPPORTED_DISTROS = ("jazzy",)
EXPECTED_TO_WORK = ("kilted", "rolling")
UNSUPPORTED_DISTROS = ("foxy", "galactic", "humble", "iron")

# Franka: franka_ros2's end-effector id of the Franka Hand, and the flange link that stays when the hand is
# not loaded (hand:=false removes fr3_hand_tcp).
FRANKA_EE_ID = "franka_hand"
FRANKA_HAND_TCP = "fr3_hand_tcp"
FRANKA_FLANGE = "fr3_link8"
FRANKA_GRIPPERS = ("franka_hand", "suction")
# franka_gripper's node (franka_ros2 >= 2.0; /fr3_gripper before): its actions are <node>/grasp, <node>/move.
FRANKA_GRIPPER_NODE = "/franka_gripper"

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_IPV4 = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


@dataclass(frozen=True)
class Argument:
    """A launch argument: its name, default (always a string, as launch has it) and description."""

    name: str
    default: str
    description: str


@dataclass(frozen=True)
class Include:
    """An upstream launch file to include, with the string arguments it is given."""

    package: str
    launch_file: str
    arguments: dict[str, str]


@dataclass(frozen=True)
class NodeSpec:
    """A process to start besides the includes."""

    package: str
    executable: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    arguments: list[str] = field(default_factory=list)
    remappings: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Bringup:
    """Everything a bringup starts, decided from the performed launch arguments."""

    includes: list[Include]
    cliport_parameters: dict[str, Any]
    executor_parameters: dict[str, Any]
    # Mappings of the robot description / SRDF xacros the executor's MoveItPy needs (Franka only).
    description_mappings: dict[str, str] = field(default_factory=dict)
    extra_nodes: list[NodeSpec] = field(default_factory=list)
    # A camera calibration file the bringup itself supplies (simulated cells), else the user's arguments.
    calibration_file: str = ""


_CAMERA = [
    Argument("camera_serial", "", "RealSense serial number; empty = the first camera found"),
    Argument("camera_name", "camera", "RealSense camera name"),
    Argument("calibration_file", "", "camera calibration YAML / easy_handeye2 .calib file (static TF)"),
    Argument("handeye_calibration_name", "", "or an easy_handeye2 calibration name, published by easy_handeye2"),
]
_POLICY = [
    Argument("checkpoint", "", "policy checkpoint; empty = the shipped model"),
    Argument("device", "auto", "auto | cpu | cuda | cuda:N"),
    Argument("execute", "false", "send decisions to the arm; false = predict and publish only"),
    Argument("tcp_offset", "", "the tool tip in ee_link's frame, '[x, y, z]' in m; empty = the cell file's"),
]
_CONSOLE = [
    Argument("console", "false", "start the operator console (console_node: a web page on 127.0.0.1)"),
    Argument("console_port", "8080", "TCP port of the operator console's page"),
]

UR5_ARGUMENTS = [
    Argument("ur_type", "ur5e", "UR model: ur5 | ur5e (any ur_type)"),
    Argument("robot_ip", "192.168.56.101", "the robot's IP address"),
    Argument("use_mock_hardware", "false", "ros2_control mock hardware instead of the robot"),
    Argument(
        "joint_controller",
        "scaled_joint_trajectory_controller",
        "the trajectory controller the driver starts and MoveIt executes on "
        "(joint_trajectory_controller on newer driver releases)",
    ),
    Argument("launch_rviz", "true", "start MoveIt's RViz"),
    *_CAMERA,
    Argument("cell_config", "", "cell parameter file; empty = config/ur5.yaml"),
    *_POLICY,
    *_CONSOLE,
]

FRANKA_ARGUMENTS = [
    Argument("robot_ip", "172.16.0.2", "the robot's IP address"),
    Argument(
        "use_fake_hardware", "false", "ros2_control fake hardware instead of the robot (and a simulated Franka Hand)"
    ),
    Argument("gripper", "franka_hand", "franka_hand (franka_gripper) | suction (std_srvs/SetBool)"),
    *_CAMERA,
    Argument("cell_config", "", "cell parameter file; empty = config/franka.yaml"),
    *_POLICY,
    *_CONSOLE,
]


class BringupError(ValueError):
    """A launch argument or the cell file is unusable; the message says which and what is allowed."""


def console_nodes(values: dict[str, str]) -> list[NodeSpec]:
    """The operator console, when ``console:=true``."""
    if not parse_bool("console", values["console"]):
        return []
    try:
        port = int(values["console_port"])
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise BringupError(f"launch argument console_port:={values['console_port']!r} must be a TCP port (1-65535)")
    return [NodeSpec("cliport_ros", "console_node", "console_node", {"port": port})]


def parse_bool(name: str, text: str) -> bool:
    """A launch boolean as launch's conditions read it: true/false (any case) or 1/0."""
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise BringupError(f"launch argument {name}:={text!r} must be true or false")


def _ros_name(name: str, text: str) -> str:
    if not _NAME.match(text):
        raise BringupError(f"launch argument {name}:={text!r} must be a ROS name (letters, digits, _)")
    return text


def _ip(name: str, text: str) -> str:
    match = _IPV4.match(text.strip())
    if not match or any(int(part) > 255 for part in match.groups()):
        raise BringupError(f"launch argument {name}:={text!r} must be an IPv4 address such as 192.168.1.102")
    return text.strip()


def _tcp_offset(text: str) -> list[float] | None:
    if not text.strip():
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BringupError(f"launch argument tcp_offset:={text!r} is not a YAML list: {exc}") from exc
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise BringupError(
            f"launch argument tcp_offset:={text!r} must be a list of 3 numbers in metres, e.g. '[0.0, 0.0, 0.12]'"
        )
    return [float(v) for v in value]


def check_distro(distro: str) -> None:
    """Refuse to launch where the code does not run (and where a mock argument could be dropped)."""
    name = distro.strip().lower()
    if name in SUPPORTED_DISTROS or name in EXPECTED_TO_WORK:
        return
    if not name:
        raise BringupError("ROS_DISTRO is not set: source your ROS 2 install (e.g. /opt/ros/jazzy/setup.bash)")
    raise BringupError(
        f"ROS 2 {distro} is not supported: the real-cell bringups need ROS 2 {', '.join(SUPPORTED_DISTROS)} "
        f"(expected to work: {', '.join(EXPECTED_TO_WORK)}). On {distro}, moveit_py's API differs and the UR "
        "driver calls its mock argument use_fake_hardware, so a mock run could reach the real robot."
    )


def values_with_defaults(arguments: list[Argument], given: Mapping[str, str]) -> dict[str, str]:
    """Every argument's value (given or default); unknown names are an error."""
    names = {a.name for a in arguments}
    unknown = sorted(set(given) - names)
    if unknown:
        raise BringupError(f"unknown launch argument(s) {unknown}; allowed: {sorted(names)}")
    return {a.name: str(given.get(a.name, a.default)) for a in arguments}


def node_section(document: Any, node_name: str, source: str) -> dict[str, Any]:
    """The parameters a ROS parameter file gives ``node_name``: its ``/**`` section, then its own (which wins,
    as rcl applies them). Sections of other nodes are ignored."""
    if not isinstance(document, Mapping):
        raise BringupError(f"{source}: not a ROS parameter file (a mapping of node names to ros__parameters)")
    merged: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}"):
        section = document.get(key)
        if section is None:
            continue
        if not isinstance(section, Mapping) or not isinstance(section.get("ros__parameters"), Mapping):
            raise BringupError(f"{source}: section {key!r} has no ros__parameters mapping")
        merged.update(flatten_parameters(section["ros__parameters"]))
    return merged


def read_cell_file(path: str) -> Any:
    file = Path(os.path.expanduser(path))
    try:
        return yaml.safe_load(file.read_text())
    except OSError as exc:
        raise BringupError(f"cell_config:={path}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise BringupError(f"cell_config:={path}: not valid YAML: {exc}") from exc


def _cliport_overrides(values: Mapping[str, str]) -> dict[str, Any]:
    camera = _ros_name("camera_name", values["camera_name"])
    checkpoint = values["checkpoint"].strip()
    return {
        "checkpoint": os.path.expanduser(checkpoint) if checkpoint else "",
        "device": values["device"].strip(),
        "execute": parse_bool("execute", values["execute"]),
        "execute_action": EXECUTE_ACTION,
        # realsense2_camera: /<camera_namespace>/<camera_name>/color/image_raw, aligned 16UC1 depth.
        "camera_names": [camera],
        "camera_namespaces": [f"/camera/{camera}"],
        "color_topic": "color/image_raw",
        "depth_topic": "aligned_depth_to_color/image_raw",
        "info_topic": "color/camera_info",
        "camera_pose_source": "tf",
    }


def _realsense(values: Mapping[str, str]) -> Include:
    return Include(
        "realsense2_camera",
        "rs_launch.py",
        {
            "serial_no": values["camera_serial"],
            "camera_name": values["camera_name"],
            "camera_namespace": "camera",
            "align_depth.enable": "true",
            "enable_color": "true",
            "enable_depth": "true",
        },
    )


def _launch_bool(value: bool) -> str:
    return "true" if value else "false"


def _parameters(
    values: Mapping[str, str], cell_path: str, executor_overrides: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    document = read_cell_file(cell_path)
    cliport = {**node_section(document, "cliport_node", cell_path), **_cliport_overrides(values)}
    executor = {
        **node_section(document, "moveit_executor", cell_path),
        "action_name": EXECUTE_ACTION,
        **executor_overrides,
    }
    offset = _tcp_offset(values["tcp_offset"])
    if offset is not None:
        executor["tcp_offset"] = offset
    return cliport, executor


def ur5_bringup(given: Mapping[str, str], share: Path, distro: str) -> Bringup:
    """The UR5 / UR5e cell: UR driver, ur_moveit_config, RealSense, CLIPort node and MoveIt executor."""
    check_distro(distro)
    values = values_with_defaults(UR5_ARGUMENTS, given)
    mock = parse_bool("use_mock_hardware", values["use_mock_hardware"])
    controller = _ros_name("joint_controller", values["joint_controller"])
    ur_type = _ros_name("ur_type", values["ur_type"])
    robot_ip = _ip("robot_ip", values["robot_ip"])
    cell = values["cell_config"] or str(share / "config" / "ur5.yaml")
    cliport, executor = _parameters(values, cell, {"controllers": [controller]})
    driver = Include(
        "ur_robot_driver",
        "ur_control.launch.py",
        {
            "ur_type": ur_type,
            "robot_ip": robot_ip,
            "use_mock_hardware": _launch_bool(mock),
            "initial_joint_controller": controller,
            "launch_rviz": "false",
        },
    )
    moveit = Include(
        "ur_moveit_config",
        "ur_moveit.launch.py",
        {
            "ur_type": ur_type,
            "launch_rviz": _launch_bool(parse_bool("launch_rviz", values["launch_rviz"])),
        },
    )
    return Bringup([driver, moveit, _realsense(values)], cliport, executor, extra_nodes=console_nodes(values))


def franka_bringup(given: Mapping[str, str], share: Path, distro: str) -> Bringup:
    """The Franka FR3 cell: franka_ros2's MoveIt bringup (driver, move_group, gripper), RealSense, CLIPort node
    and MoveIt executor."""
    check_distro(distro)
    values = values_with_defaults(FRANKA_ARGUMENTS, given)
    fake = parse_bool("use_fake_hardware", values["use_fake_hardware"])
    robot_ip = _ip("robot_ip", values["robot_ip"])
    gripper = values["gripper"].strip()
    if gripper not in FRANKA_GRIPPERS:
        raise BringupError(f"launch argument gripper:={gripper!r}: allowed {' | '.join(FRANKA_GRIPPERS)}")
    hand = gripper == "franka_hand"
    if hand:
        overrides: dict[str, Any] = {"ee_link": FRANKA_HAND_TCP, "gripper.type": "franka_hand"}
    else:
        # Without the hand, fr3_hand_tcp does not exist: the cup hangs from the flange, at its measured length.
        if not values["tcp_offset"].strip():
            raise BringupError(
                "gripper:=suction needs tcp_offset:='[0.0, 0.0, L]': the suction cup's tip in fr3_link8's frame, "
                "measured on the cell (with the hand's 0 the arm would drive the flange into the table)"
            )
        overrides = {"ee_link": FRANKA_FLANGE, "gripper.type": "suction_service"}
    cell = values["cell_config"] or str(share / "config" / "franka.yaml")
    cliport, executor = _parameters(values, cell, overrides)
    franka = Include(
        "franka_fr3_moveit_config",
        "moveit.launch.py",
        {
            "robot_ip": robot_ip,
            "use_fake_hardware": _launch_bool(fake),
            "load_gripper": _launch_bool(hand),
        },
    )
    # franka_bringup/urdf/franka_arm.urdf.xacro's arguments, as franka_fr3_moveit_config's moveit.launch.py
    # gives them (franka_ros2 3.4.0).
    mappings = {
        "hand": _launch_bool(hand),
        "robot_type": "fr3",
        "ee_id": FRANKA_EE_ID,
        "robot_ip": robot_ip,
        "use_fake_hardware": _launch_bool(fake),
        "fake_sensor_commands": "false",
    }
    extra = []
    if fake and hand:
        # franka_ros2 serves no gripper actions on fake hardware: a simulated hand keeps the dry run whole.
        extra.append(
            NodeSpec(
                "cliport_ros",
                "fake_franka_hand",
                "fake_franka_hand",
                {"action": executor.get("gripper.action", FRANKA_GRIPPER_NODE)},
            )
        )
    return Bringup(
        [franka, _realsense(values)],
        cliport,
        executor,
        description_mappings=mappings,
        extra_nodes=extra + console_nodes(values),
    )


def moveit_controllers(document: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    """The moveit_simple_controller_manager block for ``names`` only, from a MoveIt controllers file."""
    missing = [name for name in names if name not in document]
    if missing:
        raise BringupError(
            f"controllers {missing} are not in the MoveIt controllers file "
            f"(it has {sorted(k for k in document if k != 'controller_names')})"
        )
    return {"controller_names": list(names), **{name: document[name] for name in names}}


GAZEBO_ARGUMENTS = [
    Argument("ur_type", "ur5e", "UR model: ur5 | ur5e (any ur_type of ur_simulation_gz)"),
    Argument(
        "world_file", "", "Gazebo world; empty = config/gazebo/cliport_table.sdf (table, blocks, bowls, RGB-D camera)"
    ),
    Argument("gazebo_gui", "true", "start Gazebo's GUI"),
    Argument("launch_rviz", "true", "start MoveIt's RViz"),
    Argument("camera_name", "camera", "the camera's topic namespace /camera/<camera_name>/ (as a RealSense)"),
    Argument("cell_config", "", "cell parameter file; empty = config/ur5.yaml"),
    Argument("checkpoint", "", "policy checkpoint; empty = the shipped model"),
    Argument("device", "auto", "auto | cpu | cuda | cuda:N"),
    Argument("execute", "false", "send decisions to the arm; false = predict and publish only"),
    *_CONSOLE,
]

# The simulated camera's Gazebo topic (the <topic> of config/gazebo/cliport_table.sdf's rgbd_camera sensor) and
# what gz-sensors publishes under it.
GAZEBO_CAMERA_TOPIC = "/cliport_camera"
GAZEBO_SUCTION_SERVICE = "/suction/set"


def ur5_gazebo_bringup(given: Mapping[str, str], share: Path, distro: str) -> Bringup:
    """The UR cell simulated in Gazebo: ur_simulation_gz (gz_ros2_control) with a CLIPort table world, MoveIt
    on sim time, the RGB-D camera bridged to the RealSense topic layout, its pose as a calibration file, a
    simulated suction cup, the CLIPort node and the MoveIt executor."""
    check_distro(distro)
    values = values_with_defaults(GAZEBO_ARGUMENTS, given)
    ur_type = _ros_name("ur_type", values["ur_type"])
    world = values["world_file"] or str(share / "config" / "gazebo" / "cliport_table.sdf")
    cell = values["cell_config"] or str(share / "config" / "ur5.yaml")
    # The simulated robot has no UR IO controller: the cup is a SetBool service of fake_suction.
    policy_values = {**values, "camera_serial": "", "tcp_offset": ""}
    cliport, executor = _parameters(
        policy_values, cell, {"gripper.type": "suction_service", "gripper.service": GAZEBO_SUCTION_SERVICE}
    )
    cliport["use_sim_time"] = executor["use_sim_time"] = True
    controller = executor.get("controllers", ["scaled_joint_trajectory_controller"])
    simulation = Include(
        "ur_simulation_gz",
        "ur_sim_control.launch.py",
        {
            "ur_type": ur_type,
            "world_file": world,
            "launch_rviz": "false",
            "gazebo_gui": _launch_bool(parse_bool("gazebo_gui", values["gazebo_gui"])),
            "initial_joint_controller": controller[0],
        },
    )
    moveit = Include(
        "ur_moveit_config",
        "ur_moveit.launch.py",
        {
            "ur_type": ur_type,
            "launch_rviz": _launch_bool(parse_bool("launch_rviz", values["launch_rviz"])),
            "use_sim_time": "true",
        },
    )
    namespace = cliport["camera_namespaces"][0]
    bridged = [
        ("image", "sensor_msgs/msg/Image", "gz.msgs.Image", cliport["color_topic"]),
        ("depth_image", "sensor_msgs/msg/Image", "gz.msgs.Image", cliport["depth_topic"]),
        ("camera_info", "sensor_msgs/msg/CameraInfo", "gz.msgs.CameraInfo", cliport["info_topic"]),
    ]
    bridge = NodeSpec(
        "ros_gz_bridge",
        "parameter_bridge",
        "cliport_camera_bridge",
        {"use_sim_time": True},
        arguments=[f"{GAZEBO_CAMERA_TOPIC}/{gz}@{ros}[{gz_type}" for gz, ros, gz_type, _ in bridged],
        remappings=[(f"{GAZEBO_CAMERA_TOPIC}/{gz}", f"{namespace}/{topic}") for gz, _, _, topic in bridged],
    )
    suction = NodeSpec("cliport_ros", "fake_suction", "fake_suction", {"service": GAZEBO_SUCTION_SERVICE})
    return Bringup(
        [simulation, moveit],
        cliport,
        executor,
        extra_nodes=[bridge, suction, *console_nodes(values)],
        calibration_file=str(share / "config" / "gazebo" / "camera_calibration.yaml"),
    )
