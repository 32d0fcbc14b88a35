"""The paper's published figures (CLIPort, CoRL 2021, simulation), for tables that put ours beside them.

Values are the paper's test scores (0-100, partial credit) per number of training demos; keys are our task
keys. Source: ``shared/reference/cliport-paper-facts.md`` ("Headline results").
"""

from __future__ import annotations

DEMO_COUNTS = (1, 10, 100, 1000)

# Single-task CLIPort, one model per task.
SINGLE_TASK: dict[str, tuple[float, float, float, float]] = {
    "put-block-in-bowl-seen-colors": (23.5, 68.3, 92.5, 100.0),
    "put-block-in-bowl-unseen-colors": (18.0, 35.3, 37.3, 25.0),
    "stack-block-pyramid-seq-seen-colors": (28.3, 64.7, 93.3, 98.8),
    "stack-block-pyramid-seq-unseen-colors": (13.7, 24.3, 31.2, 41.3),
    "towers-of-hanoi-seq-seen-colors": (59.4, 92.9, 97.4, 100.0),
    "towers-of-hanoi-seq-unseen-colors": (56.1, 89.7, 95.9, 99.4),
    "packing-shapes": (21.0, 26.0, 40.0, 37.0),
    "packing-boxes-pairs-seen-colors": (51.6, 82.9, 92.7, 98.2),
    "separating-piles-seen-colors": (54.5, 59.5, 93.1, 98.0),
    "align-rope": (20.1, 77.4, 85.6, 95.4),
}

# Multi-task CLIPort (one model for all tasks): the paper's average over the seen splits. Per-task multi-task
# figures are not in the reference notes, so tables show this average only.
MULTI_TASK_SEEN_MEAN: tuple[float, float, float, float] = (45.4, 74.4, 87.0, 86.7)


def single_task(task: str, n_demos: int) -> float | None:
    """The paper's single-task score for ``task`` trained on ``n_demos`` demos, or None if not published."""
    row = SINGLE_TASK.get(task)
    if row is None or n_demos not in DEMO_COUNTS:
        return None
    return row[DEMO_COUNTS.index(n_demos)]
