"""A real Franka FR3 cell: franka_ros2 (driver, MoveIt, gripper), RealSense, camera calibration TF, CLIPort
node, MoveIt executor.

    ros2 launch cliport_ros franka_bringup.launch.py robot_ip:=172.16.0.2 \
        calibration_file:=~/.ros2/easy_handeye2/calibrations/fr3_cell.calib

``execute`` defaults to false: the CLIPort node predicts and publishes but never sends a goal, so a first
launch never moves the arm. Give execute:=true only after the dry run of docs/real_cell.md.
What is started, with which parameters, is decided by cliport_ros.ros.bringup.franka_bringup from the
performed argument values (tested without launch). Needs franka_ros2 >= 3.4.0 on ROS 2 Jazzy (the URDF
franka_bringup/urdf/franka_arm.urdf.xacro and config/fr3_joint_limits.yaml; docs/real_cell.md).
"""

import os

import yaml
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import OpaqueFunction
from moveit_configs_utils import MoveItConfigsBuilder

from cliport_ros.ros.bringup import FRANKA_ARGUMENTS, franka_bringup, moveit_controllers
from cliport_ros.ros.launch_support import (
    camera_calibration,
    cliport_node,
    declare,
    extra_nodes,
    include,
    moveit_executor,
    own_config_path,
    performed,
    ros_distro,
    share,
)


def launch_setup(context):
    bringup = franka_bringup(performed(context, FRANKA_ARGUMENTS), share(), ros_distro())
    mappings = bringup.description_mappings
    # MoveItPy's parameters, built as franka_fr3_moveit_config's moveit.launch.py builds move_group's. The
    # planning pipelines (with planning_plugins) come from our moveit_cpp file, which to_dict() applies last:
    # Franka's ompl_planning.yaml has none and names panda_arm.
    moveit_config = (
        MoveItConfigsBuilder(robot_name="fr3", package_name="franka_fr3_moveit_config")
        .robot_description(
            file_path=os.path.join(get_package_share_directory("franka_bringup"), "urdf", "franka_arm.urdf.xacro"),
            mappings=mappings,
        )
        .robot_description_semantic(
            file_path=os.path.join(
                get_package_share_directory("franka_description"), "robots", "fr3", "fr3.srdf.xacro"
            ),
            mappings={"hand": mappings["hand"], "ee_id": mappings["ee_id"]},
        )
        .robot_description_kinematics(file_path="config/kinematics.yaml")
        .joint_limits(file_path="config/fr3_joint_limits.yaml")
        .pilz_cartesian_limits(file_path=own_config_path("moveit_py_pilz_cartesian_limits.yaml"))
        .moveit_cpp(file_path=own_config_path("moveit_py_franka.yaml"))
        .to_moveit_configs()
    )
    with open(
        os.path.join(get_package_share_directory("franka_fr3_moveit_config"), "config", "fr3_controllers.yaml")
    ) as file:
        controllers = yaml.safe_load(file)
    trajectory_execution = {
        # Only the arm's controllers: MoveItPy never drives the hand (the gripper adapter does).
        "moveit_simple_controller_manager": moveit_controllers(controllers, bringup.executor_parameters["controllers"]),
        "moveit_controller_manager": "moveit_simple_controller_manager/MoveItSimpleControllerManager",
        "moveit_manage_controllers": True,
    }
    executor = moveit_executor(bringup, moveit_config.to_dict(), trajectory_execution)
    return (
        [include(spec) for spec in bringup.includes]
        + camera_calibration(context)
        + [cliport_node(bringup), executor, *extra_nodes(bringup)]
    )


def generate_launch_description():
    return LaunchDescription(declare(FRANKA_ARGUMENTS) + [OpaqueFunction(function=launch_setup)])
