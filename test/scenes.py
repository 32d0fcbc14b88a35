"""Synthetic RGB-D frames for tests (see cliport_ros.perception.synthetic)."""

from cliport_ros.perception.synthetic import TABLE_COLOR, overhead_camera, table_frame

overhead_frame = table_frame

__all__ = ["TABLE_COLOR", "overhead_camera", "overhead_frame", "table_frame"]
