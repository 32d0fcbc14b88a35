"""Each node's parameters come from one table (cliport_ros/ros/parameters.py): declared with descriptors,
and the README, the docs and config/*.yaml agree with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rclpy.parameter import Parameter

from cliport_ros.ros.cliport_node import CLIPORT_NODE_PARAMETERS, CliportNode
from cliport_ros.ros.console_node import CONSOLE_NODE_PARAMETERS
from cliport_ros.ros.parameters import markdown_table
from cliport_ros.ros.sim_node import SIM_NODE_PARAMETERS

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_and_docs_show_the_tables():
    assert markdown_table(CLIPORT_NODE_PARAMETERS) in (REPO / "README.md").read_text(), (
        "README.md's cliport_node table differs from CLIPORT_NODE_PARAMETERS: regenerate it with "
        "python -m cliport_ros.ros.parameters cliport_node"
    )
    assert markdown_table(SIM_NODE_PARAMETERS) in (REPO / "docs" / "training.md").read_text()
    from cliport_ros.ros.moveit_executor import EXECUTOR_PARAMETERS

    assert markdown_table(EXECUTOR_PARAMETERS) in (REPO / "docs" / "real_cell.md").read_text()
    assert markdown_table(CONSOLE_NODE_PARAMETERS) in (REPO / "docs" / "console.md").read_text()


def test_config_files_set_only_table_parameters_with_their_types_and_ranges():
    for file, node, table in (
        ("cliport_node.yaml", "cliport_node", CLIPORT_NODE_PARAMETERS),
        ("sim_node.yaml", "sim_node", SIM_NODE_PARAMETERS),
        ("console_node.yaml", "console_node", CONSOLE_NODE_PARAMETERS),
    ):
        values = yaml.safe_load((REPO / "config" / file).read_text())[node]["ros__parameters"]
        specs = {s.name: s for s in table}
        assert set(values) <= set(specs), (file, set(values) - set(specs))
        for name, value in values.items():
            spec = specs[name]
            assert type(value) is type(spec.default) or (isinstance(spec.default, float) and type(value) is int), name
            if spec.choices:
                assert value in spec.choices, (name, value)
            if spec.minimum is not None:
                assert spec.minimum <= value <= spec.maximum, (name, value)


def test_descriptors_carry_description_and_range(ros_context):
    node = CliportNode(context=ros_context)
    try:
        described = node.describe_parameter("max_stamp_lead")
        assert "clock skew" in described.description
        assert (described.floating_point_range[0].from_value, described.floating_point_range[0].to_value) == (0.0, 10.0)
        assert node.describe_parameter("max_queue").integer_range[0].to_value == 10_000
        assert node.describe_parameter("on_busy").additional_constraints == "one of queue, reject"
        # `ros2 param set` outside the range is refused and the value stays.
        result = node.set_parameters([Parameter("max_stamp_lead", value=50.0)])[0]
        assert not result.successful and node.get_parameter("max_stamp_lead").value == 0.5
    finally:
        node.destroy_node()


def test_a_value_outside_its_range_stops_the_node_with_the_reason(tmp_path):
    env = dict(os.environ)
    done = subprocess.run(
        [sys.executable, "-m", "cliport_ros.ros.cliport_node", "--ros-args", "-p", "max_stamp_lead:=50.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "cliport_node:" in done.stderr and "max_stamp_lead" in done.stderr


@pytest.mark.parametrize("table", [CLIPORT_NODE_PARAMETERS, SIM_NODE_PARAMETERS, CONSOLE_NODE_PARAMETERS])
def test_tables_are_complete(table):
    names = [spec.name for spec in table]
    assert len(names) == len(set(names))
    assert all(spec.description for spec in table)
