"""``cliport tasks`` and ``cliport demos``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from cliport_ros.cli import Command

if TYPE_CHECKING:  # the simulator's modules load only when a command runs
    from cliport_ros.sim.demos import PlaceNoise


def _tasks_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")


def _tasks_run(args: argparse.Namespace) -> int:
    from cliport_ros.sim.tasks import SPLITS, TASK_GROUPS, task_keys

    keys = task_keys()
    if args.json:
        groups = {name: list(members) for name, members in TASK_GROUPS.items()}
        print(json.dumps({"tasks": keys, "splits": list(SPLITS), "groups": groups}))
    else:
        for key in keys:
            print(f"{key}\tsplits: {' '.join(SPLITS)}")
        for name, members in TASK_GROUPS.items():
            print(f"{name}\tgroup of {len(members)}: {','.join(members)}")
    return 0


def _demos_args(parser: argparse.ArgumentParser) -> None:
    from cliport_ros.sim.rendering import RENDERERS
    from cliport_ros.sim.robots import ROBOTS

    parser.add_argument("task", help="task key, e.g. put-block-in-bowl-seen-colors (see `cliport tasks`)")
    parser.add_argument("--split", choices=("train", "val", "test"), default="train")
    parser.add_argument("--n", type=int, required=True, help="number of full-score episodes to have on disk")
    parser.add_argument("--out", required=True, help="output folder (episodes already there are kept and skipped)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the first episode's seed (default: the split's first: train 0, val 1, test 10001); step 2",
    )
    parser.add_argument("--seed-start", type=int, default=None, help="deprecated spelling of --seed")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--robot", choices=ROBOTS, default="ur5")
    parser.add_argument("--renderer", choices=RENDERERS, default="auto")
    parser.add_argument("--max-tries", type=int, default=None, help="give up after this many seeds (default 3n+20)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument(
        "--mistakes",
        action="store_true",
        help="recovery demos: each episode places one block wrong at a step drawn from its seed (not "
        "recorded), then the oracle puts it right; give them seeds of their own (--seed)",
    )
    parser.add_argument(
        "--mistake-step",
        type=int,
        default=None,
        metavar="K",
        help="with --mistakes: the wrong place at the oracle's step K (from 0) of every episode, e.g. the step "
        "where a policy goes wrong (default: a step drawn from each seed)",
    )
    parser.add_argument(
        "--place-noise",
        type=_place_noise,
        default=None,
        metavar="MM,DEG",
        help="execute each oracle place shifted ~N(0, MM) per axis and turned ~N(0, DEG), cut at 2 std, "
        "keeping the oracle's place as the label: states after imperfect places, as a policy leaves them",
    )
    parser.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="I/N",
        help="one of N jobs sharing this run's seeds without overlap (I from 0): e.g. a scheduler's job array, "
        "each job with the same --n, --seed and --out, writes its share of the --n episodes",
    )


def _shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard takes I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return (i, n)


def _place_noise(text: str) -> PlaceNoise:
    from cliport_ros.sim.demos import PlaceNoise

    try:
        return PlaceNoise.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _first_seed(args: argparse.Namespace) -> int | None:
    from cliport_ros.sim.seeds import deprecated_option

    if args.seed_start is not None:
        print(
            deprecated_option("demos", "--seed-start", "--seed (the same: the first episode's seed)"), file=sys.stderr
        )
        if args.seed is not None and args.seed != args.seed_start:
            raise ValueError("give --seed or --seed-start, not both")
        return args.seed_start
    return args.seed


def _demos_run(args: argparse.Namespace) -> int:
    from cliport_ros.sim.demos import generate_demos

    try:
        summary = generate_demos(
            args.task,
            args.split,
            args.n,
            args.out,
            seed_start=_first_seed(args),
            workers=args.workers,
            robot=args.robot,
            renderer=args.renderer,
            max_tries=args.max_tries,
            progress=not args.no_progress,
            mistakes=args.mistakes,
            shard=args.shard,
            mistake_step=args.mistake_step,
            place_noise=args.place_noise,
        )
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(summary))
    return 0 if summary["episodes"] >= summary["target"] else 1


tasks = Command(_tasks_args, _tasks_run)
demos = Command(_demos_args, _demos_run)
