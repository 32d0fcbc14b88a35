"""Simulated bringup in separate processes: the PyBullet bridge and the CLIPort node.

    ros2 launch cliport_ros sim_bringup.launch.py task:=put-block-in-bowl-seen-colors seed:=10001

Then: ros2 topic pub --once /cliport/instruction std_msgs/msg/String "data: 'put the red blocks in a green bowl'"
(Without a ROS install, `cliport sim` runs the same two nodes in one process.)
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("cliport_ros")
    args = [
        DeclareLaunchArgument("task", default_value="put-block-in-bowl-seen-colors", description="task key"),
        DeclareLaunchArgument("split", default_value="test", description="train | val | test"),
        DeclareLaunchArgument("seed", default_value="10001", description="first episode's seed"),
        DeclareLaunchArgument("robot", default_value="ur5", description="ur5 | panda"),
        DeclareLaunchArgument(
            "checkpoint", default_value="", description="policy checkpoint; empty = the shipped model for task"
        ),
        DeclareLaunchArgument("device", default_value="auto", description="auto | cpu | cuda"),
        DeclareLaunchArgument("execute", default_value="true", description="send decisions to the simulated arm"),
        DeclareLaunchArgument(
            "publish_instructions",
            default_value="false",
            description="the bridge issues each step's task instruction itself",
        ),
        DeclareLaunchArgument("console", default_value="false", description="start the operator console too"),
        DeclareLaunchArgument("console_port", default_value="8080", description="TCP port of the console's page"),
    ]
    cfg = LaunchConfiguration
    return LaunchDescription(
        args
        + [
            # Large camera images between processes through shared memory (see config/fastdds_shm.xml).
            SetEnvironmentVariable(
                "FASTRTPS_DEFAULT_PROFILES_FILE", PathJoinSubstitution([share, "config", "fastdds_shm.xml"])
            ),
            Node(
                package="cliport_ros",
                executable="sim_node",
                name="sim_node",
                output="screen",
                parameters=[
                    PathJoinSubstitution([share, "config", "sim_node.yaml"]),
                    {
                        "task": cfg("task"),
                        "split": cfg("split"),
                        "seed": cfg("seed"),
                        "robot": cfg("robot"),
                        "publish_instructions": cfg("publish_instructions"),
                    },
                ],
            ),
            Node(
                package="cliport_ros",
                executable="cliport_node",
                name="cliport_node",
                output="screen",
                parameters=[
                    PathJoinSubstitution([share, "config", "cliport_node.yaml"]),
                    {
                        "checkpoint": cfg("checkpoint"),
                        "task": cfg("task"),
                        "device": cfg("device"),
                        "execute": cfg("execute"),
                    },
                ],
            ),
            Node(
                package="cliport_ros",
                executable="console_node",
                name="console_node",
                output="screen",
                condition=IfCondition(cfg("console")),
                parameters=[
                    PathJoinSubstitution([share, "config", "console_node.yaml"]),
                    {"port": cfg("console_port")},
                ],
            ),
        ]
    )
