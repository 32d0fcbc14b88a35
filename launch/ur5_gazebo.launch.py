"""The UR cell in Gazebo instead of hardware: ur_simulation_gz (gz_ros2_control), a CLIPort table world with an
RGB-D camera bridged by ros_gz_bridge to the topics cliport_node reads, MoveIt on sim time, the camera's pose
as a static TF, a simulated suction cup, the CLIPort node and the MoveIt executor, as on the real cell.

    ros2 launch cliport_ros ur5_gazebo.launch.py [ur_type:=ur5e] [execute:=true]

What is started is decided by cliport_ros.ros.bringup.ur5_gazebo_bringup (tested without launch). Needs
ur_simulation_gz, ros_gz_bridge and Gazebo Harmonic on ROS 2 Jazzy (docs/real_cell.md, "Gazebo"). Not run on
the machines this was written on (Gazebo cannot be installed there).
"""

from launch import LaunchDescription
from launch.actions import OpaqueFunction

from cliport_ros.ros.bringup import GAZEBO_ARGUMENTS, ur5_gazebo_bringup
from cliport_ros.ros.launch_support import (
    camera_calibration,
    cliport_node,
    declare,
    extra_nodes,
    include,
    moveit_executor,
    performed,
    ros_distro,
    share,
    ur_moveit_parameters,
)


def launch_setup(context):
    values = performed(context, GAZEBO_ARGUMENTS)
    bringup = ur5_gazebo_bringup(values, share(), ros_distro())
    executor = moveit_executor(bringup, ur_moveit_parameters(values["ur_type"]))
    return (
        [include(spec) for spec in bringup.includes]
        + camera_calibration(context, bringup.calibration_file)
        + [cliport_node(bringup), executor, *extra_nodes(bringup)]
    )


def generate_launch_description():
    return LaunchDescription(declare(GAZEBO_ARGUMENTS) + [OpaqueFunction(function=launch_setup)])
