"""Pieces the real-cell launch files share (imported by launch/*_bringup.launch.py on a ROS 2 machine).

Needs ROS 2's `launch`, `launch_ros` and `ament_index_python`, which only a real ROS install has. What each
bringup starts is decided by cliport_ros.ros.bringup from the performed argument values (plain data, tested
without launch); this module only turns that into launch actions.
"""

import os
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, LogInfo
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from cliport_ros.ros.bringup import Argument, Bringup, Include


def share() -> Path:
    return Path(get_package_share_directory("cliport_ros"))


def own_config_path(name):
    """A file of this package's config/ folder, as a path (MoveItConfigsBuilder reads it at launch time)."""
    return str(share() / "config" / name)


def declare(arguments: list[Argument]) -> list[DeclareLaunchArgument]:
    return [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description) for a in arguments]


def performed(context, arguments: list[Argument]) -> dict[str, str]:
    """The launch arguments' values as strings (what the bringup builders take)."""
    return {a.name: LaunchConfiguration(a.name).perform(context) for a in arguments}


def ros_distro() -> str:
    return os.environ.get("ROS_DISTRO", "")


def include(spec: Include) -> IncludeLaunchDescription:
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare(spec.package), "launch", spec.launch_file])
        ),
        launch_arguments=list(spec.arguments.items()),
    )


def cliport_node(bringup: Bringup) -> Node:
    # One dict of final, typed values: no substitution inside, nothing applied after it.
    return Node(
        package="cliport_ros",
        executable="cliport_node",
        name="cliport_node",
        output="screen",
        parameters=[bringup.cliport_parameters],
    )


def extra_nodes(bringup: Bringup) -> list[Node]:
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            output="screen",
            parameters=[spec.parameters],
            arguments=spec.arguments,
            remappings=spec.remappings,
        )
        for spec in bringup.extra_nodes
    ]


def ur_moveit_parameters(ur_type: str) -> dict:
    """MoveItPy's parameters on a UR cell (ur_moveit_config; the robot description comes from the driver's
    topic), for the executor of the real and the Gazebo bringup."""
    from moveit_configs_utils import MoveItConfigsBuilder

    return (
        MoveItConfigsBuilder(robot_name="ur", package_name="ur_moveit_config")
        .robot_description_semantic(Path("srdf") / "ur.srdf.xacro", {"name": ur_type})
        .planning_pipelines(pipelines=["ompl", "pilz_industrial_motion_planner"], default_planning_pipeline="ompl")
        .pilz_cartesian_limits(file_path=own_config_path("moveit_py_pilz_cartesian_limits.yaml"))
        .moveit_cpp(file_path=own_config_path("moveit_py_ur5.yaml"))
        .to_moveit_configs()
        .to_dict()
    )


def moveit_executor(bringup: Bringup, *moveit_parameters: dict) -> Node:
    """The executor: MoveIt's parameters first, then the bringup's own (which nothing is applied after)."""
    return Node(
        package="cliport_ros",
        executable="moveit_executor",
        name="moveit_executor",
        output="screen",
        parameters=[*moveit_parameters, bringup.executor_parameters],
    )


def camera_calibration(context, path: str | None = None):
    """Static TF base -> camera from a calibration file, or easy_handeye2's own publisher, or a warning."""
    from cliport_ros.execution.calibration import load_camera_calibration

    path = LaunchConfiguration("calibration_file").perform(context) if path is None else path
    name = "" if path else LaunchConfiguration("handeye_calibration_name").perform(context)
    if path and name:
        raise RuntimeError("give calibration_file or handeye_calibration_name, not both")
    if name:
        return [include(Include("easy_handeye2", "publish.launch.py", {"name": name}))]
    if not path:
        return [
            LogInfo(
                msg="no camera calibration given (calibration_file / handeye_calibration_name): "
                "the CLIPort node will find no TF from the base frame to the camera "
                "and will not act"
            )
        ]
    calibration = load_camera_calibration(os.path.expanduser(path))
    return [
        Node(
            package="tf2_ros",
            executable="static_transform_publisher",
            name="camera_calibration_tf",
            output="log",
            arguments=calibration.static_transform_arguments(),
        )
    ]
