"""MCAP recording (--bag) and `cliport replay`: a simulated run is written, read back by a third-party decoder
(mcap-ros2-support, which decodes from the schemas in the file alone, as Foxglove does), and its decisions are
made again offline."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import pytest

from cliport_ros.ros.bag import message_definition

SEED = 19  # val: "put the yellow blocks in a green bowl", two blocks


def test_schemas_are_rosbag2s_concatenated_definitions():
    text = message_definition("sensor_msgs/msg/Image")
    parts = text.split("=" * 80 + "\n")
    assert parts[0].startswith("# This message contains an uncompressed image") or "uint32 height" in parts[0]
    assert [p.splitlines()[0] for p in parts[1:]] == ["MSG: std_msgs/Header", "MSG: builtin_interfaces/Time"]
    ours = message_definition("cliport_ros/msg/Execution")
    names = [line for line in ours.splitlines() if line.startswith("MSG: ")]
    # every type used, once, in the order first met
    assert names == [
        "MSG: std_msgs/Header",
        "MSG: builtin_interfaces/Time",
        "MSG: cliport_ros/PickPlace",
        "MSG: geometry_msgs/Pose",
        "MSG: geometry_msgs/Point",
        "MSG: geometry_msgs/Quaternion",
    ]


def _json_lines(text: str) -> list[dict]:
    """The JSON lines of a command's output (the EGL renderer prints lines of its own)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cliport_ros.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )


@pytest.mark.slow
def test_a_recorded_run_opens_in_a_foreign_decoder_and_replays_to_the_same_decisions(tmp_path, random_checkpoint):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    bag = tmp_path / "run1"
    run = _cli(
        "sim", "--split", "val", "--seed", str(SEED), "--episodes", "1", "--device", "cpu",
        "--camera-rate", "1", "--bag", str(bag),
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    summary = _json_lines(run.stdout)[-1]
    assert summary["bag"] == str(bag / "run1_0.mcap") and summary["bag_messages"] > 0
    counts: collections.Counter = collections.Counter()
    decisions, executions = [], []
    with open(bag / "run1_0.mcap", "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        for schema, channel, _, decoded in reader.iter_decoded_messages():
            counts[(channel.topic, schema.name)] += 1
            if channel.topic == "/cliport/pick_place":
                decisions.append(decoded)
            if channel.topic == "/cliport/executions":
                executions.append(decoded)
    for camera in ("front", "left", "right"):
        assert counts[(f"/{camera}/color/image_raw", "sensor_msgs/msg/Image")] >= 1
        assert counts[(f"/{camera}/aligned_depth_to_color/image_raw", "sensor_msgs/msg/Image")] >= 1
        assert counts[(f"/{camera}/color/camera_info", "sensor_msgs/msg/CameraInfo")] >= 1
    assert counts[("/sim/task_status", "cliport_ros/msg/TaskStatus")] >= 2
    # the node's own pictures are not cameras and stay out
    assert not [topic for topic, _ in counts if topic.startswith("/cliport/") and "heatmap" in topic]
    assert decisions and len(executions) == len(decisions)
    assert decisions[0].instruction == "put the yellow blocks in a green bowl"
    assert all(e.source == "policy" for e in executions)
    assert executions[0].pick_place.pick.position.x == decisions[0].pick.position.x

    same = _cli("replay", str(bag), "--device", "cpu")
    assert same.returncode == 0, same.stdout + same.stderr
    rows = _json_lines(same.stdout)
    assert rows[-1]["decisions"] == len(decisions) == rows[-1]["replayed"] and rows[-1]["differ"] == 0
    assert all(r["pick_error_px"] == 0 and r["place_error_px"] == 0 for r in rows[:-1])

    # another policy decides otherwise, and replay says where
    other = _cli("replay", str(bag), "--device", "cpu", "--checkpoint", str(random_checkpoint))
    assert other.returncode == 1, other.stdout + other.stderr
    rows = _json_lines(other.stdout)
    assert rows[-1]["differ"] >= 1 and any(r["differs"] and r["replayed"] for r in rows[:-1])

    again = _cli("sim", "--episodes", "1", "--device", "cpu", "--bag", str(bag), timeout=300)
    assert again.returncode == 2 and "exists" in again.stdout


def test_replay_of_something_that_is_not_a_bag_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    done = _cli("replay", str(tmp_path / "empty"), timeout=120)
    assert done.returncode == 2 and "holds no .mcap file" in done.stdout
