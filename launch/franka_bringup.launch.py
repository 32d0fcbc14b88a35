"""A real Franka FR3 cell: franka_ros2 (driver, MoveIt, gripper), RealSense, camera calibration TF, CLIPort
node, MoveIt executor.

    ros2 launch cliport_ros franka_bringup.launch.py robot_ip:=172.16.0.2 \
        calibration_file:=~/.ros2/easy_handeye2/calibrations/fr3_cell.calib

``execute`` defaults to false: the CLIPort node predicts and publishes but never sends a goal, so a first
launch never moves the arm. Give execute:=true only after the dry run of docs/real_cell.md.
Written against the launch / launch_ros / moveit_configs_utils APIs of ROS 2 Jazzy and franka_ros2's
franka_fr3_moveit_config; not run on a real cell when it was written (see docs/real_cell.md).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from moveit_configs_utils import MoveItConfigsBuilder

from cliport_ros.ros.launch_support import EXECUTE_ACTION, camera_calibration, include, own_config, own_config_path


# franka_ros2's end-effector id for the Franka Hand.
EE_ID = "franka_hand"


def moveit_executor(context):
    """The executor with MoveItPy's parameters, built as franka_fr3_moveit_config's moveit.launch.py builds
    move_group's (at launch time: the xacro mappings need the argument values)."""
    cfg = LaunchConfiguration
    gripper = cfg("gripper").perform(context)
    if gripper not in ("franka_hand", "suction"):
        raise RuntimeError(f"gripper:={gripper!r}: allowed franka_hand | suction")
    hand = "true" if gripper == "franka_hand" else "false"
    moveit_config = (
        MoveItConfigsBuilder(robot_name="fr3", package_name="franka_fr3_moveit_config")
        .robot_description(
            file_path=os.path.join(get_package_share_directory("franka_bringup"), "urdf",
                                   "franka_arm.urdf.xacro"),
            mappings={"hand": hand, "ee_id": EE_ID, "robot_ip": cfg("robot_ip").perform(context),
                      "use_fake_hardware": cfg("use_fake_hardware").perform(context),
                      "fake_sensor_commands": "false"})
        .robot_description_semantic(
            file_path=os.path.join(get_package_share_directory("franka_description"), "robots", "fr3",
                                   "fr3.srdf.xacro"),
            mappings={"hand": hand, "ee_id": EE_ID})
        .robot_description_kinematics(file_path="config/kinematics.yaml")
        .planning_pipelines(pipelines=["ompl", "pilz_industrial_motion_planner"],
                            default_planning_pipeline="ompl")
        .pilz_cartesian_limits(file_path=own_config_path("moveit_py_pilz_cartesian_limits.yaml"))
        .moveit_cpp(file_path=own_config_path("moveit_py_franka.yaml"))
        .to_moveit_configs()
    )
    with open(os.path.join(get_package_share_directory("franka_fr3_moveit_config"), "config",
                           "fr3_controllers.yaml")) as file:
        import yaml

        controllers = yaml.safe_load(file)
    trajectory_execution = {
        "moveit_simple_controller_manager": controllers,
        "moveit_controller_manager": "moveit_simple_controller_manager/MoveItSimpleControllerManager",
        "moveit_manage_controllers": True,
    }
    overrides = {"action_name": EXECUTE_ACTION}
    if gripper == "suction":
        # A vacuum on a std_srvs/SetBool service; the TCP offset of the cup is in the cell file.
        overrides["gripper.type"] = "suction_service"
    return [Node(
        package="cliport_ros", executable="moveit_executor", name="moveit_executor", output="screen",
        parameters=[moveit_config.to_dict(), trajectory_execution, cfg("cell_config"), overrides],
    )]


def generate_launch_description():
    cfg = LaunchConfiguration
    args = [
        DeclareLaunchArgument("robot_ip", default_value="172.16.0.2", description="the robot's IP address"),
        DeclareLaunchArgument("use_fake_hardware", default_value="false",
                              description="ros2_control fake hardware instead of the robot"),
        DeclareLaunchArgument("gripper", default_value="franka_hand",
                              description="franka_hand (GripperCommand) | suction (std_srvs/SetBool)"),
        DeclareLaunchArgument("camera_serial", default_value="",
                              description="RealSense serial number; empty = the first camera found"),
        DeclareLaunchArgument("camera_name", default_value="camera", description="RealSense camera name"),
        DeclareLaunchArgument("calibration_file", default_value="",
                              description="camera calibration YAML / easy_handeye2 .calib file (static TF)"),
        DeclareLaunchArgument("handeye_calibration_name", default_value="",
                              description="or an easy_handeye2 calibration name, published by easy_handeye2"),
        DeclareLaunchArgument("cell_config", default_value=own_config("franka.yaml"),
                              description="cell parameter file (executor and shared base frame / workspace)"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="policy checkpoint; empty = the shipped model"),
        DeclareLaunchArgument("device", default_value="auto", description="auto | cpu | cuda | cuda:N"),
        DeclareLaunchArgument("execute", default_value="false",
                              description="send decisions to the arm; false = predict and publish only"),
    ]

    # Driver, move_group, RViz and the franka_gripper node (GripperCommand on /fr3_gripper/gripper_action).
    franka = include("franka_fr3_moveit_config", "moveit.launch.py", {
        "robot_ip": cfg("robot_ip"), "use_fake_hardware": cfg("use_fake_hardware"),
        "load_gripper": PythonExpression(["'true' if '", cfg("gripper"), "' == 'franka_hand' else 'false'"]),
    })
    camera = include("realsense2_camera", "rs_launch.py", {
        "serial_no": cfg("camera_serial"), "camera_name": cfg("camera_name"), "camera_namespace": "camera",
        "align_depth.enable": "true", "enable_color": "true", "enable_depth": "true",
    })
    cliport = Node(
        package="cliport_ros", executable="cliport_node", name="cliport_node", output="screen",
        parameters=[own_config("cliport_node.yaml"), cfg("cell_config"), {
            "checkpoint": cfg("checkpoint"), "device": cfg("device"), "execute": cfg("execute"),
            "execute_action": EXECUTE_ACTION,
            "camera_names": [cfg("camera_name")],
            "camera_namespaces": [PathJoinSubstitution(["/camera", cfg("camera_name")])],
            "color_topic": "color/image_raw", "depth_topic": "aligned_depth_to_color/image_raw",
            "info_topic": "color/camera_info", "camera_pose_source": "tf",
        }],
    )
    return LaunchDescription(args + [
        franka, camera, OpaqueFunction(function=camera_calibration), cliport,
        OpaqueFunction(function=moveit_executor),
    ])
