"""The ``cliport`` command: tasks, demos, train, merge, average, eval, bench, import, predict, sim, snapshot, doctor,
console, replay.

Each subcommand lives beside the code it drives (``<room>/commands.py`` exposing ``add_arguments(parser)``
and ``run(args) -> int``); this module only dispatches, so ``cliport --help`` stays fast and imports
neither torch nor pybullet nor rclpy.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A subcommand: declares its arguments, then runs and returns the exit status."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# name -> ("module:Command object", one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "tasks": ("cliport_ros.sim.commands:tasks", "list the simulated tasks and their splits"),
    "demos": ("cliport_ros.sim.commands:demos", "generate oracle demonstrations on disk"),
    "train": ("cliport_ros.training.commands:train", "train a policy on demonstrations"),
    "merge": (
        "cliport_ros.training.commands:merge",
        "join the pick net of one checkpoint and the place nets of another (runs of --nets pick / place)",
    ),
    "average": (
        "cliport_ros.training.commands:average",
        "average the weights of checkpoints of one config (e.g. a run's last snapshots)",
    ),
    "eval": ("cliport_ros.training.commands:evaluate", "evaluate a checkpoint in the simulator"),
    "bench": ("cliport_ros.training.commands:bench", "measure the policy's decision latency"),
    "import": (
        "cliport_ros.model.commands:import_checkpoint",
        "convert a checkpoint of the reference implementation's 'cliport' agent into a checkpoint folder",
    ),
    "predict": ("cliport_ros.model.commands:predict_command", "make one decision on a saved top-down view"),
    "sim": ("cliport_ros.ros.sim_bringup:command", "run the simulated ROS bringup in one process"),
    "snapshot": (
        "cliport_ros.ros.snapshot:command",
        "save the cameras' live top-down view as a PNG (calibration check)",
    ),
    "doctor": (
        "cliport_ros.ros.doctor:command",
        "check a real cell's graph before anything moves (ok / problem + fix)",
    ),
    "console": (
        "cliport_ros.ros.console_node:command",
        "the operator console in a browser: execute or correct the policy, record episodes",
    ),
    "replay": (
        "cliport_ros.ros.replay:command",
        "re-run a recorded run's decisions (an MCAP bag) offline and report where they differ",
    ),
}


def _load(target: str):
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cliport", description="CLIPort for ROS 2: data, training, evaluation, bringup"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (target, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_target=target)
        # Arguments are declared by the subcommand's own module, loaded only when it is chosen.
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        if argv and argv[0] not in ("-h", "--help"):
            parser.error(f"unknown command {argv[0]!r}; choose from {', '.join(SUBCOMMANDS)}")
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    command = _load(SUBCOMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"cliport {name}", description=SUBCOMMANDS[name][1])
    command.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    return int(command.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
