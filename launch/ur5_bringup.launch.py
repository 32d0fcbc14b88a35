"""A real UR5 / UR5e cell: UR driver, MoveIt, RealSense, camera calibration TF, CLIPort node, MoveIt executor.

    ros2 launch cliport_ros ur5_bringup.launch.py robot_ip:=192.168.1.102 ur_type:=ur5e \
        calibration_file:=~/.ros2/easy_handeye2/calibrations/ur5_cell.calib

``execute`` defaults to false: the CLIPort node predicts and publishes but never sends a goal, so a first
launch never moves the arm. Give execute:=true only after the dry run of docs/real_cell.md.
Written against the launch / launch_ros / moveit_configs_utils APIs of ROS 2 Jazzy; not run on a real cell
when it was written (see docs/real_cell.md, "What was verified").
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    OpaqueFunction,
    RegisterEventHandler,
)
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from moveit_configs_utils import MoveItConfigsBuilder

from cliport_ros.ros.launch_support import EXECUTE_ACTION, camera_calibration, include, own_config, own_config_path


def generate_launch_description():
    cfg = LaunchConfiguration
    args = [
        DeclareLaunchArgument("ur_type", default_value="ur5e",
                              description="UR model: ur5 | ur5e (any ur_type)"),
        DeclareLaunchArgument("robot_ip", default_value="192.168.56.101",
                              description="the robot's IP address"),
        DeclareLaunchArgument("use_mock_hardware", default_value="false",
                              description="ros2_control mock hardware instead of the robot"),
        DeclareLaunchArgument("joint_controller", default_value="scaled_joint_trajectory_controller",
                              description="the trajectory controller the driver starts and MoveIt executes "
                                          "on (joint_trajectory_controller on newer driver releases)"),
        DeclareLaunchArgument("launch_rviz", default_value="true", description="start MoveIt's RViz"),
        DeclareLaunchArgument("camera_serial", default_value="",
                              description="RealSense serial number; empty = the first camera found"),
        DeclareLaunchArgument("camera_name", default_value="camera", description="RealSense camera name"),
        DeclareLaunchArgument("calibration_file", default_value="",
                              description="camera calibration YAML / easy_handeye2 .calib file (static TF)"),
        DeclareLaunchArgument("handeye_calibration_name", default_value="",
                              description="or an easy_handeye2 calibration name, published by easy_handeye2"),
        DeclareLaunchArgument("cell_config", default_value=own_config("ur5.yaml"),
                              description="cell parameter file (executor and shared base frame / workspace)"),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="policy checkpoint; empty = the shipped model"),
        DeclareLaunchArgument("device", default_value="auto", description="auto | cpu | cuda | cuda:N"),
        DeclareLaunchArgument("execute", default_value="false",
                              description="send decisions to the arm; false = predict and publish only"),
    ]

    ur_driver = include("ur_robot_driver", "ur_control.launch.py", {
        "ur_type": cfg("ur_type"), "robot_ip": cfg("robot_ip"), "use_mock_hardware": cfg("use_mock_hardware"),
        "initial_joint_controller": cfg("joint_controller"), "launch_rviz": "false",
    })
    moveit = include("ur_moveit_config", "ur_moveit.launch.py", {
        "ur_type": cfg("ur_type"), "launch_rviz": cfg("launch_rviz"),
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
            # realsense2_camera: /<camera_namespace>/<camera_name>/color/image_raw, aligned 16UC1 depth.
            "camera_names": [cfg("camera_name")],
            "camera_namespaces": [PathJoinSubstitution(["/camera", cfg("camera_name")])],
            "color_topic": "color/image_raw", "depth_topic": "aligned_depth_to_color/image_raw",
            "info_topic": "color/camera_info", "camera_pose_source": "tf",
        }],
    )

    # MoveItPy inside the executor reads these parameters (robot description from the driver's topic).
    moveit_config = (
        MoveItConfigsBuilder(robot_name="ur", package_name="ur_moveit_config")
        .robot_description_semantic(Path("srdf") / "ur.srdf.xacro", {"name": cfg("ur_type")})
        .planning_pipelines(pipelines=["ompl", "pilz_industrial_motion_planner"],
                            default_planning_pipeline="ompl")
        .pilz_cartesian_limits(file_path=own_config_path("moveit_py_pilz_cartesian_limits.yaml"))
        .moveit_cpp(file_path=own_config_path("moveit_py_ur5.yaml"))
        .to_moveit_configs()
    )
    executor = Node(
        package="cliport_ros", executable="moveit_executor", name="moveit_executor", output="screen",
        parameters=[moveit_config.to_dict(), cfg("cell_config"), {
            "action_name": EXECUTE_ACTION, "controllers": [cfg("joint_controller")],
        }],
    )
    # Start the executor once the driver publishes the robot description, as ur_moveit.launch.py does.
    wait_for_description = Node(package="ur_robot_driver", executable="wait_for_robot_description",
                                output="screen")

    return LaunchDescription(args + [
        ur_driver, moveit, camera, OpaqueFunction(function=camera_calibration), cliport, wait_for_description,
        RegisterEventHandler(OnProcessExit(target_action=wait_for_description, on_exit=[executor])),
    ])
