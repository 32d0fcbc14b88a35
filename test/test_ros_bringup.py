"""The real-cell bringups' parameters, delivered as launch_ros delivers them (test/launch_ros_delivery.py, a
rule-for-rule double of launch_ros 0.26.6) to the real node classes over real rclpy: every parameter accepted
with its type, and launch arguments win over the cell files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import rclpy
import yaml
from execution_doubles import RecordingGripper, RecordingMotionBackend
from launch_ros_delivery import ConfigurationDouble, deliver

from cliport_ros.ros.bringup import (
    FRANKA_ARGUMENTS,
    UR5_ARGUMENTS,
    BringupError,
    Include,
    NodeSpec,
    check_distro,
    franka_bringup,
    moveit_controllers,
    ur5_bringup,
    ur5_gazebo_bringup,
)
from cliport_ros.ros.cliport_node import CliportNode
from cliport_ros.ros.moveit_executor import MoveItExecutorNode

REPO = Path(__file__).resolve().parents[1]
RCLPY_OWN = ("use_sim_time", "start_type_description_service")


class Delivered:
    """A process started by launch with ``parameters`` (its own rclpy Context, as a process has)."""

    def __init__(self, parameters, folder: Path, values=None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.context = rclpy.Context()
        rclpy.init(context=self.context, args=deliver(parameters, values or {}, folder))
        self.nodes: list = []

    def cliport_node(self) -> CliportNode:
        self.nodes.append(CliportNode(context=self.context))
        return self.nodes[-1]

    def executor(self) -> MoveItExecutorNode:
        node = MoveItExecutorNode(
            context=self.context,
            backend_factory=lambda n, c: RecordingMotionBackend(),
            gripper_factory=lambda n, c, g: RecordingGripper(),
        )
        self.nodes.append(node)
        return node

    def close(self) -> None:
        for node in self.nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def deliver_to(tmp_path):
    opened: list[Delivered] = []

    def make(parameters, name="node", values=None) -> Delivered:
        opened.append(Delivered(parameters, tmp_path / name, values))
        return opened[-1]

    yield make
    for process in opened:
        process.close()


def received(node, parameters: dict) -> dict:
    """What the node holds for each delivered parameter; names it never declared are an error."""
    declared = set(node._parameters)
    unknown = set(parameters) - declared
    assert not unknown, f"parameters the node does not declare (silently ignored by rclpy): {sorted(unknown)}"
    return {name: node.get_parameter(name).value for name in parameters}


def same(a, b) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def check_accepted(node, parameters: dict) -> None:
    got = received(node, parameters)
    wrong = {k: (parameters[k], got[k]) for k in parameters if not same(parameters[k], got[k])}
    assert not wrong, f"delivered vs held: {wrong}"


UR5_CASES = [
    {},
    {
        "execute": "true",
        "camera_name": "d435",
        "joint_controller": "joint_trajectory_controller",
        "checkpoint": "~/models/cell",
        "device": "cuda:0",
        "use_mock_hardware": "true",
    },
    {"tcp_offset": "[0.0, 0.0, 0.125]", "execute": "False"},
]


@pytest.mark.parametrize("values", UR5_CASES)
def test_ur5_bringup_parameters_reach_both_nodes_with_their_types(deliver_to, values):
    bringup = ur5_bringup(values, REPO, "jazzy")
    process = deliver_to([bringup.cliport_parameters], "cliport")
    check_accepted(process.cliport_node(), bringup.cliport_parameters)
    process = deliver_to([bringup.executor_parameters], "executor")
    node = process.executor()
    check_accepted(node, bringup.executor_parameters)
    assert node.config.ee_link == "tool0" and node.config.gripper.type == "suction_ur_io"


def test_launch_arguments_win_over_the_cell_file(deliver_to):
    bringup = ur5_bringup(
        {
            "joint_controller": "joint_trajectory_controller",
            "execute": "true",
            "camera_name": "d435",
            "tcp_offset": "[0, 0, 0.2]",
        },
        REPO,
        "jazzy",
    )
    cell = yaml.safe_load((REPO / "config" / "ur5.yaml").read_text())
    assert cell["moveit_executor"]["ros__parameters"]["controllers"] == ["scaled_joint_trajectory_controller"]
    node = deliver_to([bringup.executor_parameters], "executor").executor()
    assert node.config.controllers == ("joint_trajectory_controller",)
    assert node.config.tcp_offset == (0.0, 0.0, 0.2)
    cliport = deliver_to([bringup.cliport_parameters], "cliport").cliport_node()
    assert cliport.get_parameter("execute").value is True
    assert list(cliport.get_parameter("camera_names").value) == ["d435"]
    assert list(cliport.get_parameter("camera_namespaces").value) == ["/camera/d435"]
    # The cell file's shared section still reaches the CLIPort node.
    assert cliport.get_parameter("base_frame").value == "base_link"
    assert cliport.get_parameter("workspace.x_min").value == cell["/**"]["ros__parameters"]["workspace"]["x_min"]


def test_a_list_holding_one_substitution_arrives_as_a_string(deliver_to):
    """The double reproduces the crash of the bringups as they were: camera_names: [LaunchConfiguration]."""
    process = deliver_to(
        [
            {
                "camera_names": [ConfigurationDouble("camera_name")],
                "camera_namespaces": ["/camera/", ConfigurationDouble("camera_name")],
            }
        ],
        values={"camera_name": "camera"},
    )
    with pytest.raises(rclpy.exceptions.InvalidParameterTypeException, match="STRING_ARRAY"):
        process.cliport_node()


def test_a_section_named_after_the_node_beats_launch_dicts(deliver_to, tmp_path):
    """Why the bringups merge the cell file themselves: with the file and a dict both given (the bringups as
    they were), the file's moveit_executor section wins over the launch argument."""
    process = deliver_to([REPO / "config" / "ur5.yaml", {"controllers": ["joint_trajectory_controller"]}])
    assert process.executor().config.controllers == ("scaled_joint_trajectory_controller",)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"execute": "yes"}, "execute:='yes' must be true or false"),
        ({"use_mock_hardware": "ture"}, "use_mock_hardware:='ture' must be true or false"),
        ({"camera_name": "my camera"}, "camera_name:='my camera' must be a ROS name"),
        ({"robot_ip": "192.168.1.300"}, "must be an IPv4 address"),
        ({"tcp_offset": "[0, 0]"}, "must be a list of 3 numbers"),
        ({"cell_config": "/nonexistent/cell.yaml"}, "cannot read it"),
        ({"robot_ipp": "10.0.0.2"}, "unknown launch argument(s) ['robot_ipp']"),
    ],
)
def test_bad_launch_arguments_say_what_is_wrong(values, message):
    with pytest.raises(BringupError, match=__import__("re").escape(message)):
        ur5_bringup(values, REPO, "jazzy")


@pytest.mark.parametrize("distro", ["humble", "iron", "foxy", ""])
def test_unsupported_distributions_are_refused_before_anything_starts(distro):
    with pytest.raises(BringupError, match="not supported|ROS_DISTRO is not set"):
        ur5_bringup({"use_mock_hardware": "true"}, REPO, distro)
    with pytest.raises(BringupError):
        franka_bringup({"use_fake_hardware": "true"}, REPO, distro)
    for later in ("jazzy", "kilted", "rolling"):
        check_distro(later)


# The mock-hardware argument of each driver launch file, per release (see docs/real_cell.md, "Checked against
# upstream"): an argument the included file does not declare is dropped without a word.
DRIVER_MOCK_ARGUMENT = {
    ("ur_robot_driver", "ur_control.launch.py"): "use_mock_hardware",
    ("franka_fr3_moveit_config", "moveit.launch.py"): "use_fake_hardware",
}


@pytest.mark.parametrize("build, flag", [(ur5_bringup, "use_mock_hardware"), (franka_bringup, "use_fake_hardware")])
def test_the_mock_argument_reaches_the_driver_under_the_name_it_declares(build, flag):
    for value in ("true", "false"):
        bringup = build({flag: value}, REPO, "jazzy")
        drivers = [i for i in bringup.includes if (i.package, i.launch_file) in DRIVER_MOCK_ARGUMENT]
        assert len(drivers) == 1
        driver: Include = drivers[0]
        assert driver.arguments[DRIVER_MOCK_ARGUMENT[(driver.package, driver.launch_file)]] == value


def test_argument_tables_are_complete():
    for table in (UR5_ARGUMENTS, FRANKA_ARGUMENTS):
        names = [a.name for a in table]
        assert len(names) == len(set(names))
        assert next(a for a in table if a.name == "execute").default == "false"  # a first launch never moves


def test_ros_tests_run_with_rosidl_field_checks():
    from std_msgs.msg import Float32

    with pytest.raises(AssertionError, match="'data' field must be of type 'float'"):
        Float32(data=1)


FRANKA_CASES = [
    ({}, "fr3_hand_tcp", "franka_hand"),
    ({"gripper": "suction", "tcp_offset": "[0, 0, 0.11]", "execute": "true"}, "fr3_link8", "suction_service"),
    ({"use_fake_hardware": "true", "device": "cpu"}, "fr3_hand_tcp", "franka_hand"),
]


@pytest.mark.parametrize("values, ee_link, gripper", FRANKA_CASES)
def test_franka_bringup_parameters_reach_both_nodes_and_the_gripper_argument_wins(deliver_to, values, ee_link, gripper):
    bringup = franka_bringup(values, REPO, "jazzy")
    check_accepted(deliver_to([bringup.cliport_parameters], "cliport").cliport_node(), bringup.cliport_parameters)
    node = deliver_to([bringup.executor_parameters], "executor").executor()
    check_accepted(node, bringup.executor_parameters)
    # config/franka.yaml's own section says fr3_hand_tcp and franka_hand: the launch argument still decides.
    assert (node.config.ee_link, node.config.gripper.type) == (ee_link, gripper)
    hand = gripper == "franka_hand"
    assert bringup.description_mappings["hand"] == ("true" if hand else "false")
    assert bringup.includes[0].arguments["load_gripper"] == ("true" if hand else "false")
    if hand:
        assert node.config.gripper.action == "/franka_gripper"
        assert (node.config.gripper.open_position, node.config.gripper.closed_position) == (0.08, 0.0)
    else:
        assert node.config.tcp_offset == (0.0, 0.0, 0.11)


def test_franka_fake_hardware_gets_a_simulated_hand_and_real_hardware_does_not():
    """franka_ros2 starts no gripper server on fake hardware: the documented dry run ended in TIMEOUT."""
    fake = franka_bringup({"use_fake_hardware": "true"}, REPO, "jazzy")
    assert fake.extra_nodes == [
        NodeSpec("cliport_ros", "fake_franka_hand", "fake_franka_hand", {"action": "/franka_gripper"})
    ]
    assert franka_bringup({}, REPO, "jazzy").extra_nodes == []
    assert (
        franka_bringup(
            {"use_fake_hardware": "true", "gripper": "suction", "tcp_offset": "[0,0,0.1]"}, REPO, "jazzy"
        ).extra_nodes
        == []
    )


def test_franka_suction_needs_a_measured_tcp_offset():
    with pytest.raises(BringupError, match="gripper:=suction needs tcp_offset"):
        franka_bringup({"gripper": "suction"}, REPO, "jazzy")
    with pytest.raises(BringupError, match="allowed franka_hand | suction"):
        franka_bringup({"gripper": "robotiq"}, REPO, "jazzy")


def test_franka_description_mappings_are_the_urdfs_arguments():
    # franka_bringup/urdf/franka_arm.urdf.xacro's arguments as franka_fr3_moveit_config 3.4.0 passes them.
    mappings = franka_bringup({"robot_ip": "10.0.0.2"}, REPO, "jazzy").description_mappings
    assert mappings == {
        "hand": "true",
        "robot_type": "fr3",
        "ee_id": "franka_hand",
        "robot_ip": "10.0.0.2",
        "use_fake_hardware": "false",
        "fake_sensor_commands": "false",
    }


def test_moveit_controllers_keep_only_the_arms():
    # fr3_controllers.yaml of franka_fr3_moveit_config 3.4.0 (abridged to its structure).
    document = {
        "controller_names": ["fr3_arm_controller", "fr3_gripper"],
        "fr3_arm_controller": {"action_ns": "follow_joint_trajectory", "type": "FollowJointTrajectory"},
        "fr3_gripper": {"action_ns": "gripper_action", "type": "GripperCommand"},
    }
    block = moveit_controllers(document, ["fr3_arm_controller"])
    assert block == {"controller_names": ["fr3_arm_controller"], "fr3_arm_controller": document["fr3_arm_controller"]}
    with pytest.raises(BringupError, match=r"controllers \['arm'\] are not in the MoveIt controllers file"):
        moveit_controllers(document, ["arm"])


# ----- Gazebo -------------------------------------------------------------------------------------------------
GAZEBO = REPO / "config" / "gazebo"


@pytest.mark.parametrize("values", [{}, {"execute": "true", "camera_name": "sim", "ur_type": "ur5"}])
def test_gazebo_bringup_parameters_reach_both_nodes_on_sim_time(deliver_to, values):
    bringup = ur5_gazebo_bringup(values, REPO, "jazzy")
    cliport = deliver_to([bringup.cliport_parameters], "cliport").cliport_node()
    check_accepted(cliport, bringup.cliport_parameters)
    assert cliport.get_parameter("use_sim_time").value is True
    node = deliver_to([bringup.executor_parameters], "executor").executor()
    check_accepted(node, bringup.executor_parameters)
    # No UR IO controller runs in the simulation: the cup is fake_suction's SetBool service.
    suction = next(n for n in bringup.extra_nodes if n.executable == "fake_suction")
    assert (node.config.gripper.type, node.config.gripper.service) == ("suction_service", suction.parameters["service"])


def sdf() -> ET.Element:
    return ET.parse(GAZEBO / "cliport_table.sdf").getroot()


def test_the_gazebo_camera_is_bridged_to_the_topics_the_node_reads():
    bringup = ur5_gazebo_bringup({"camera_name": "sim"}, REPO, "jazzy")
    sensor = sdf().find(".//sensor[@type='rgbd_camera']")
    topic = "/" + sensor.findtext("topic").strip("/")
    bridge = next(n for n in bringup.extra_nodes if n.executable == "parameter_bridge")
    # gz-sensors' RGB-D camera publishes <topic>/image, <topic>/depth_image (32FC1, m), <topic>/camera_info.
    assert bridge.arguments == [
        f"{topic}/image@sensor_msgs/msg/Image[gz.msgs.Image",
        f"{topic}/depth_image@sensor_msgs/msg/Image[gz.msgs.Image",
        f"{topic}/camera_info@sensor_msgs/msg/CameraInfo[gz.msgs.CameraInfo",
    ]
    p = bringup.cliport_parameters
    assert dict(bridge.remappings) == {
        f"{topic}/image": f"/camera/sim/{p['color_topic']}",
        f"{topic}/depth_image": f"/camera/sim/{p['depth_topic']}",
        f"{topic}/camera_info": f"/camera/sim/{p['info_topic']}",
    }
    assert p["camera_namespaces"] == ["/camera/sim"] and p["camera_pose_source"] == "tf"
    plugins = {plugin.get("name") for plugin in sdf().iter("plugin")}
    assert "gz::sim::systems::Sensors" in plugins, "cameras render only with the Sensors system"


def test_the_gazebo_calibration_file_is_the_cameras_pose_in_the_world():
    import numpy as np

    from cliport_ros.execution.calibration import load_camera_calibration
    from cliport_ros.geometry.transforms import quaternion_to_matrix

    calibration = load_camera_calibration(ur5_gazebo_bringup({}, REPO, "jazzy").calibration_file)
    model = sdf().find(".//model[@name='cliport_camera']")
    x, y, z, roll, pitch, yaw = (float(v) for v in model.findtext("pose").split())
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    # SDF: R = Rz(yaw) Ry(pitch) Rx(roll); a gz camera looks along its +x with image up +z, right -y.
    link = (
        np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
        @ np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
        @ np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    )
    optical = link @ np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    assert calibration.translation == pytest.approx((x, y, z))
    assert quaternion_to_matrix(calibration.rotation) == pytest.approx(optical, abs=1e-9)
    sensor = model.find(".//sensor")
    assert sensor.findtext("gz_frame_id") == calibration.child_frame
    assert calibration.parent_frame == "base_link"


def test_the_gazebo_objects_lie_in_the_workspace():
    cell = yaml.safe_load((REPO / "config" / "ur5.yaml").read_text())["/**"]["ros__parameters"]["workspace"]
    objects = [m for m in sdf().iter("model") if m.get("name").endswith(("_block", "_bowl"))]
    assert len(objects) >= 4
    for model in objects:
        x, y = (float(v) for v in model.findtext("pose").split()[:2])
        assert cell["x_min"] < x < cell["x_max"] and cell["y_min"] < y < cell["y_max"], model.get("name")
