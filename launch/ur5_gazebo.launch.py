"""The UR cell in Gazebo instead of hardware: ur_simulation_gz (gz_ros2_control), a CLIPort table world with an
RGB-D camera bridged by ros_gz_bridge to the topics cliport_node reads, MoveIt on sim time, the camera's pose
as a static TF, a simulated suction cup, the CLIPort node and the MoveIt executor, as on the real cell.

    ros2 launch cliport_ros ur5_gazebo.launch.py [ur_type:=ur5e] [execute:=true]

What is started is decided by cliport_ros.ros.bringup.ur5_gazebo_bringup (tested without launch). Needs
ur_simulation_gz, ros_gz_bridge and Gazebo Harmonic on ROS 2 Jazzy (docs/real_cell.md, "Gazebo"). Not run on
the machines this was written on (Gazebo cannot be installed there).
"""

from pathlib import Path

from launch.actions import OpaqueFunction
from launch_ros.actions import Node
from moveit_configs_utils import MoveItConfigsBuilder

from cliport_ros.ros.bringup import GAZEBO_ARGUMENTS, ur5_gazebo_bringup
from cliport_ros.ros.launch_support import (
    camera_calibration,
    cliport_node,
    declare,
    extra_nodes,
    include,
    own_config_path,
    performed,
    ros_distro,
    share,
)
from launch import LaunchDescription


def launch_setup(context):
    values = performed(context, GAZEBO_ARGUMENTS)
    bringup = ur5_gazebo_bringup(values, share(), ros_distro())
    moveit_config = (
        MoveItConfigsBuilder(robot_name="ur", package_name="ur_moveit_config")
        .robot_description_semantic(Path("srdf") / "ur.srdf.xacro", {"name": values["ur_type"]})
        .planning_pipelines(pipelines=["ompl", "pilz_industrial_motion_planner"], default_planning_pipeline="ompl")
        .pilz_cartesian_limits(file_path=own_config_path("moveit_py_pilz_cartesian_limits.yaml"))
        .moveit_cpp(file_path=own_config_path("moveit_py_ur5.yaml"))
        .to_moveit_configs()
    )
    executor = Node(
        package="cliport_ros",
        executable="moveit_executor",
        name="moveit_executor",
        output="screen",
        parameters=[moveit_config.to_dict(), bringup.executor_parameters],
    )
    return (
        [include(spec) for spec in bringup.includes]
        + camera_calibration(context, bringup.calibration_file)
        + [cliport_node(bringup), executor, *extra_nodes(bringup)]
    )


def generate_launch_description():
    return LaunchDescription(declare(GAZEBO_ARGUMENTS) + [OpaqueFunction(function=launch_setup)])
