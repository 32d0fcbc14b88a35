"""Raw recording of a cell's run to MCAP (rosbag2's default storage), and reading it back for ``cliport replay``.

``BagRecorder`` subscribes, as topics appear on the graph, to what a run needs to be looked at again: the
cameras (``sensor_msgs/Image`` outside ``cliport/``, where the node's own visualisations live) and their
``camera_info``, the instructions (``cliport/instruction``), the decisions (``cliport/pick_place``), the
executions (``cliport/executions``), the node's status lines, a simulated cell's ``sim/task_status``, and
``/tf`` and ``/tf_static`` where they exist. Messages arrive serialized (``raw=True``) and are written as they
came, CDR-encoded, with the ``ros2msg`` schema that rosbag2 writes (the message definition and every type it
uses, each after a line of ``=`` and ``MSG: pkg/Type``), so the file opens in Foxglove and with ``ros2 bag``.
The file is ``<dir>/<dir name>_0.mcap``, with ``metadata.yaml`` beside it left to ``ros2 bag reindex``.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

#: Topic-name suffixes (relative to the cell's namespace) and types recorded besides the cameras.
RECORDED_TOPICS = {
    "cliport/instruction": "std_msgs/msg/String",
    "cliport/status": "std_msgs/msg/String",
    "cliport/pick_place": "cliport_ros/msg/PickPlace",
    "cliport/executions": "cliport_ros/msg/Execution",
    "sim/task_status": "cliport_ros/msg/TaskStatus",
    "tf": "tf2_msgs/msg/TFMessage",
    "tf_static": "tf2_msgs/msg/TFMessage",
}
CAMERA_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo")
#: How often the graph is looked at for new topics, seconds.
DISCOVERY_PERIOD = 0.5
_PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64", "string", "wstring",
}  # fmt: skip


def _message_class(type_name: str) -> Any:
    """``pkg/msg/Type`` -> its Python class."""
    import importlib

    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _definition_file(package: str, name: str) -> Path:
    """The .msg file of ``package/msg/name``: from AMENT_PREFIX_PATH, else beside the installed Python code
    (``<prefix>/lib/pythonX/site-packages/<package>`` -> ``<prefix>/share/<package>/msg``)."""
    import os

    candidates = [
        Path(p) / "share" / package / "msg" / f"{name}.msg"
        for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
        if p
    ]
    module = sys.modules.get(f"{package}.msg") or __import__(f"{package}.msg", fromlist=["msg"])
    for parent in Path(module.__file__).resolve().parents:
        candidates.append(parent / "share" / package / "msg" / f"{name}.msg")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no definition of {package}/msg/{name} (looked in {', '.join(map(str, candidates[:3]))}, ...)"
    )


def message_definition(type_name: str) -> str:
    """The ``ros2msg`` schema text of ``pkg/msg/Type``, as rosbag2 writes it into MCAP."""
    package, _, name = type_name.split("/")
    seen: list[str] = []
    texts: dict[str, str] = {}

    def visit(pkg: str, msg: str) -> None:
        key = f"{pkg}/{msg}"
        if key in texts:
            return
        text = _definition_file(pkg, msg).read_text()
        texts[key] = text
        seen.append(key)
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or "=" in line.split()[-1] or (len(line.split()) > 2 and "=" in line):
                continue  # blank, comment, or a constant
            field_type = re.sub(r"\[.*\]$", "", line.split()[0])
            field_type = re.sub(r"<=\d+$", "", field_type)
            if field_type in _PRIMITIVES:
                continue
            dep_pkg, dep_msg = field_type.split("/") if "/" in field_type else (pkg, field_type)
            visit(dep_pkg, dep_msg)

    visit(package, name)
    parts = [texts[f"{package}/{name}"]]
    for key in seen[1:]:
        parts.append("=" * 80 + f"\nMSG: {key}\n" + texts[key])
    return "\n".join(part.rstrip("\n") for part in parts) + "\n"


def bag_path(folder: str | Path) -> Path:
    folder = Path(folder)
    return folder / f"{folder.name}_0.mcap"


class BagRecorder:
    """Writes the cell's topics under ``node``'s namespace to ``<folder>/<folder name>_0.mcap`` until ``close``."""

    def __init__(self, node: Any, folder: str | Path, metadata: dict[str, str] | None = None) -> None:
        from mcap.writer import CompressionType, Writer

        self.node = node
        self.path = bag_path(folder)
        if self.path.exists():
            raise ValueError(f"{self.path} exists: give --bag a new folder (a bag is never overwritten)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        self._writer = Writer(self._file, compression=CompressionType.ZSTD)
        self._writer.start(profile="ros2", library="cliport_ros")
        if metadata:
            self._writer.add_metadata("cliport", dict(metadata))
        self._lock = threading.Lock()
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._subscriptions: dict[str, Any] = {}
        self._closed = False
        self.counts: dict[str, int] = {}
        namespace = node.get_namespace().rstrip("/")
        self._wanted = {f"{namespace}/{suffix}": kind for suffix, kind in RECORDED_TOPICS.items()}
        self._wanted.update({"/tf": RECORDED_TOPICS["tf"], "/tf_static": RECORDED_TOPICS["tf_static"]})
        self._namespace = namespace
        self._timer = node.create_timer(DISCOVERY_PERIOD, self.discover)
        self.discover()

    def _selected(self, topic: str, types: list[str]) -> str | None:
        if topic in self._wanted and self._wanted[topic] in types:
            return self._wanted[topic]
        inside = topic.startswith(self._namespace + "/") or not self._namespace
        if inside and not topic.startswith(f"{self._namespace}/cliport/"):
            for kind in CAMERA_TYPES:
                if kind in types:
                    return kind
        return None

    def discover(self) -> None:
        """Subscribe to every recorded topic that has appeared since the last look."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

        if self._closed:
            return
        for topic, types in self.node.get_topic_names_and_types():
            if topic in self._subscriptions:
                continue
            kind = self._selected(topic, types)
            if kind is None:
                continue
            if kind in CAMERA_TYPES:
                qos = qos_profile_sensor_data
            elif topic.endswith(("sim/task_status", "tf_static")):
                qos = QoSProfile(
                    depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE
                )
            else:
                qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            with self._lock:
                if kind not in self._schemas:
                    self._schemas[kind] = self._writer.register_schema(
                        kind, "ros2msg", message_definition(kind).encode()
                    )
                self._channels[topic] = self._writer.register_channel(topic, "cdr", self._schemas[kind])
            self._subscriptions[topic] = self.node.create_subscription(
                _message_class(kind), topic, lambda data, t=topic: self._write(t, data), qos, raw=True
            )

    def _write(self, topic: str, data: bytes) -> None:
        now = time.time_ns()
        with self._lock:
            if self._closed:
                return
            self._writer.add_message(self._channels[topic], log_time=now, data=data, publish_time=now)
            self.counts[topic] = self.counts.get(topic, 0) + 1

    def close(self) -> dict[str, int]:
        """Finish the file (its summary and index are written now); returns the message count per topic."""
        with self._lock:
            if self._closed:
                return self.counts
            self._closed = True
            self._writer.finish()
            self._file.close()
        try:
            self.node.destroy_timer(self._timer)
            for subscription in self._subscriptions.values():
                self.node.destroy_subscription(subscription)
        except Exception:  # the node may be gone already at exit; the file is complete either way
            pass
        return self.counts


def read_bag(path: str | Path) -> tuple[dict[str, str], list[tuple[str, int, Any]]]:
    """The bag's ``cliport`` metadata and its messages as (topic, log time ns, deserialized message), in order."""
    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.mcap"))
        if not files:
            raise ValueError(f"{path} holds no .mcap file")
        path = files[0]
    metadata: dict[str, str] = {}
    messages = []
    with open(path, "rb") as handle:
        reader = make_reader(handle)
        for record in reader.iter_metadata():
            if record.name == "cliport":
                metadata = dict(record.metadata)
        classes: dict[int, Any] = {}
        for schema, channel, message in reader.iter_messages(log_time_order=True):
            if schema is None or channel.message_encoding != "cdr":
                continue
            if schema.id not in classes:
                classes[schema.id] = _message_class(schema.name)
            messages.append((channel.topic, message.log_time, deserialize_message(message.data, classes[schema.id])))
    return metadata, messages
