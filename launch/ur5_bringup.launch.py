"""A real UR5 / UR5e cell: UR driver, MoveIt, RealSense, camera calibration TF, CLIPort node, MoveIt executor.

    ros2 launch cliport_ros ur5_bringup.launch.py robot_ip:=192.168.1.102 ur_type:=ur5e \
        calibration_file:=~/.ros2/easy_handeye2/calibrations/ur5_cell.calib

``execute`` defaults to false: the CLIPort node predicts and publishes but never sends a goal, so a first
launch never moves the arm. Give execute:=true only after the dry run of docs/real_cell.md.
What is started, with which parameters, is decided by cliport_ros.ros.bringup.ur5_bringup from the performed
argument values (tested without launch); ROS 2 Jazzy's launch / launch_ros / moveit_configs_utils APIs.
"""

from launch import LaunchDescription
from launch.actions import OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch_ros.actions import Node

from cliport_ros.ros.bringup import UR5_ARGUMENTS, ur5_bringup
from cliport_ros.ros.launch_support import (
    camera_calibration,
    cliport_node,
    declare,
    include,
    moveit_executor,
    performed,
    ros_distro,
    share,
    ur_moveit_parameters,
)


def launch_setup(context):
    values = performed(context, UR5_ARGUMENTS)
    bringup = ur5_bringup(values, share(), ros_distro())
    # MoveItPy inside the executor reads these parameters (robot description from the driver's topic).
    executor = moveit_executor(bringup, ur_moveit_parameters(values["ur_type"]))
    # Start the executor once the driver publishes the robot description, as ur_moveit.launch.py does.
    wait_for_description = Node(package="ur_robot_driver", executable="wait_for_robot_description", output="screen")
    return (
        [include(spec) for spec in bringup.includes]
        + camera_calibration(context)
        + [
            cliport_node(bringup),
            wait_for_description,
            RegisterEventHandler(OnProcessExit(target_action=wait_for_description, on_exit=[executor])),
        ]
    )


def generate_launch_description():
    return LaunchDescription(declare(UR5_ARGUMENTS) + [OpaqueFunction(function=launch_setup)])
