"""A double of how launch_ros (Jazzy, 0.26.x) delivers a Node's ``parameters=[...]`` to the process.

launch and launch_ros are not on PyPI, so they cannot run here. This reproduces, rule for rule, the parts of
launch_ros 0.26.6 that decide what a node receives:

- launch_ros/utilities/normalize_parameters.py: ``normalize_parameter_dict`` (nested dicts flattened with
  ".", a ``str`` value kept as the string by a ``yaml.dump`` round trip, a list of plain values made uniform,
  a list holding substitutions and strings made ONE string) and ``_normalize_parameter_array_value``;
- launch_ros/utilities/evaluate_parameters.py: ``evaluate_parameter_dict`` (a substitution's text is read as
  YAML; a list of lists of substitutions gives a list; an empty list is refused);
- launch_ros/actions/node.py: ``_create_params_file_from_dict`` (each dict written with ``yaml.dump`` under
  ``/**`` unless the node's name and namespace are both given) and ``--params-file`` per item, in order.

``ConfigurationDouble`` stands in for launch's LaunchConfiguration (a Substitution). The nodes are then real
rclpy nodes given these files, so rcl's own parser and rclpy's typing decide what each parameter becomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml


class ConfigurationDouble:
    """A LaunchConfiguration: performs to the launch argument's value."""

    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: Mapping[str, str]) -> str:
        return context[self.name]


class _Text(ConfigurationDouble):
    """launch's TextSubstitution."""

    def __init__(self, text: str) -> None:
        super().__init__("")
        self.text = text

    def perform(self, context: Mapping[str, str]) -> str:
        return self.text


def _to_substitutions(value: Any) -> list[ConfigurationDouble]:
    """launch.utilities.normalize_to_list_of_substitutions."""
    if isinstance(value, str):
        return [_Text(value)]
    if isinstance(value, ConfigurationDouble):
        return [value]
    return [s for item in value for s in _to_substitutions(item)]


def _array(value: Sequence[Any]) -> tuple:
    types: set[type] = set()
    for item in value:
        if isinstance(item, ConfigurationDouble):
            types.add(ConfigurationDouble)
        elif isinstance(item, (str, bool, int, float)):
            types.add(type(item))
        elif isinstance(item, Sequence):
            types.add(tuple)
        else:
            raise TypeError(f"subvalue {item!r} has an unsupported type")
    if types == {int}:
        return tuple(int(e) for e in value)
    if types in ({float}, {int, float}):
        return tuple(float(e) for e in value)
    if ConfigurationDouble in types and types <= {str, ConfigurationDouble}:
        # One string: the defect a list holding a single substitution runs into.
        return tuple(_to_substitutions(value))
    if types == {bool}:
        return tuple(bool(e) for e in value)
    items = [yaml.dump(e) if isinstance(e, (float, int, bool, str)) else e for e in value]
    return tuple(tuple(_to_substitutions(e)) for e in items)


def normalize(parameters: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(value, Mapping):
            out.update(normalize(value, full))
        elif isinstance(value, str):
            out[full] = tuple(_to_substitutions(yaml.dump(value)))
        elif isinstance(value, ConfigurationDouble):
            out[full] = (value,)
        elif isinstance(value, (float, bool, int, bytes)):
            out[full] = value
        elif isinstance(value, Sequence):
            out[full] = _array(value)
        else:
            raise TypeError(f"Unexpected type for parameter value {value!r}")
    return out


def _uniform(sequence: Sequence[Any]) -> bool:
    if not sequence or type(sequence[0]) not in (bool, int, float, str):
        return False
    return all(isinstance(item, type(sequence[0])) for item in sequence)


def evaluate(normalized: Mapping[str, Any], context: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in normalized.items():
        if isinstance(value, tuple) and value and isinstance(value[0], ConfigurationDouble):
            text = "".join(s.perform(context) for s in value) or "''"
            loaded = yaml.safe_load(text)
            if type(loaded) in (bool, int, float, str, bytes):
                out[name] = loaded
            elif isinstance(loaded, Sequence):
                if not _uniform(loaded):
                    raise TypeError(f"Expected a non-empty sequence, with items of uniform type for {name!r}")
                out[name] = tuple(loaded)
            else:
                raise TypeError(f"Allowed value types are ... Got {type(loaded)} for {name!r}")
        elif isinstance(value, tuple) and value and isinstance(value[0], Sequence):
            loaded = [yaml.safe_load("".join(s.perform(context) for s in sub)) for sub in value]
            if not _uniform(loaded):
                raise TypeError(f"Expected a non-empty sequence, with items of uniform type for {name!r}")
            out[name] = tuple(loaded)
        elif isinstance(value, tuple) and value:
            out[name] = tuple(type(value[0])(v) for v in value)
        else:
            if not isinstance(value, (float, int, str, bool, bytes)):
                raise TypeError(f"value {value!r} of {name!r}: expected float, int, str, bool or bytes")
            out[name] = value
    return out


def deliver(
    parameters: Sequence[Mapping[str, Any] | str | Path], context: Mapping[str, str], folder: Path
) -> list[str]:
    """The ``--ros-args`` launch_ros gives a Node (no namespace given) for ``parameters=[...]``."""
    args = ["--ros-args"]
    for index, item in enumerate(parameters):
        if isinstance(item, Mapping):
            path = folder / f"launch_params_{index}.yaml"
            with path.open("w") as handle:
                yaml.dump(
                    {"/**": {"ros__parameters": evaluate(normalize(item), context)}}, handle, default_flow_style=False
                )
            args += ["--params-file", str(path)]
        else:
            args += ["--params-file", str(item)]
    return args
