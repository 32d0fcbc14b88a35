"""Evaluating a policy in the simulator: episodes run with the policy alone (no oracle), scored 0-100.

Prints one table row per episode, and (from the command) a final JSON line with mean_score and success_rate.
``record`` saves, per step, one PNG (cliport_ros.perception.overlay): the pick and place maps blended on the
top-down view the policy saw, the pick and place marked, the place rotation drawn, the instruction and the
step's outcome written on it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from cliport_ros.model.policy import Policy, PolicyOutput
from cliport_ros.perception.overlay import decision_overlay

SPLITS = ("train", "val", "test")
FULL_SCORE = 100.0  # the simulator's episode score is 0-100
# What each step did, so failures can be told apart:
# progress: the score rose; pick_nothing: the pick was on empty table; pick_other: on an object the task
# did not need moved (a wrong color, a bowl, a block already in place); primitive_failed: on a needed
# object, but the primitive failed; place_wrong: a needed object was moved, the score did not rise;
# push_no_progress: a push (separating-piles) that did not raise the score (a push starts on bare table behind
# the pile, so where it starts says nothing about what went wrong).
STEP_OUTCOMES = ("progress", "pick_nothing", "pick_other", "primitive_failed", "place_wrong", "push_no_progress")


def heatmap_image(prob: np.ndarray) -> np.ndarray:
    """(rows, cols) probabilities -> (rows, cols, 3) uint8 color map scaled to the map's maximum."""
    import cv2

    scaled = prob / max(float(prob.max()), 1e-12)
    return cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]


def decision_panel(color: np.ndarray, height: np.ndarray, out: PolicyOutput) -> np.ndarray:
    """Side-by-side RGB panel of one decision."""
    import cv2

    h = np.asarray(height, np.float32)
    h_img = np.repeat((np.clip(h / max(float(h.max()), 1e-6), 0, 1) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    panels = [
        np.ascontiguousarray(p).copy()
        for p in (color, h_img, heatmap_image(out.pick_heatmap), heatmap_image(out.place_heatmap))
    ]
    for p in panels:
        cv2.circle(p, (out.pick_pixel[1], out.pick_pixel[0]), 4, (255, 255, 255), 1)
        cv2.drawMarker(p, (out.place_pixel[1], out.place_pixel[0]), (255, 0, 255), cv2.MARKER_CROSS, 9, 1)
    gap = np.full((color.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)


def policy_step(policy: Policy, env: Any, obs: Any) -> tuple[PolicyOutput, Any, str]:
    """The policy's decision on ``obs``, executed in ``env``: the decision, the step's result and its outcome."""
    out = policy.act(obs.view, obs.instruction)
    # the task decides how a decision is executed (separating-piles pushes)
    action = dataclasses.replace(out.pick_place, primitive=env.task.primitive)
    pick = action.pick.position
    target = env.pick_target(float(pick[0]), float(pick[1]))
    result = env.step(action)
    return out, result, step_outcome(target, result, action.primitive)


def run_episode(policy: Policy, env: Any, seed: int, split: str, record: Path | None = None) -> dict[str, Any]:
    """One episode from ``env.reset(seed, split)`` until done; returns its score, success and step count."""
    import cv2

    obs = env.reset(seed=seed, split=split)
    steps, message, decide_ms, failed_primitives = 0, "", [], 0
    outcomes: list[str] = []
    done = False
    while not done and steps < env.max_steps:
        view, instruction, before = obs.view, obs.instruction, float(env.score)
        out, result, outcome = policy_step(policy, env, obs)
        decide_ms.append(out.timings["total_ms"])
        outcomes.append(outcome)
        if record is not None:
            # One picture per step: the maps on the view the policy saw, with what the step did.
            record.mkdir(parents=True, exist_ok=True)
            done_text = "" if result.success else f" ({result.message})"
            outcome = f"step {steps + 1}: {outcomes[-1]}{done_text}, score {before:.1f} -> {float(env.score):.1f}"
            overlay = decision_overlay(
                view.color,
                out.pick_heatmap,
                out.place_heatmap,
                out.pick_pixel,
                out.place_pixel,
                out.place_rotation,
                instruction,
                outcome,
            )
            cv2.imwrite(str(record / f"seed{seed:05d}_step{steps:02d}.png"), overlay[:, :, ::-1])
        steps += 1
        done = bool(result.done)
        if not result.success:  # the primitive failed (e.g. nothing to pick): the episode goes on
            failed_primitives += 1
            message = str(result.message)
        obs = result.observation
    score = float(env.score)
    # Task success: every goal met (full score), as in the paper's success rate.
    return {
        "seed": seed,
        "instruction": obs.instruction,
        "steps": steps,
        "score": score,
        "success": score >= FULL_SCORE - 1e-6,
        "failed_primitives": failed_primitives,
        "outcomes": outcomes,
        "message": message,
        "decide_ms": float(np.mean(decide_ms)) if decide_ms else 0.0,
    }


def step_outcome(target: str, result: Any, primitive: str = "pick_place") -> str:
    """What one executed step did (one of ``STEP_OUTCOMES``), from what its pick was on (``env.pick_target``)."""
    if result.reward > 1e-9:
        return "progress"
    if primitive == "push":
        return "push_no_progress"
    if target == "nothing":
        return "pick_nothing"
    if target == "other":
        return "pick_other"
    return "place_wrong" if result.success else "primitive_failed"


def evaluate_policy(
    policy: Policy,
    task: str,
    split: str = "test",
    n: int = 100,
    seed_start: int = 0,
    record: str | Path | None = None,
    verbose: bool = True,
    stream: TextIO | None = None,
    env: Any = None,
) -> dict[str, Any]:
    """Run ``n`` episodes of ``task`` (episode indices from ``seed_start``); returns the summary."""
    from cliport_ros.sim import SimEnvironment, seed_for

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 1 or seed_start < 0:
        raise ValueError(f"need n >= 1 and seed_start >= 0, got n={n}, seed_start={seed_start}")
    own_env = env is None
    env = SimEnvironment(task) if own_env else env
    try:
        return _evaluate(
            policy,
            env,
            task,
            split,
            n,
            seed_start,
            record,
            verbose,
            stream if stream is not None else sys.stdout,
            seed_for,
        )
    finally:
        if own_env:
            env.close()


def _evaluate(
    policy: Policy,
    env: Any,
    task: str,
    split: str,
    n: int,
    seed_start: int,
    record: str | Path | None,
    verbose: bool,
    stream: TextIO,
    seed_for: Any,
) -> dict[str, Any]:
    record_dir = Path(record) if record is not None else None
    rows = []
    start = time.time()
    if verbose:
        print(
            f"{'episode':>7} {'seed':>6} {'steps':>5} {'score':>6} {'success':>7} {'ms/decision':>11}  "
            "instruction  [step outcomes]",
            file=stream,
            flush=True,
        )
    for i in range(seed_start, seed_start + n):
        seed = seed_for(split, i)
        row = run_episode(policy, env, seed, split, record_dir)
        rows.append(row)
        if verbose:
            print(
                f"{i:>7} {seed:>6} {row['steps']:>5} {row['score']:>6.1f} {str(row['success']):>7} "
                f"{row['decide_ms']:>11.0f}  {row['instruction']}  [{' '.join(row['outcomes'])}]",
                file=stream,
                flush=True,
            )
    scores = [r["score"] for r in rows]
    counts = {k: sum(r["outcomes"].count(k) for r in rows) for k in STEP_OUTCOMES}
    return {
        "task": task,
        "split": split,
        "n": n,
        "seed_start": seed_start,
        "mean_score": float(np.mean(scores)),
        "success_rate": float(np.mean([r["success"] for r in rows])),
        "mean_decide_ms": float(np.mean([r["decide_ms"] for r in rows])),
        "step_outcomes": counts,
        "elapsed_s": round(time.time() - start, 1),
    }


def evaluate_tasks(
    policy: Policy,
    tasks: Sequence[str],
    split: str = "test",
    n: int = 100,
    seed_start: int = 0,
    record: str | Path | None = None,
    verbose: bool = True,
    stream: TextIO | None = None,
) -> list[dict[str, Any]]:
    """``evaluate_policy`` for each task in turn with the same policy (records go to ``record/<task>``)."""
    out = []
    for task in tasks:
        where = None if record is None else (Path(record) / task if len(tasks) > 1 else Path(record))
        out.append(evaluate_policy(policy, task, split, n, seed_start, where, verbose, stream))
    return out


def results_markdown(results: Sequence[dict[str, Any]], n_demos: int | None = None) -> str:
    """A Markdown table of per-task results, with the paper's single-task scores where they are published:
    for ``n_demos`` demos, or the two published demo counts around it (100 when unknown)."""
    from cliport_ros.training.paper_results import DEMO_COUNTS, MULTI_TASK_SEEN_MEAN, single_task

    if n_demos in DEMO_COUNTS:
        columns = [n_demos]
    elif n_demos is None:
        columns = [100]
    else:
        lower = [c for c in DEMO_COUNTS if c < n_demos]
        upper = [c for c in DEMO_COUNTS if c > n_demos]
        columns = ([lower[-1]] if lower else []) + ([upper[0]] if upper else [])
    heads = "".join(f" paper single-task ({c} demos) |" for c in columns)
    lines = [
        f"| task | split | episodes | success % | mean score |{heads}",
        "|---|---|---|---|---|" + "---|" * len(columns),
    ]
    for r in results:
        paper = [single_task(r["task"], c) for c in columns]
        cells = "".join(f" {'-' if v is None else f'{v:.1f}'} |" for v in paper)
        lines.append(
            f"| {r['task']} | {r['split']} | {r['n']} | {100 * r['success_rate']:.1f} | {r['mean_score']:.1f} |" + cells
        )
    mean_success = sum(r["success_rate"] for r in results) / max(len(results), 1)
    mean_score = sum(r["mean_score"] for r in results) / max(len(results), 1)
    lines.append(f"| **mean** | | | {100 * mean_success:.1f} | {mean_score:.1f} |" + " |" * len(columns))
    lines.append("")
    lines.append(
        "The paper's multi-task model averages "
        + " / ".join(f"{v:.1f}" for v in MULTI_TASK_SEEN_MEAN)
        + " (1 / 10 / 100 / 1000 demos per task) over its seen splits."
    )
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[dict[str, Any]], folder: str | Path, n_demos: int | None = None) -> Path:
    """``results.json`` and ``results.md`` in ``folder``; returns the folder."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(list(results), indent=2) + "\n")
    (folder / "results.md").write_text(results_markdown(results, n_demos))
    return folder
