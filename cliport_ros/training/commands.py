"""`cliport train`, `cliport merge`, `cliport eval`, `cliport bench`: each prints a final JSON line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cliport_ros.cli import Command
from cliport_ros.model.config import NAMES, TEST_TIME_FLIPS


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _step_weights(items: list[str]) -> dict[int, float]:
    """``["3=4", "1=2"]`` -> ``{3: 4.0, 1: 2.0}``; ValueError naming the item that is not INDEX=WEIGHT."""
    weights: dict[int, float] = {}
    for item in items:
        index, sep, weight = item.partition("=")
        message = f"--step-weight takes INDEX=WEIGHT (e.g. 3=4), got {item!r}"
        if not sep:
            raise ValueError(message)
        try:
            weights[int(index)] = float(weight)
        except ValueError:
            raise ValueError(message) from None
    return weights


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


# ---------------------------------------------------------------------------------------------- train
def _train_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", help="one task, e.g. put-block-in-bowl-seen-colors")
    which.add_argument(
        "--tasks",
        help="comma-separated tasks and group names (see `cliport tasks`) for one multi-task policy; tasks are "
        "sampled uniformly",
    )
    p.add_argument("--config", default="tiny", choices=NAMES, help="model size (default: tiny)")
    p.add_argument(
        "--clip-weights",
        default=None,
        help="override the config's CLIP weights: openai | none | PATH (a pretrained CLIP stays frozen)",
    )
    p.add_argument(
        "--model-set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one ModelConfig field (VALUE is JSON, e.g. lang_layers=8); repeatable",
    )
    p.add_argument(
        "--data",
        action="append",
        default=None,
        help="demo folder written by `cliport demos` or `cliport console` (default: data); repeat it to mix "
        "folders, e.g. recorded episodes and simulated demos",
    )
    p.add_argument(
        "--n-demos", type=_non_negative_int, default=100, help="demos per task over all folders (default 100; 0: all)"
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=1,
        help="samples per step on each process (default 1); the global batch is this times the processes",
    )
    p.add_argument(
        "--nproc",
        type=_positive_int,
        default=1,
        help="train on N processes of this machine (data-parallel, torch.distributed: gloo on CPUs, NCCL on "
        "GPUs), started with torchrun; for several machines run `torchrun ... -m cliport_ros.cli train` yourself",
    )
    p.add_argument(
        "--operator-weight",
        type=float,
        default=1.0,
        help="how much more often a step an operator chose (console correction or demonstration) is drawn "
        "than any other step of its task (default 1)",
    )
    p.add_argument(
        "--step-weight",
        action="append",
        default=[],
        metavar="INDEX=WEIGHT",
        help="draw the INDEX-th step of every demo (from 0) WEIGHT times as often as the others; repeatable "
        "(e.g. --step-weight 3=4: a sequential task's step where only the instruction says where)",
    )
    p.add_argument("--steps", type=_positive_int, default=20000, help="training iterations (default: 20000)")
    p.add_argument("--out", required=True, help="run folder (resumed when it holds last/train_state.pt)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (paper: 1e-4)")
    p.add_argument("--lr-schedule", default="none", choices=("none", "cosine", "step"))
    p.add_argument("--seed", type=int, default=0, help="the run's random seed (initialisation, batches, augmentation)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    p.add_argument("--no-augment", action="store_true", help="turn the SE(2) augmentation off")
    p.add_argument("--log-every", type=_positive_int, default=50)
    p.add_argument("--save-every", type=_positive_int, default=500)
    p.add_argument("--val-every", type=_non_negative_int, default=2000, help="0: no simulator validation")
    p.add_argument("--val-episodes", type=_positive_int, default=10)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--nets",
        default="all",
        choices=("all", "pick", "place"),
        help="train both halves (default), or one half alone, e.g. one process per CPU core, joined by "
        "`cliport merge` (needs clip_per_net=true for a from-scratch CLIP, and --val-every 0)",
    )
    p.add_argument(
        "--place-init-from",
        default=None,
        metavar="CHECKPOINT",
        help="start the key and query nets (and the place text encoder) from this checkpoint's pick net",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="CHECKPOINT",
        help="fine-tune: start from all the weights of this checkpoint (same model config), with a fresh "
        "optimiser and learning-rate schedule",
    )
    p.add_argument(
        "--place-symmetry",
        type=int,
        default=0,
        metavar="DEG",
        help="with the pose loss: the placed objects' rotational symmetry in degrees (90 for the blocks of "
        "stack-block-pyramid); place rotations that far apart count as the same label (default 0: none)",
    )
    p.add_argument(
        "--place-label",
        default="pick_centre",
        choices=("pick_centre", "demo"),
        help="pick_centre: the place label is where the pick pixel's centre, where the tool lands, must go "
        "(default); demo: the place pixel as recorded, for the demo's exact pick point (the labels of runs "
        "before 2026-12-08)",
    )
    p.add_argument(
        "--place-loss",
        default="pose",
        choices=("pose", "position"),
        help="pose: place cross-entropy over rotation and pixel (paper, default); position: over the pixel "
        "with the rotations summed out, for tasks whose success ignores the placed yaw (put-block-in-bowl)",
    )
    p.add_argument(
        "--clip-lr-scale",
        type=float,
        default=1.0,
        help="learning rate of a from-scratch CLIP (its text encoder) as a multiple of --lr (default 1)",
    )


def parse_model_overrides(items: list[str]) -> dict:
    """``["lang_layers=8", ...]`` -> ``{"lang_layers": 8}`` (values parsed as JSON, else kept as text)."""
    overrides = {}
    for item in items:
        field_name, sep, text = item.partition("=")
        if not sep or not field_name.strip():
            raise ValueError(f"--model-set takes FIELD=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        overrides[field_name.strip()] = value
    return overrides


def _launch_ranks(nproc: int) -> int:
    """Run this same `cliport train` command as ``nproc`` ranks under torchrun (torch.distributed.run)."""
    import os
    import subprocess

    argv = sys.argv[sys.argv.index("train") :]
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == "--nproc":
            skip = True
            continue
        if item.startswith("--nproc="):
            continue
        kept.append(item)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "-m", "cliport_ros.cli", *kept,
    ]  # fmt: skip
    print(json.dumps({"launching": nproc, "command": " ".join(command)}), file=sys.stderr)
    return subprocess.run(command, env=dict(os.environ)).returncode


def _train_run(args: argparse.Namespace) -> int:
    import os

    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch_ranks(args.nproc)
    from cliport_ros.model.clip_backbone import ClipWeightsUnavailable
    from cliport_ros.sim.tasks import expand_tasks
    from cliport_ros.training.train import TrainConfig, sim_validator, train

    try:
        tasks = (args.task,) if args.task else expand_tasks(args.tasks)
        overrides = parse_model_overrides(args.model_set)
    except ValueError as exc:
        print(f"cliport train: {exc}", file=sys.stderr)
        return 2
    if args.clip_weights is not None:
        overrides["clip_weights"] = args.clip_weights
        if args.clip_weights != "none":
            overrides["clip_trainable"] = False
    try:
        cfg = TrainConfig(
            tasks=tasks,
            out=args.out,
            data=tuple(args.data or ["data"]),
            model=args.config,
            model_overrides=overrides,
            n_demos=args.n_demos,
            steps=args.steps,
            lr=args.lr,
            lr_schedule=args.lr_schedule,
            augment=not args.no_augment,
            seed=args.seed,
            device=args.device,
            log_every=args.log_every,
            save_every=args.save_every,
            val_every=args.val_every,
            val_episodes=args.val_episodes,
            threads=args.threads,
            nets=args.nets,
            place_init_from=args.place_init_from,
            init_from=args.init_from,
            place_loss=args.place_loss,
            place_symmetry=args.place_symmetry,
            place_label=args.place_label,
            clip_lr_scale=args.clip_lr_scale,
            operator_weight=args.operator_weight,
            step_weights=_step_weights(args.step_weight),
            batch_size=args.batch_size,
        )
        validate = sim_validator(tasks, args.val_episodes) if args.val_every else None
        summary = train(cfg, validate=validate, progress=not args.no_progress)
    except (ValueError, FileNotFoundError, ClipWeightsUnavailable) as exc:
        print(f"cliport train: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:  # one summary line for a run on several processes
        print(json.dumps(summary))
    return 0


# ---------------------------------------------------------------------------------------------- eval
def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "task",
        help="task name, e.g. put-block-in-bowl-seen-colors, or a comma-separated list of tasks and group "
        "names (each task evaluated with the same model)",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, or the name of one under checkpoints/")
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--n", type=_positive_int, default=100, help="episodes (default: 100)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the first episode's seed (default: the split's first: val 1, test 10001); step 2",
    )
    p.add_argument(
        "--seed-start",
        type=_non_negative_int,
        default=None,
        help="deprecated: the first episode's index in the split (use --seed)",
    )
    p.add_argument("--record", default=None, help="folder for per-step PNGs (view, height, heatmaps)")
    p.add_argument("--results", default=None, help="folder for the per-task results table (results.json, results.md)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    p.add_argument(
        "--test-time-flips",
        default=None,
        choices=TEST_TIME_FLIPS,
        help="the views each decision averages over, instead of the checkpoint's (its config's test_time_flips): "
        "none; rows (also the view mirrored across the x axis); rows_and_cols (also mirrored across y, and "
        "turned by half)",
    )


def _resolve_checkpoint(name: str) -> Path:
    path = Path(name)
    if path.exists():
        return path
    from cliport_ros.resources import checkpoint_path

    return checkpoint_path(name)


def _first_episode(args: argparse.Namespace) -> int:
    """The first episode's index in the split, from --seed (or the deprecated --seed-start, an index)."""
    from cliport_ros.sim.seeds import deprecated_option, index_for_seed, seed_for

    if args.seed_start is not None:
        if args.seed is not None:
            raise ValueError("give --seed or --seed-start, not both")
        print(
            deprecated_option(
                "eval",
                "--seed-start",
                f"--seed {seed_for(args.split, args.seed_start)} (a seed, "
                f"not an index: --seed-start {args.seed_start} is that {args.split} seed)",
            ),
            file=sys.stderr,
        )
        return int(args.seed_start)
    return 0 if args.seed is None else index_for_seed(args.split, args.seed)


def _eval_run(args: argparse.Namespace) -> int:
    import torch

    from cliport_ros.model.clip_backbone import ClipWeightsUnavailable
    from cliport_ros.model.policy import Policy
    from cliport_ros.sim.tasks import expand_tasks
    from cliport_ros.training.evaluate import evaluate_tasks, write_results

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        first = _first_episode(args)
        tasks = expand_tasks(args.task)
        policy = Policy.load(
            _resolve_checkpoint(args.checkpoint), device=args.device, test_time_flips=args.test_time_flips
        )
        per_task = evaluate_tasks(policy, tasks, split=args.split, n=args.n, seed_start=first, record=args.record)
    except (ValueError, FileNotFoundError, ClipWeightsUnavailable) as exc:
        print(f"cliport eval: {exc}", file=sys.stderr)
        return 2
    for summary in per_task:
        summary["checkpoint"] = str(args.checkpoint)
        summary["test_time_flips"] = policy.cfg.test_time_flips
    if args.results:
        n_demos = policy.metadata.get("n_demos")
        write_results(per_task, args.results, n_demos if isinstance(n_demos, int) else None)
    if len(per_task) == 1:
        print(json.dumps(per_task[0]))
    else:
        for summary in per_task:
            print(json.dumps(summary))
        print(
            json.dumps(
                {
                    "tasks": len(per_task),
                    "split": args.split,
                    "n": args.n,
                    "mean_success_rate": sum(s["success_rate"] for s in per_task) / len(per_task),
                    "mean_score": sum(s["mean_score"] for s in per_task) / len(per_task),
                    "checkpoint": str(args.checkpoint),
                }
            )
        )
    return 0


# ---------------------------------------------------------------------------------------------- bench
def _bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="tiny", choices=NAMES)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="auto: fp32 on CPU, bf16 (or fp16) on GPU",
    )
    p.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--repeats", type=_positive_int, default=20)
    p.add_argument("--warmup", type=_non_negative_int, default=3)
    p.add_argument(
        "--load",
        type=_non_negative_int,
        default=0,
        help="busy processes to run beside the measurement (a robot PC's other work)",
    )
    p.add_argument(
        "--model-set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one ModelConfig field (repeatable), as for `cliport train`",
    )


def _bench_run(args: argparse.Namespace) -> int:
    from cliport_ros.training.bench import run_bench

    try:
        overrides = parse_model_overrides(args.model_set)
        result = run_bench(
            args.config,
            args.device,
            args.threads,
            args.repeats,
            args.warmup,
            args.precision,
            overrides=overrides,
            load=args.load,
        )
    except ValueError as exc:
        print(f"cliport bench: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------- merge
def _weights_argument(p: argparse.ArgumentParser) -> None:
    """``--weights``, how a written checkpoint stores its parameters (``cliport merge``, ``cliport average``)."""
    p.add_argument(
        "--weights",
        default="fp32",
        choices=("fp32", "fp16"),
        help="how to store the parameters: fp16 halves the file (loading returns to fp32)",
    )


def _merge_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pick", required=True, help="checkpoint whose pick net to take (e.g. RUN/last of --nets pick)")
    p.add_argument("--place", required=True, help="checkpoint whose key and query nets to take")
    p.add_argument("--out", required=True, help="folder of the merged checkpoint")
    _weights_argument(p)


def _merge_run(args: argparse.Namespace) -> int:
    from cliport_ros.model.policy import merge_halves

    try:
        out = merge_halves(args.pick, args.place, args.out, weights=args.weights)
    except ValueError as exc:
        print(f"cliport merge: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(out), "pick": args.pick, "place": args.place, "weights": args.weights}))
    return 0


# -------------------------------------------------------------------------------------------- average
def _average_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", nargs="+", help="two or more checkpoints of one config (e.g. a run's snapshots)")
    p.add_argument("--out", required=True, help="folder of the averaged checkpoint")
    _weights_argument(p)


def _average_run(args: argparse.Namespace) -> int:
    from cliport_ros.model.policy import average_checkpoints

    try:
        out = average_checkpoints(args.checkpoints, args.out, weights=args.weights)
    except ValueError as exc:
        print(f"cliport average: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": str(out), "checkpoints": args.checkpoints, "weights": args.weights}))
    return 0


train = Command(add_arguments=_train_arguments, run=_train_run)
merge = Command(add_arguments=_merge_arguments, run=_merge_run)
average = Command(add_arguments=_average_arguments, run=_average_run)
evaluate = Command(add_arguments=_eval_arguments, run=_eval_run)
bench = Command(add_arguments=_bench_arguments, run=_bench_run)
