"""launch/sim_bringup.launch.py, read with `ast` (ROS `launch` cannot be installed on these machines)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from test_launch_files import calls, cmake_nodes, console_scripts, declared, literal, own_nodes, parameter_names

REPO = Path(__file__).resolve().parents[1]
MODULE = ast.parse((REPO / "launch" / "sim_bringup.launch.py").read_text())


def ros_parameters(config: str, node: str) -> set[str]:
    data = yaml.safe_load((REPO / "config" / config).read_text())
    return set(data[node]["ros__parameters"])


def test_nodes_are_installed_executables_with_their_parameter_files():
    nodes = {literal(next(k.value for k in n.keywords if k.arg == "executable")): n for n in own_nodes(MODULE)}
    assert set(nodes) == {"sim_node", "cliport_node", "console_node"}
    for executable, node in nodes.items():
        assert executable in console_scripts() and executable in cmake_nodes()
        params_file = f"{executable}.yaml"
        assert (REPO / "config" / params_file).is_file()
        # Every parameter the launch file sets is a parameter the node's file documents.
        assert parameter_names(node) <= ros_parameters(params_file, executable), executable


def test_referenced_config_files_exist():
    strings = {literal(c) for c in ast.walk(MODULE) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    referenced = {s for s in strings if s.endswith((".yaml", ".xml"))}
    assert referenced == {"sim_node.yaml", "cliport_node.yaml", "console_node.yaml", "fastdds_shm.xml"}
    for name in referenced:
        assert (REPO / "config" / name).is_file()


def test_every_argument_is_used_and_in_the_readme():
    arguments = set(declared(MODULE))
    used = {literal(c.args[0]) for c in calls(MODULE, "LaunchConfiguration")} | {
        literal(c.args[0]) for c in ast.walk(MODULE) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "cfg"
    }
    assert arguments == {
        "task",
        "split",
        "seed",
        "robot",
        "checkpoint",
        "device",
        "execute",
        "publish_instructions",
        "console",
        "console_port",
    }
    assert arguments <= used, arguments - used
    readme = (REPO / "README.md").read_text()
    assert "ros2 launch cliport_ros sim_bringup.launch.py" in readme
