"""A fake real cell on the ROS graph, for the doctor: what a UR5 bringup would offer (robot description and
SRDF, controller_manager's list, the UR IO service, a RealSense's topics, the calibration TF), each part of it
removable to make a broken cell. Needs ur_msgs, controller_manager_msgs and tf2_msgs (test/interfaces)."""

from __future__ import annotations

import numpy as np
from controller_manager_msgs.msg import ControllerState
from controller_manager_msgs.srv import ListControllers
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from ur_msgs.srv import SetIO

from cliport_ros.ros.images import array_to_image

URDF = """<robot name="ur5e"><link name="world"/><link name="base_link"/><link name="shoulder_link"/>
<link name="tool0"/></robot>"""
SRDF = """<robot name="ur5e"><group name="ur_manipulator"><chain base_link="base_link" tip_link="tool0"/>
</group></robot>"""
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class FakeCell(Node):
    def __init__(self, context, broken: bool = False) -> None:
        super().__init__("fake_cell", context=context)
        self.broken = broken
        self._latched = [
            self.create_publisher(String, "/robot_description", LATCHED),
            self.create_publisher(String, "/robot_description_semantic", LATCHED),
        ]
        self._latched[0].publish(String(data=URDF))
        self._latched[1].publish(String(data=SRDF))
        self.create_service(ListControllers, "/controller_manager/list_controllers", self._controllers)
        self.create_service(SetIO, "/io_and_status_controller/set_io", lambda request, response: response)
        ns = "/camera/camera"
        self._color = self.create_publisher(Image, f"{ns}/color/image_raw", 10)
        self._depth = self.create_publisher(Image, f"{ns}/aligned_depth_to_color/image_raw", 10)
        self._info = self.create_publisher(CameraInfo, f"{ns}/color/camera_info", 10)
        self._tf = self.create_publisher(TFMessage, "/tf_static", LATCHED)
        if not broken:
            self._tf.publish(
                TFMessage(
                    transforms=[
                        self._transform("base_link", "camera_link"),
                        self._transform("camera_link", "camera_color_optical_frame"),
                    ]
                )
            )
        self.create_timer(1.0 / 15.0, self._publish_frames)

    def _transform(self, parent: str, child: str) -> TransformStamped:
        transform = TransformStamped()
        transform.header.frame_id, transform.child_frame_id = parent, child
        transform.transform.rotation.w = 1.0
        return transform

    def _controllers(self, request, response):
        # Broken: the driver started the scaled controller, but the bringup executes on the other one.
        response.controller = [
            ControllerState(
                name="scaled_joint_trajectory_controller",
                state="active",
                type="ur_controllers/ScaledJointTrajectoryController",
            ),
            ControllerState(
                name="joint_trajectory_controller",
                state="inactive",
                type="joint_trajectory_controller/JointTrajectoryController",
            ),
        ]
        return response

    def _publish_frames(self) -> None:
        header = self.get_clock().now().to_msg()
        color = array_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8")
        color.header.stamp, color.header.frame_id = header, "camera_color_optical_frame"
        self._color.publish(color)
        if not self.broken:  # broken: the depth stream is missing (align_depth not enabled)
            depth = array_to_image(np.full((48, 64), 700, np.uint16), "16UC1")
            depth.header = color.header
            self._depth.publish(depth)
        info = CameraInfo(width=64, height=48, k=[50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0])
        info.header = color.header
        self._info.publish(info)
