"""Camera images between two processes: delivered fraction and latency at 30 Hz, as the CLIPort node receives them.

A child process publishes 640x480 rgb8 color and 32FC1 depth frames (a simulated RealSense) at 30 Hz with
sensor-data QoS (best effort, as camera drivers publish); this process subscribes like the CLIPort node.
Run once with the shipped Fast DDS profile (config/fastdds_shm.xml) and once with Fast DDS defaults.

    .venv/bin/python benchmarks/bench_ros_images.py [--frames 300]
Prints one JSON line per configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def publisher(frames: int, rate: float) -> None:
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from cliport_ros.ros.images import array_to_image

    rclpy.init()
    node = rclpy.create_node("bench_camera")
    color_pub = node.create_publisher(Image, "/bench/color/image_raw", qos_profile_sensor_data)
    depth_pub = node.create_publisher(Image, "/bench/aligned_depth_to_color/image_raw", qos_profile_sensor_data)
    rgb = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    depth = np.full((480, 640), 0.8, np.float32)
    deadline = time.monotonic() + 20
    while (
        color_pub.get_subscription_count() == 0 or depth_pub.get_subscription_count() == 0
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # discovery settles both ways
    period = 1.0 / rate
    start = time.monotonic()
    for k in range(frames):
        header = Image().header
        header.stamp = node.get_clock().now().to_msg()
        header.frame_id = str(k)
        color_pub.publish(array_to_image(rgb, "rgb8", header))
        depth_pub.publish(array_to_image(depth, "32FC1", header))
        time.sleep(max(0.0, start + (k + 1) * period - time.monotonic()))
    time.sleep(1.0)
    node.destroy_node()
    rclpy.try_shutdown()


def measure(frames: int, rate: float, profile: bool) -> dict:
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    env = dict(os.environ)
    if profile:
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_shm.xml")
    else:
        env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    # The profile is read when a participant is created: this process applies it to itself the same way.
    os.environ.clear()
    os.environ.update(env)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_receiver", context=context)
    latencies = {"color": [], "depth": []}

    def on(kind):
        def callback(msg):
            sent = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            latencies[kind].append(time.time() - sent)

        return callback

    node.create_subscription(Image, "/bench/color/image_raw", on("color"), qos_profile_sensor_data)
    node.create_subscription(Image, "/bench/aligned_depth_to_color/image_raw", on("depth"), qos_profile_sensor_data)
    child = subprocess.Popen(
        [sys.executable, __file__, "--publisher", "--frames", str(frames), "--rate", str(rate)], env=env
    )
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    while child.poll() is None:
        executor.spin_once(timeout_sec=0.05)
    for _ in range(20):
        executor.spin_once(timeout_sec=0.05)
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    out = {
        "benchmark": "ros_images_between_processes",
        "profile": "config/fastdds_shm.xml" if profile else "fastdds defaults",
        "rate_hz": rate,
        "frames_sent": frames,
        "qos": "sensor_data (best effort)",
    }
    for kind, values in latencies.items():
        ms = np.array(values) * 1000.0
        out[f"{kind}_received"] = len(values)
        out[f"{kind}_p50_ms"] = round(float(np.percentile(ms, 50)), 2) if len(ms) else None
        out[f"{kind}_p95_ms"] = round(float(np.percentile(ms, 95)), 2) if len(ms) else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--publisher", action="store_true")
    parser.add_argument("--no-compare", action="store_true", help="only the shipped profile")
    args = parser.parse_args()
    if args.publisher:
        publisher(args.frames, args.rate)
        return 0
    os.environ.setdefault("ROS_LOG_DIR", str(REPO / "build" / "ros_log"))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    for profile in (True,) if args.no_compare else (True, False):
        print(json.dumps(measure(args.frames, args.rate, profile)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
