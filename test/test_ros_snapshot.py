"""`cliport snapshot` writes the live top-down view of the cameras (a calibration check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import cv2
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from cliport_ros.geometry import Workspace
from cliport_ros.perception import load_camera_rig
from cliport_ros.perception.synthetic import table_frame
from cliport_ros.ros.images import array_to_image, camera_info_from_model
from cliport_ros.ros.snapshot import parameters_from_file


def test_snapshot_of_the_sim_rig_shows_the_block_where_it_is(ros_context, tmp_path):
    rig = load_camera_rig()
    frames = {cam.name: table_frame(cam, [(0.45, -0.2, 0.03, 0.05, (230, 20, 20))]) for cam in rig}
    node = Node("rig_publisher", context=ros_context)
    pubs = {
        cam.name: (
            node.create_publisher(Image, f"/{cam.name}/color/image_raw", qos_profile_sensor_data),
            node.create_publisher(Image, f"/{cam.name}/aligned_depth_to_color/image_raw", qos_profile_sensor_data),
            node.create_publisher(CameraInfo, f"/{cam.name}/color/camera_info", qos_profile_sensor_data),
        )
        for cam in rig
    }

    def publish():
        header = Header(stamp=node.get_clock().now().to_msg())
        for cam in rig:
            color, depth, info = pubs[cam.name]
            header.frame_id = cam.name
            color.publish(array_to_image(frames[cam.name][0], "rgb8", header))
            depth.publish(array_to_image(frames[cam.name][1], "32FC1", header))
            info.publish(camera_info_from_model(cam, header))

    node.create_timer(0.1, publish)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    stop = threading.Event()
    spinner = threading.Thread(target=lambda: [executor.spin_once(timeout_sec=0.05) for _ in iter(stop.is_set, True)])
    spinner.start()
    try:
        out = tmp_path / "view.png"
        done = subprocess.run(
            [sys.executable, "-m", "cliport_ros.cli", "snapshot", "--out", str(out), "--per-camera"],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ),
        )
    finally:
        stop.set()
        spinner.join()
        executor.shutdown()
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["cameras"] == ["front", "left", "right"] and len(report["written"]) == 4
    assert abs(report["max_height_m"] - 0.05) < 0.002
    image = cv2.imread(str(out))
    ws = Workspace()
    u, v = ws.xyz_to_pixel((0.45, -0.2, 0.0))
    assert tuple(image[2 * u, 2 * v]) == (20, 20, 230)  # BGR, color half, 2x scale
    assert image.shape == (2 * ws.rows, 4 * ws.cols, 3)


def test_snapshot_without_cameras_says_which_topics(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cliport_ros.cli", "snapshot", "--out", str(tmp_path / "x.png"), "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "no synchronised color/depth images yet from camera 'front'" in report["error"]


def test_overrides():
    from cliport_ros.ros.snapshot import parse_overrides

    assert parse_overrides(["camera_pose_source=tf", "camera_namespaces=[/camera/camera]", "sync_slop=0.1"]) == {
        "camera_pose_source": "tf",
        "camera_namespaces": ["/camera/camera"],
        "sync_slop": 0.1,
    }
    with pytest.raises(ValueError, match="--set expects NAME=VALUE"):
        parse_overrides(["camera_pose_source"])


def test_parameters_from_a_cell_file():
    from cliport_ros.resources import config_path

    params = parameters_from_file(config_path("ur5.yaml"), "cliport_node")
    assert params["base_frame"] == "base_link"
    assert "workspace.x_min" in params
