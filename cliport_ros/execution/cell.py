"""One real cell's configuration: planning group and frames, workspace and height limits, tool geometry, speed
scaling, gripper and planning-scene settings.

The node reads these as ROS parameters with the dotted names of ``CellConfig.to_parameters()`` (a cell YAML
such as config/ur5.yaml writes them nested: ``gripper: {type: ...}`` is ``gripper.type``). Every value is
validated here, and every error message names the parameter, what it got and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from cliport_ros.geometry import Workspace

GRIPPER_TYPES = ("suction_service", "suction_ur_io", "parallel_jaw", "franka_hand")
# The Franka Hand opens to 80 mm between the fingers.
FRANKA_HAND_MAX_WIDTH = 0.08
WORKSPACE_KEYS = ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"parameter '{name}' must be a finite number, got {value!r}")
    return float(value)


def _in_range(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> float:
    number = _number(name, value)
    if number > hi or number < lo or (lo_open and number == lo):
        bracket = "(" if lo_open else "["
        raise ValueError(f"parameter '{name}' must be in {bracket}{lo}, {hi}], got {number}")
    return number


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ValueError(f"parameter '{name}' must be a non-empty name without spaces around it, got {value!r}")
    return value


def _vector(name: str, value: Any, size: int) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != size:
        raise ValueError(f"parameter '{name}' must be a list of {size} numbers, got {value!r}")
    return tuple(_number(f"{name}[{i}]", v) for i, v in enumerate(value))


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"parameter '{name}' must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class GripperConfig:
    """Which gripper and how to drive it.

    suction_service: a std_srvs/SetBool service (true = suction on). suction_ur_io: a UR tool digital output
    through the driver's io_and_status_controller set_io service (ur_msgs/SetIO). parallel_jaw: a
    control_msgs/GripperCommand action (a Robotiq 2F on the UR driver). franka_hand: franka_gripper's
    franka_msgs Grasp and Move actions under ``action`` (``<action>/grasp``, ``<action>/move``); positions are
    widths between the fingers in metres, and a grasp succeeds on any object wider than
    closed_position + holding_tolerance (GripperCommand's fixed 5 mm grasp tolerance would miss most objects).
    """

    type: str = "suction_service"
    service: str = "/suction/set"
    io_service: str = "/io_and_status_controller/set_io"
    io_pin: int = 0
    action: str = "/robotiq_gripper_controller/gripper_cmd"
    open_position: float = 0.0
    closed_position: float = 0.8
    max_effort: float = 20.0
    # Closing on an object stops short of closed_position; a jaw within this of it closed on nothing.
    holding_tolerance: float = 0.01
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.type not in GRIPPER_TYPES:
            raise ValueError(f"parameter 'gripper.type' must be one of {', '.join(GRIPPER_TYPES)}, got {self.type!r}")
        _name("gripper.service", self.service)
        _name("gripper.io_service", self.io_service)
        _name("gripper.action", self.action)
        if isinstance(self.io_pin, bool) or not isinstance(self.io_pin, int) or not 0 <= self.io_pin <= 17:
            raise ValueError(f"parameter 'gripper.io_pin' must be an integer in [0, 17], got {self.io_pin!r}")
        for name in ("open_position", "closed_position"):
            _number(f"gripper.{name}", getattr(self, name))
        if self.open_position == self.closed_position:
            raise ValueError("parameters 'gripper.open_position' and 'gripper.closed_position' must differ")
        _in_range("gripper.max_effort", self.max_effort, 0.0, 1000.0)
        _in_range(
            "gripper.holding_tolerance",
            self.holding_tolerance,
            0.0,
            abs(self.closed_position - self.open_position),
            lo_open=True,
        )
        _in_range("gripper.timeout", self.timeout, 0.0, 120.0, lo_open=True)
        if self.type == "franka_hand":
            _in_range("gripper.open_position", self.open_position, 0.0, FRANKA_HAND_MAX_WIDTH, lo_open=True)
            if not 0.0 <= self.closed_position < self.open_position:
                raise ValueError(
                    "parameter 'gripper.closed_position' must be a width in [0, open_position) for "
                    f"franka_hand, got {self.closed_position}"
                )


@dataclass(frozen=True)
class SceneConfig:
    """Collision objects for the planning scene: the table under the workspace and an optional ceiling."""

    add_table: bool = True
    table_margin: float = 0.2  # how far the table box extends beyond the workspace x/y bounds (m)
    table_thickness: float = 0.05
    ceiling_height: float = 0.0  # z of a ceiling box over the workspace; 0 adds none

    def __post_init__(self) -> None:
        _bool("scene.add_table", self.add_table)
        _in_range("scene.table_margin", self.table_margin, 0.0, 2.0)
        _in_range("scene.table_thickness", self.table_thickness, 0.0, 1.0, lo_open=True)
        _in_range("scene.ceiling_height", self.ceiling_height, 0.0, 3.0)


@dataclass(frozen=True)
class CellConfig:
    """A real cell. Heights are z of the tool centre point (TCP) in ``base_frame``; lengths in metres."""

    planning_group: str = "ur_manipulator"
    ee_link: str = "tool0"
    base_frame: str = "base_link"
    # Trajectory controllers passed to MoveIt's execute(); the UR one was renamed between driver releases.
    controllers: tuple[str, ...] = ("scaled_joint_trajectory_controller",)
    workspace: Workspace = field(default_factory=Workspace)
    min_height: float = 0.005  # no TCP target below this z (just above the table)
    max_height: float = 0.6  # no TCP target above this z
    approach_height: float = 0.1  # pre-grasp / pre-place poses this far above the grasp / release pose
    grasp_depth: float = 0.0  # how far below the picked surface the TCP goes (fingers around it)
    place_clearance: float = 0.01  # the held object's bottom is released this far above the place surface
    push_height: float = 0.01  # TCP height above workspace.z_min while pushing
    # Tool orientation (xyzw, in base_frame) that points the tool straight down at yaw 0; the predicted yaw
    # rotates it about the base z axis.
    tool_orientation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    # The TCP's position in ee_link's frame (e.g. a suction cup 0.1 m along tool0's z axis: [0, 0, 0.1]).
    tcp_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # Conservative scalings of the robot's joint velocity/acceleration limits: a first run is slow.
    velocity_scaling: float = 0.1
    acceleration_scaling: float = 0.1
    linear_velocity_scaling: float = 0.05
    linear_acceleration_scaling: float = 0.05
    planning_time: float = 5.0
    retreat_on_failure: bool = True  # after a failed grasp or a failed descent, go straight back up
    gripper: GripperConfig = field(default_factory=GripperConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)

    def __post_init__(self) -> None:
        _name("planning_group", self.planning_group)
        _name("ee_link", self.ee_link)
        _name("base_frame", self.base_frame)
        names_ok = all(isinstance(c, str) and c.strip() for c in self.controllers)
        if isinstance(self.controllers, str) or not names_ok:
            raise ValueError(f"parameter 'controllers' must be a list of controller names, got {self.controllers!r}")
        object.__setattr__(self, "controllers", tuple(self.controllers))
        if self.workspace.frame_id != self.base_frame:
            raise ValueError(
                f"workspace bounds are in frame {self.workspace.frame_id!r} but parameter 'base_frame' is "
                f"{self.base_frame!r}; they must agree"
            )
        _number("min_height", self.min_height)
        if self.min_height < self.workspace.z_min:
            raise ValueError(
                f"parameter 'min_height' ({self.min_height}) must not be below 'workspace.z_min' "
                f"({self.workspace.z_min}): the TCP would go into the table"
            )
        _number("max_height", self.max_height)
        if not self.max_height > self.min_height:
            raise ValueError(
                f"parameter 'max_height' ({self.max_height}) must be above 'min_height' ({self.min_height})"
            )
        _in_range("approach_height", self.approach_height, 0.0, 0.5, lo_open=True)
        _in_range("grasp_depth", self.grasp_depth, 0.0, 0.2)
        _in_range("place_clearance", self.place_clearance, 0.0, 0.2)
        _in_range("push_height", self.push_height, 0.0, 0.2)
        quaternion = _vector("tool_orientation", self.tool_orientation, 4)
        norm = math.sqrt(sum(c * c for c in quaternion))
        if abs(norm - 1.0) > 1e-3:
            raise ValueError(f"parameter 'tool_orientation' must be a unit quaternion (x, y, z, w), norm {norm:.4f}")
        object.__setattr__(self, "tool_orientation", tuple(c / norm for c in quaternion))
        object.__setattr__(self, "tcp_offset", _vector("tcp_offset", self.tcp_offset, 3))
        if math.sqrt(sum(c * c for c in self.tcp_offset)) > 0.5:
            raise ValueError(f"parameter 'tcp_offset' must be shorter than 0.5 m, got {self.tcp_offset}")
        for name in (
            "velocity_scaling",
            "acceleration_scaling",
            "linear_velocity_scaling",
            "linear_acceleration_scaling",
        ):
            _in_range(name, getattr(self, name), 0.0, 1.0, lo_open=True)
        _in_range("planning_time", self.planning_time, 0.0, 60.0, lo_open=True)
        _bool("retreat_on_failure", self.retreat_on_failure)
        if 0.0 < self.scene.ceiling_height <= self.max_height:
            raise ValueError(
                f"parameter 'scene.ceiling_height' ({self.scene.ceiling_height}) must be 0 (none) or above "
                f"'max_height' ({self.max_height}): targets up to max_height must stay reachable"
            )

    # ROS parameters <-> config ---------------------------------------------------------------------------

    def to_parameters(self) -> dict[str, Any]:
        """Flat {dotted parameter name: value} with ROS-compatible types (lists, not tuples)."""
        params: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "workspace":
                for key in WORKSPACE_KEYS:
                    params[f"workspace.{key}"] = float(getattr(value, key))
            elif f.name in ("gripper", "scene"):
                for sub in fields(value):
                    params[f"{f.name}.{sub.name}"] = getattr(value, sub.name)
            elif isinstance(value, tuple):
                params[f.name] = list(value)
            else:
                params[f.name] = value
        return params

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any], defaults: CellConfig | None = None) -> CellConfig:
        """Build from flat dotted parameters; missing ones keep ``defaults`` (CellConfig() if not given)."""
        base = (defaults or cls()).to_parameters()
        unknown = sorted(set(params) - set(base))
        if unknown:
            raise ValueError(f"unknown cell parameter(s) {unknown}; allowed: {sorted(base)}")
        merged = {**base, **params}
        for name, default in base.items():
            value = merged[name]
            # ROS hands integers where a YAML author wrote 1 for 1.0; floats stay floats, bools stay bools.
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                merged[name] = float(value)
            elif isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
                if value != int(value):
                    raise ValueError(f"parameter '{name}' must be an integer, got {value!r}")
                merged[name] = int(value)
        grouped: dict[str, dict[str, Any]] = {"workspace": {}, "gripper": {}, "scene": {}}
        top: dict[str, Any] = {}
        for name, value in merged.items():
            head, _, tail = name.partition(".")
            if tail:
                grouped[head][tail] = value
            else:
                top[name] = value
        try:
            workspace = Workspace.from_dict({**grouped["workspace"], "frame_id": top["base_frame"]})
        except ValueError as exc:
            raise ValueError(f"parameters 'workspace.*' invalid: {exc}") from exc
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in top.items()}
        return cls(
            **values,
            workspace=workspace,
            gripper=GripperConfig(**grouped["gripper"]),
            scene=SceneConfig(**grouped["scene"]),
        )

    @classmethod
    def from_yaml_dict(
        cls,
        document: Mapping[str, Any],
        node_name: str = "moveit_executor",
        node_parameters: Sequence[str] = ("action_name",),
    ) -> CellConfig:
        """From a ROS parameter file's parsed YAML: the cell parameters under ``/**`` (shared with other
        nodes; theirs are skipped) and under ``node_name`` (where any name that is neither a cell parameter
        nor one of ``node_parameters`` is an error, so a typo does not silently keep a default)."""
        if not isinstance(document, Mapping) or node_name not in document:
            raise ValueError(f"no '{node_name}: ros__parameters:' section in the parameter file")
        known = cls().to_parameters()
        merged: dict[str, Any] = {}
        for section_name in ("/**", node_name):
            section = document.get(section_name)
            if section is None:
                continue
            if not isinstance(section, Mapping) or not isinstance(section.get("ros__parameters"), Mapping):
                raise ValueError(f"section '{section_name}' must hold a 'ros__parameters:' mapping")
            flat = flatten_parameters(section["ros__parameters"])
            if section_name == node_name:
                unknown = sorted(set(flat) - set(known) - set(node_parameters))
                if unknown:
                    raise ValueError(
                        f"unknown parameter(s) {unknown} for {node_name}; allowed: "
                        f"{sorted(set(known) | set(node_parameters))}"
                    )
            merged.update({k: v for k, v in flat.items() if k in known})
        return cls.from_parameters(merged)


def flatten_parameters(section: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mapping -> dotted names, as ROS reads a parameter file."""
    flat: dict[str, Any] = {}
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_parameters(value, f"{name}."))
        else:
            flat[name] = value
    return flat
