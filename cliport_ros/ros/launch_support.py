"""Pieces the real-cell launch files share (imported by launch/*_bringup.launch.py on a ROS 2 machine).

Needs ROS 2's `launch`, `launch_ros` and `ament_index_python`, which only a real ROS install has.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import IncludeLaunchDescription, LogInfo
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

# The one name both sides of ExecutePickPlace use.
EXECUTE_ACTION = "execute_pick_place"


def own_config(name):
    """A file of this package's config/ folder, as a substitution."""
    return PathJoinSubstitution([FindPackageShare("cliport_ros"), "config", name])


def own_config_path(name):
    """A file of this package's config/ folder, as a path (MoveItConfigsBuilder reads it at launch time)."""
    return os.path.join(get_package_share_directory("cliport_ros"), "config", name)


def include(package, launch_file, arguments):
    return IncludeLaunchDescription(
        PythonLaunchDescriptionSource(
            PathJoinSubstitution([FindPackageShare(package), "launch", launch_file])),
        launch_arguments=arguments.items(),
    )


def camera_calibration(context):
    """Static TF base -> camera from a calibration file, or easy_handeye2's own publisher, or a warning."""
    from cliport_ros.execution.calibration import load_camera_calibration

    path = LaunchConfiguration("calibration_file").perform(context)
    name = LaunchConfiguration("handeye_calibration_name").perform(context)
    if path and name:
        raise RuntimeError("give calibration_file or handeye_calibration_name, not both")
    if name:
        return [include("easy_handeye2", "publish.launch.py", {"name": name})]
    if not path:
        return [LogInfo(msg="no camera calibration given (calibration_file / handeye_calibration_name): "
                            "the CLIPort node will find no TF from the base frame to the camera "
                            "and will not act")]
    calibration = load_camera_calibration(os.path.expanduser(path))
    return [Node(package="tf2_ros", executable="static_transform_publisher", name="camera_calibration_tf",
                 output="log", arguments=calibration.static_transform_arguments())]
