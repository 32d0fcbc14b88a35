"""ROS overhead of one decision: instruction received -> PickPlace published, minus the model's time.

The CLIPort node runs with the real policy code (the `tiny` configuration, random weights: the time does
not depend on the weights) on three 640x480 RGB-D cameras placed like the simulated rig, fed by a camera
node with exact synthetic frames of a table with blocks. Everything else (subscriptions, synchronisation,
image conversion, fusion into the top-down view, checks, publishing the decision and the visualisation)
is what the node does on a real cell.

    .venv/bin/python benchmarks/bench_ros_overhead.py [--decisions 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-visualization", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("ROS_LOG_DIR", str(REPO / "build" / "ros_log"))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))

    import numpy as np
    import rclpy
    import torch
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header, String

    from cliport_ros.model import ModelConfig, Policy
    from cliport_ros.msg import PickPlace
    from cliport_ros.perception import load_camera_rig
    from cliport_ros.perception.synthetic import table_frame
    from cliport_ros.ros.cliport_node import CliportNode, load_policy
    from cliport_ros.ros.images import array_to_image, camera_info_from_model

    torch.set_num_threads(args.threads)
    rig = load_camera_rig()
    boxes = [
        (0.45, -0.1, 0.02, 0.04, (220, 30, 30)),
        (0.6, 0.2, 0.04, 0.03, (30, 200, 30)),
        (0.35, 0.3, 0.02, 0.04, (30, 30, 220)),
    ]
    frames = {cam.name: table_frame(cam, boxes) for cam in rig}
    with tempfile.TemporaryDirectory() as tmp:
        Policy(ModelConfig.named("tiny"), device="cpu").save(Path(tmp) / "tiny")
        policy = load_policy(str(Path(tmp) / "tiny"), "cpu")

    context = rclpy.Context()
    rclpy.init(context=context)
    node = CliportNode(
        context=context,
        policy_factory=lambda c, d: policy,
        parameter_overrides=[
            Parameter("execute", value=False),
            Parameter("device", value="cpu"),
            Parameter("publish_visualization", value=not args.no_visualization),
        ],
    )
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.last_error
    node.trigger_activate()
    driver = rclpy.create_node("bench_driver", context=context)
    pubs = {
        cam.name: (
            driver.create_publisher(Image, f"/{cam.name}/color/image_raw", qos_profile_sensor_data),
            driver.create_publisher(Image, f"/{cam.name}/aligned_depth_to_color/image_raw", qos_profile_sensor_data),
            driver.create_publisher(CameraInfo, f"/{cam.name}/color/camera_info", qos_profile_sensor_data),
        )
        for cam in rig
    }
    instruction = driver.create_publisher(String, "/cliport/instruction", 10)
    received = []
    driver.create_subscription(PickPlace, "/cliport/pick_place", lambda m: received.append(time.monotonic()), 10)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(node)
    executor.add_node(driver)

    def publish_cameras():
        header = Header(stamp=driver.get_clock().now().to_msg())
        for cam in rig:
            rgb, depth = frames[cam.name]
            header.frame_id = f"{cam.name}_color_optical_frame"
            color_pub, depth_pub, info_pub = pubs[cam.name]
            color_pub.publish(array_to_image(rgb, "rgb8", header))
            depth_pub.publish(array_to_image(depth, "32FC1", header))
            info_pub.publish(camera_info_from_model(cam, header))

    def spin_until(predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            executor.spin_once(timeout_sec=0.02)
        return predicate()

    assert spin_until(
        lambda: (publish_cameras(), all(c.latest()[2] is not None and c.latest()[0] is not None for c in node.cameras))[
            1
        ],
        30,
    ), "no camera frames"
    spin_until(lambda: instruction.get_subscription_count() > 0, 10)
    rows = []
    for k in range(args.decisions + 2):  # two warm-up decisions
        publish_cameras()
        spin_until(lambda: False, 0.1)
        count = len(received)
        sent = time.monotonic()
        instruction.publish(String(data="put the red block in the green bowl"))
        assert spin_until(lambda count=count: len(received) > count, 60), node.last_error
        t = node.last_timings
        if k >= 2:
            rows.append(
                {
                    "end_to_end": received[-1] - sent,
                    "in_node": t["received_to_published_s"],
                    "policy": t["policy_s"],
                    "fuse": t["fuse_s"],
                }
            )
    executor.shutdown()
    node.stop_worker()
    rclpy.try_shutdown(context=context)

    def stats(key, minus_policy=False):
        values = np.array([r[key] - (r["policy"] if minus_policy else 0.0) for r in rows]) * 1000
        return {
            "p50_ms": round(float(np.percentile(values, 50)), 1),
            "p95_ms": round(float(np.percentile(values, 95)), 1),
        }

    print(
        json.dumps(
            {
                "benchmark": "ros_overhead_per_decision",
                "cameras": len(rig),
                "image": "640x480 rgb8 + 32FC1",
                "decisions": len(rows),
                "torch_threads": args.threads,
                "visualization": not args.no_visualization,
                "overhead_in_node_minus_model": stats("in_node", True),
                "overhead_end_to_end_minus_model": stats("end_to_end", True),
                "fusion_of_views": stats("fuse"),
                "model": stats("policy"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
