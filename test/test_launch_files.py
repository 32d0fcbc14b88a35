"""The real-cell launch files, read with ``ast`` (launch / launch_ros cannot be imported here), and the argument
tables of cliport_ros.ros.bringup they declare: every executable, config file, argument and included launch
file exists and agrees with the docs. What the nodes receive is tested in test_ros_bringup.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from cliport_ros.execution import CellConfig
from cliport_ros.ros.bringup import (
    EXECUTE_ACTION,
    FRANKA_ARGUMENTS,
    GAZEBO_ARGUMENTS,
    UR5_ARGUMENTS,
    franka_bringup,
    ur5_bringup,
    ur5_gazebo_bringup,
)
from cliport_ros.ros.moveit_executor import NODE_PARAMETERS

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "real_cell.md").read_text()
LAUNCH_FILES = {
    "ur5_bringup.launch.py": ("UR5_ARGUMENTS", UR5_ARGUMENTS),
    "franka_bringup.launch.py": ("FRANKA_ARGUMENTS", FRANKA_ARGUMENTS),
    "ur5_gazebo.launch.py": ("GAZEBO_ARGUMENTS", GAZEBO_ARGUMENTS),
}
BUILDERS = {
    "ur5_bringup.launch.py": ur5_bringup,
    "franka_bringup.launch.py": franka_bringup,
    "ur5_gazebo.launch.py": ur5_gazebo_bringup,
}
INCLUDED = {
    "ur5_bringup.launch.py": {
        ("ur_robot_driver", "ur_control.launch.py"),
        ("ur_moveit_config", "ur_moveit.launch.py"),
        ("realsense2_camera", "rs_launch.py"),
    },
    "franka_bringup.launch.py": {
        ("franka_fr3_moveit_config", "moveit.launch.py"),
        ("realsense2_camera", "rs_launch.py"),
    },
    "ur5_gazebo.launch.py": {
        ("ur_simulation_gz", "ur_sim_control.launch.py"),
        ("ur_moveit_config", "ur_moveit.launch.py"),
    },
}


def tree(name: str) -> ast.Module:
    return ast.parse((REPO / "launch" / name).read_text())


# What the real-cell launch files share (the calibration TF, includes) lives in one module they import.
SUPPORT = ast.parse((REPO / "cliport_ros" / "ros" / "launch_support.py").read_text())


def test_launch_files_use_the_shared_support_module():
    for name in LAUNCH_FILES:
        imports = [n for n in ast.walk(tree(name)) if isinstance(n, ast.ImportFrom)]
        assert any(n.module == "cliport_ros.ros.launch_support" for n in imports), name


def calls(module: ast.AST, func: str) -> list[ast.Call]:
    found = []
    for node in ast.walk(module):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            if name == func:
                found.append(node)
    return found


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def literal(node: ast.expr | None):
    return node.value if isinstance(node, ast.Constant) else None


def declared(module: ast.Module) -> dict[str, ast.expr | None]:
    return {literal(c.args[0]): keyword(c, "default_value") for c in calls(module, "DeclareLaunchArgument")}


def own_nodes(module: ast.Module) -> list[ast.Call]:
    return [c for c in calls(module, "Node") if literal(keyword(c, "package")) == "cliport_ros"]


def parameter_names(node: ast.Call) -> set[str]:
    """Keys of the literal parameter dicts a Node call passes."""
    params = keyword(node, "parameters")
    names: set[str] = set()
    for item in params.elts if isinstance(params, ast.List) else []:
        if isinstance(item, ast.Dict):
            names |= {literal(k) for k in item.keys}
    return names


def console_scripts() -> set[str]:
    setup = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(setup):
        if isinstance(node, ast.Dict) and "console_scripts" in [literal(k) for k in node.keys]:
            scripts = node.values[[literal(k) for k in node.keys].index("console_scripts")]
            return {literal(e).split("=")[0].strip() for e in scripts.elts}
    raise AssertionError("no console_scripts in setup.py")


def cmake_nodes() -> set[str]:
    match = re.search(r"foreach\(_node ([^)]*)\)", (REPO / "CMakeLists.txt").read_text())
    return set(match.group(1).split())


def doc_row(launch_file: str, argument: str) -> str:
    """The argument's row in the table under the heading "### `<launch_file>` arguments" of the doc."""
    heading = f"### `{launch_file}` arguments"
    assert heading in DOC, f"docs/real_cell.md has no section {heading!r}"
    section = DOC.split(heading, 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith(f"| `{argument}` |")]
    assert rows, f"launch argument {argument} of {launch_file} is not in its table in docs/real_cell.md"
    return rows[0]


@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_executables_exist_as_console_scripts_and_installed_nodes(name):
    module = ast.parse((REPO / "launch" / name).read_text())
    executables = {literal(keyword(n, "executable")) for m in (module, SUPPORT) for n in own_nodes(m)}
    variants = [{"use_fake_hardware": "true"}] if name.startswith("franka") else [{}]
    executables |= {
        spec.executable
        for values in variants
        for spec in BUILDERS[name](values, REPO, "jazzy").extra_nodes
        if spec.package == "cliport_ros"
    }
    assert {"cliport_node", "moveit_executor"} <= executables
    for exe in executables:
        assert exe in console_scripts() and exe in cmake_nodes()
        module = ast.parse((REPO / "cliport_ros" / "ros" / f"{exe}.py").read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in module.body), exe


@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_config_files_exist(name):
    files = {literal(c.args[0]) for m in (tree(name), SUPPORT) for c in calls(m, "own_config_path")}
    assert "moveit_py_pilz_cartesian_limits.yaml" in files
    for file in files | {"ur5.yaml", "franka.yaml"}:
        assert (REPO / "config" / file).is_file(), f"{name} names config/{file}, which does not exist"


@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_arguments_declared_from_the_table_and_documented(name):
    table_name, table = LAUNCH_FILES[name]
    declared = [c for c in calls(tree(name), "declare")]
    assert [a.id for c in declared for a in c.args] == [table_name], "declare the bringup's argument table"
    assert not calls(tree(name), "DeclareLaunchArgument"), "arguments come from the table only"
    for argument in table:
        row = doc_row(name, argument.name)
        assert f"`{argument.default}`" in row or (argument.default == "" and "(empty)" in row), row
    documented = re.findall(r"^\| `([a-z_]+)` \|", DOC.split(f"### `{name}` arguments", 1)[1].split("\n#", 1)[0], re.M)
    assert documented == [a.name for a in table], "the doc's table lists the arguments in the table's order"


@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_no_substitution_reaches_a_node_parameter(name):
    """launch_ros turns a list holding one substitution into a string (cliport_node then refused its
    STRING_ARRAY camera_names): the bringups pass only performed values, built by cliport_ros.ros.bringup."""
    for module in (tree(name), SUPPORT):
        for node in calls(module, "Node"):
            parameters = keyword(node, "parameters")
            if parameters is None:
                continue
            inside = {n.id for n in ast.walk(parameters) if isinstance(n, ast.Name)} | {
                n.func.id for n in ast.walk(parameters) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            }
            assert not inside & {
                "cfg",
                "LaunchConfiguration",
                "PathJoinSubstitution",
                "PythonExpression",
                "own_config",
            }, ast.unparse(parameters)


@pytest.mark.parametrize("name", sorted(LAUNCH_FILES))
def test_included_launch_files(name):
    included = {(i.package, i.launch_file) for i in BUILDERS[name]({}, REPO, "jazzy").includes}
    assert included == INCLUDED[name]
    for package, _ in included | {("easy_handeye2", "publish.launch.py")}:
        assert f"`{package}`" in DOC, f"{package} is not named in docs/real_cell.md's install steps"


def test_both_sides_of_execute_pick_place_use_one_name():
    assert EXECUTE_ACTION == NODE_PARAMETERS["action_name"]
    cliport_yaml = yaml.safe_load((REPO / "config" / "cliport_node.yaml").read_text())
    assert cliport_yaml["cliport_node"]["ros__parameters"]["execute_action"] == EXECUTE_ACTION


@pytest.mark.parametrize("cell", ["ur5.yaml", "franka.yaml"])
def test_cell_files_shared_section_is_the_cliport_nodes(cell):
    document = yaml.safe_load((REPO / "config" / cell).read_text())
    shared = document["/**"]["ros__parameters"]
    assert set(shared) == {"base_frame", "workspace"}
    from cliport_ros.ros.cliport_node import CLIPORT_NODE_PARAMETERS

    taken = {spec.name for spec in CLIPORT_NODE_PARAMETERS}
    assert "base_frame" in taken
    for key in shared["workspace"]:
        assert f"workspace.{key}" in taken, f"the CLIPort node does not take workspace.{key}"
    config = CellConfig.from_yaml_dict(document)
    assert config.base_frame == shared["base_frame"]


def test_calibration_example_publishes_base_to_camera():
    from cliport_ros.execution.calibration import load_camera_calibration

    calibration = load_camera_calibration(REPO / "config" / "camera_calibration_example.yaml")
    args = calibration.static_transform_arguments()
    assert args[-4:] == ["--frame-id", "base_link", "--child-frame-id", "camera_link"]
    assert args[:6] == ["--x", "1.0", "--y", "0.0", "--z", "0.75"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["parameters"].update(calibration_type="eye_in_hand"), "only eye_on_base"),
        (lambda d: d["transform"]["rotation"].update(w=3.0), "'transform.rotation' must be a unit quaternion"),
        (lambda d: d["transform"]["translation"].pop("z"), "missing 'transform.translation.z'"),
        (lambda d: d["parameters"].update(robot_base_frame=""), "'parameters.robot_base_frame' must be a frame name"),
    ],
)
def test_calibration_errors_say_what_is_wrong(change, message):
    from cliport_ros.execution.calibration import camera_calibration_from_dict

    document = yaml.safe_load((REPO / "config" / "camera_calibration_example.yaml").read_text())
    change(document)
    with pytest.raises(ValueError, match=re.escape(message)):
        camera_calibration_from_dict(document)


@pytest.mark.parametrize("robot", ["ur5", "franka"])
def test_moveit_py_configs_have_what_moveit_py_needs(robot):
    document = yaml.safe_load((REPO / "config" / f"moveit_py_{robot}.yaml").read_text())
    assert {"planning_scene_monitor_options", "planning_pipelines", "plan_request_params"} <= set(document)
    assert "pilz_industrial_motion_planner" in document["planning_pipelines"]["pipeline_names"]
    from cliport_ros.ros.moveit_backend import FREE_PARAMETERS, LINEAR_PARAMETERS

    linear = document[LINEAR_PARAMETERS]["plan_request_params"]
    assert (linear["planning_pipeline"], linear["planner_id"]) == ("pilz_industrial_motion_planner", "LIN")
    assert document[FREE_PARAMETERS]["plan_request_params"]["planning_pipeline"] == "ompl"


def test_cliport_node_yaml_shows_the_nodes_own_defaults(ros_context):
    """config/cliport_node.yaml lists real parameters with the defaults the node declares."""
    from cliport_ros.ros.cliport_node import CliportNode

    node = CliportNode(context=ros_context)
    try:
        shown = yaml.safe_load((REPO / "config" / "cliport_node.yaml").read_text())["cliport_node"]["ros__parameters"]
        declared = {
            name: node.get_parameter(name).value
            for name in node._parameters
            if name not in ("use_sim_time", "start_type_description_service")
        }  # rclpy's own
        assert set(shown) <= set(declared), set(shown) - set(declared)
        assert {k: shown[k] for k in shown} == {k: declared[k] for k in shown}
        undocumented = {k for k in declared if not k.startswith("workspace.")} - set(shown)
        assert not undocumented, f"parameters missing from config/cliport_node.yaml: {sorted(undocumented)}"
    finally:
        node.destroy_node()


def test_franka_moveit_config_uses_what_franka_ros2_ships():
    """franka_fr3_moveit_config has config/fr3_joint_limits.yaml, not the joint_limits.yaml the builder loads by
    default, and an ompl_planning.yaml without planning_plugins (for panda_arm): the bringup names the file and
    brings complete pipeline blocks for fr3_arm (MoveIt 2.12 throws "Planning plugin name is empty" otherwise)."""
    module = tree("franka_bringup.launch.py")
    limits = [keyword(c, "file_path") for c in calls(module, "joint_limits")]
    assert [literal(f) for f in limits] == ["config/fr3_joint_limits.yaml"]
    source = (REPO / "launch" / "franka_bringup.launch.py").read_text()
    assert '"franka_bringup"), "urdf",' in source and '"franka_arm.urdf.xacro"' in source
    assert not calls(module, "planning_pipelines"), "Franka's own ompl_planning.yaml must not be loaded"
    document = yaml.safe_load((REPO / "config" / "moveit_py_franka.yaml").read_text())
    for pipeline in document["planning_pipelines"]["pipeline_names"]:
        plugins = document[pipeline]["planning_plugins"]
        assert isinstance(plugins, list) and plugins and "UNKNOWN" not in plugins, pipeline
        assert document[pipeline]["request_adapters"] and document[pipeline]["response_adapters"]
    assert document["ompl"]["fr3_arm"]["planner_configs"] == ["RRTConnectkConfigDefault"]
    assert "RRTConnectkConfigDefault" in document["ompl"]["planner_configs"]
    assert "panda_arm" not in document["ompl"]


@pytest.mark.parametrize("robot", ["ur5", "franka"])
def test_moveit_py_configs_set_only_what_moveitcpp_reads(robot):
    """MoveItCpp (2.12) reads name, robot_description and wait_for_initial_state_timeout of
    planning_scene_monitor_options; topic keys there are ignored, so they must not pretend to do anything."""
    document = yaml.safe_load((REPO / "config" / f"moveit_py_{robot}.yaml").read_text())
    assert set(document["planning_scene_monitor_options"]) == {
        "name",
        "robot_description",
        "wait_for_initial_state_timeout",
    }
