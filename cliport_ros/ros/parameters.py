"""Each node's parameters as one table: name, default, description, range or choices, read-only.

The table feeds ``declare_parameter`` with a ParameterDescriptor (so ``ros2 param describe`` shows the
description and the range, and ``ros2 param set`` refuses a value outside it), the node's config file under
config/, and the parameter tables of the README and docs (``python -m cliport_ros.ros.parameters
cliport_node`` prints the Markdown table; a test checks that the files agree with the table). The ranges here
are what the ROS-free configs (AgentConfig, Workspace, ...) accept; those configs still validate the values
and their messages name the parameter.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    # Any type accepted at declaration (a YAML 1 for 1.0); the node's config then validates and names it.
    dynamic_typing: bool = False

    def constraint(self) -> str:
        """The allowed values in words ("" when any value of the type is allowed)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"in [{_number(self.minimum)}, {_number(self.maximum)}]"
        return ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def descriptor(spec: ParameterSpec) -> Any:
    """The rcl_interfaces ParameterDescriptor of a spec."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    described = ParameterDescriptor(
        description=spec.description, read_only=spec.read_only, dynamic_typing=spec.dynamic_typing
    )
    if spec.choices:
        described.additional_constraints = spec.constraint()
    if spec.minimum is not None and spec.maximum is not None:
        if isinstance(spec.default, bool):
            raise ValueError(f"parameter {spec.name}: a boolean takes no range")
        if isinstance(spec.default, int):
            described.integer_range = [IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
        else:
            described.floating_point_range = [
                FloatingPointRange(from_value=float(spec.minimum), to_value=float(spec.maximum), step=0.0)
            ]
    return described


def declare(node: Any, specs: list[ParameterSpec]) -> None:
    """Declare every parameter of the table on ``node``, with its descriptor."""
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))


def shown(value: Any) -> str:
    """A default as the docs and YAML files show it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def markdown_table(specs: list[ParameterSpec]) -> str:
    """The parameter table of the README / docs."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for spec in specs:
        meaning = spec.description + (f" ({spec.constraint()})" if spec.constraint() else "")
        rows.append(f"| `{spec.name}` | `{shown(spec.default)}` | {meaning} |")
    return "\n".join(rows)


def tables() -> dict[str, list[ParameterSpec]]:
    from cliport_ros.ros.cliport_node import CLIPORT_NODE_PARAMETERS
    from cliport_ros.ros.console_node import CONSOLE_NODE_PARAMETERS
    from cliport_ros.ros.moveit_executor import EXECUTOR_PARAMETERS
    from cliport_ros.ros.sim_node import SIM_NODE_PARAMETERS

    return {
        "cliport_node": CLIPORT_NODE_PARAMETERS,
        "sim_node": SIM_NODE_PARAMETERS,
        "moveit_executor": EXECUTOR_PARAMETERS,
        "console_node": CONSOLE_NODE_PARAMETERS,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m cliport_ros.ros.parameters cliport_node``: print a node's parameter table (Markdown)."""
    args = sys.argv[1:] if argv is None else argv
    known = tables()
    if len(args) != 1 or args[0] not in known:
        print(f"usage: python -m cliport_ros.ros.parameters {{{','.join(known)}}}", file=sys.stderr)
        return 2
    print(markdown_table(known[args[0]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
