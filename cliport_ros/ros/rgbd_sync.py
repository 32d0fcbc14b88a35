"""Per-camera RGB-D subscriptions: color and depth paired by timestamp, plus the latest camera_info.

message_filters' ApproximateTimeSynchronizer is used where it is installed (real ROS machines); otherwise
``StampPairer``, a small equivalent: it keeps the last few messages of each stream and pairs a new message
with the closest-stamped message of the other stream within ``slop`` seconds.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from cliport_ros.ros.conversions import stamp_to_nanoseconds, stamp_to_seconds

try:
    import message_filters  # type: ignore[import-not-found]
except ImportError:
    message_filters = None


class StampPairer:
    """Pairs two streams by stamp; ``add`` returns (color, depth) when a message completes a pair."""

    def __init__(self, slop: float, history: int = 8) -> None:
        if slop <= 0:
            raise ValueError(f"sync slop must be > 0 seconds, got {slop}")
        self.slop = slop
        self._queues = {"color": collections.deque(maxlen=history), "depth": collections.deque(maxlen=history)}

    def add(self, stream: str, stamp: float, msg: Any) -> tuple[Any, Any] | None:
        other = "depth" if stream == "color" else "color"
        candidates = self._queues[other]
        best = min(candidates, key=lambda item: abs(item[0] - stamp), default=None)
        if best is not None and abs(best[0] - stamp) <= self.slop:
            # Older messages of both streams can no longer pair with anything newer: drop them.
            while candidates and candidates[0][0] <= best[0]:
                candidates.popleft()
            own = self._queues[stream]
            while own and own[0][0] <= stamp:
                own.popleft()
            return (msg, best[1]) if stream == "color" else (best[1], msg)
        self._queues[stream].append((stamp, msg))
        return None


@dataclass(frozen=True)
class CameraTopics:
    name: str
    color: str
    depth: str
    info: str


class RgbdCamera:
    """Subscribes to one camera; ``latest()`` gives the newest synchronised (color, depth, info) messages."""

    def __init__(
        self,
        node: Node,
        topics: CameraTopics,
        slop: float,
        qos: QoSProfile = qos_profile_sensor_data,
        callback_group: Any = None,
        on_pair: Callable[[str], None] | None = None,
    ) -> None:
        self.topics = topics
        # A Condition, so that a reader can wait for a pair newer than a given stamp (wait_for_pair).
        self._lock = threading.Condition()
        self._pair: tuple[Image, Image] | None = None
        self._info: CameraInfo | None = None
        self._on_pair = on_pair
        self.pairs_received = 0
        self._node = node
        self._subscriptions = [
            node.create_subscription(CameraInfo, topics.info, self._on_info, qos, callback_group=callback_group)
        ]
        if message_filters is not None:
            color = message_filters.Subscriber(
                node, Image, topics.color, qos_profile=qos, callback_group=callback_group
            )
            depth = message_filters.Subscriber(
                node, Image, topics.depth, qos_profile=qos, callback_group=callback_group
            )
            self._sync = message_filters.ApproximateTimeSynchronizer([color, depth], queue_size=8, slop=slop)
            self._sync.registerCallback(self._store)
            self._subscriptions += [color.sub, depth.sub]
        else:
            self._pairer = StampPairer(slop)
            self._subscriptions += [
                node.create_subscription(
                    Image, topics.color, lambda m: self._add("color", m), qos, callback_group=callback_group
                ),
                node.create_subscription(
                    Image, topics.depth, lambda m: self._add("depth", m), qos, callback_group=callback_group
                ),
            ]

    def destroy(self) -> None:
        """Unsubscribe (lifecycle cleanup); the last frames stay readable."""
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []

    def _add(self, stream: str, msg: Image) -> None:
        with self._lock:
            pair = self._pairer.add(stream, stamp_to_seconds(msg.header.stamp), msg)
        if pair is not None:
            self._store(*pair)

    def _store(self, color: Image, depth: Image) -> None:
        with self._lock:
            self._pair = (color, depth)
            self.pairs_received += 1
            self._lock.notify_all()
        if self._on_pair is not None:
            self._on_pair(self.topics.name)

    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._info = msg

    def wait_for_pair(self, not_before_ns: int, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a pair whose color stamp is at or after ``not_before_ns``."""
        with self._lock:
            return self._lock.wait_for(
                lambda: self._pair is not None and stamp_to_nanoseconds(self._pair[0].header.stamp) >= not_before_ns,
                timeout,
            )

    def latest(self) -> tuple[Image | None, Image | None, CameraInfo | None]:
        with self._lock:
            color, depth = self._pair if self._pair is not None else (None, None)
            return color, depth, self._info
