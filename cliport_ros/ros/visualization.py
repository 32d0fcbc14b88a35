"""What the CLIPort node shows in RViz: heatmaps and the top-down view as images, poses as markers."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.ros.conversions import pose_to_msg
from cliport_ros.types import PickPlace


def heatmap_to_rgb(heatmap: np.ndarray) -> np.ndarray:
    """A probability map as an RGB uint8 image (jet color map, scaled to its maximum)."""
    import cv2

    values = np.asarray(heatmap, dtype=np.float32)
    peak = float(values.max()) if values.size else 0.0
    scaled = np.zeros(values.shape, np.uint8) if peak <= 0 else np.clip(values / peak * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(scaled, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def _marker(header: Header, ns: str, marker_id: int, kind: int, rgba: tuple[float, float, float, float]) -> Marker:
    marker = Marker()
    marker.header = header
    marker.ns, marker.id, marker.type, marker.action = ns, marker_id, kind, Marker.ADD
    marker.color = ColorRGBA(r=rgba[0], g=rgba[1], b=rgba[2], a=rgba[3])
    marker.pose.orientation.w = 1.0
    return marker


def decision_markers(decision: PickPlace, workspace: Workspace, header: Header) -> MarkerArray:
    """The workspace box (lines), the pick (green) and place (blue) poses as arrows with a label."""
    markers = MarkerArray()
    box = _marker(header, "workspace", 0, Marker.LINE_LIST, (1.0, 1.0, 1.0, 0.8))
    box.scale.x = 0.004
    xs, ys, zs = (
        (workspace.x_min, workspace.x_max),
        (workspace.y_min, workspace.y_max),
        (workspace.z_min, workspace.z_max),
    )
    corners = [(x, y, z) for x in xs for y in ys for z in zs]
    for i, a in enumerate(corners):
        for b in corners[i + 1 :]:
            if sum(p != q for p, q in zip(a, b)) == 1:  # box edges differ in one coordinate
                box.points.extend([Point(x=a[0], y=a[1], z=a[2]), Point(x=b[0], y=b[1], z=b[2])])
    markers.markers.append(box)
    for marker_id, (name, pose, rgba) in enumerate(
        (("pick", decision.pick, (0.1, 0.9, 0.1, 1.0)), ("place", decision.place, (0.1, 0.4, 1.0, 1.0))), start=1
    ):
        arrow = _marker(header, name, marker_id, Marker.ARROW, rgba)
        arrow.pose = pose_to_msg(pose)
        arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.06, 0.01, 0.01
        markers.markers.append(arrow)
        label = _marker(header, name + "_label", marker_id + 10, Marker.TEXT_VIEW_FACING, rgba)
        label.pose = pose_to_msg(pose)
        label.pose.position.z += 0.05
        label.scale.z = 0.025
        confidence = decision.pick_confidence if name == "pick" else decision.place_confidence
        label.text = f"{name} {confidence:.2f}"
        markers.markers.append(label)
    return markers
