"""Training CLIPort on demonstrations: the paper's losses, augmentation and optimisers, with checkpoints.

Each iteration samples a task (uniformly, for multi-task training), a demo and a step, applies the SE(2)
augmentation, and minimises the cross-entropy of the pick softmax (over pixels) and the place softmax (over
rotations x pixels) against one-hot labels. Pick, place (and a from-scratch CLIP) have separate Adam
optimisers. Validation runs the policy in the simulator and keeps the best checkpoint by task score.

Run folder layout: ``last/`` (policy + ``train_state.pt`` for resuming), ``best/`` (best by validation),
``metrics.jsonl`` (one JSON line per log or validation), ``tb/`` (TensorBoard).
"""

from __future__ import annotations

import json
import math
import pickle
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cliport_ros.data.augment import perturb, se2_matrix, transform_point
from cliport_ros.geometry.workspace import Workspace
from cliport_ros.model.config import ModelConfig
from cliport_ros.model.policy import CLIPortModel, Policy, bin_to_yaw, image_tensor, rotation_bin

LR_SCHEDULES = ("none", "cosine", "step")
# which nets a run trains: both halves, or one half alone (the halves must share no trainable parameter)
TRAINED_NETS = ("all", "pick", "place")
# "pose": cross-entropy over (rotation, row, col), as the paper; "position": over (row, col) with the
# rotations summed out, for tasks whose success ignores the placed yaw (a block in a round bowl)
PLACE_LOSSES = ("pose", "position")
# where a place label puts the pick: "pick_centre", the centre of the pick pixel, where the policy's tool
# lands (the label is moved by the demo's pick point's offset from it, turned by the place yaw); "demo", the
# demo's exact pick point (the place pixel as recorded: off by up to a pixel once the tool is at a centre)
PLACE_LABELS = ("pick_centre", "demo")
STATE_FILE = "train_state.pt"


@dataclass(frozen=True)
class TrainSample:
    """One demonstration step as the trainer needs it."""

    color: np.ndarray  # (rows, cols, 3) uint8
    height: np.ndarray  # (rows, cols) float32
    instruction: str
    pick_pixel: tuple[int, int]
    place_pixel: tuple[int, int]
    place_yaw: float  # yaw applied to the held object between pick and place (rad)
    task: str = ""
    source: str = "oracle"  # who chose the step: oracle, policy (executed as proposed), operator (corrected)
    weight: float = 1.0  # relative sampling weight within its task
    # the demo's exact pick and place points, (row, col) in pixels with pixel centres at whole numbers (see
    # ``Workspace.xyz_to_point``); None where unknown (the labels are then the pixels above)
    pick_point: tuple[float, float] | None = None
    place_point: tuple[float, float] | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on (saved in the run folder)."""

    tasks: tuple[str, ...]
    out: str
    data: str | tuple[str, ...] = "data"  # one demo folder or several (simulated demos, recorded episodes)
    model: str = "tiny"
    model_overrides: dict = field(default_factory=dict)
    n_demos: int = 100  # per task, over all the folders; 0: every episode there
    steps: int = 20000
    lr: float = 1e-4
    lr_schedule: str = "none"
    lr_final_fraction: float = 0.1  # cosine: final lr = lr * this; step: halve at 50 % and 75 %
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    save_every: int = 500
    val_every: int = 2000  # 0: no validation
    val_episodes: int = 10
    threads: int | None = None
    nets: str = "all"
    # a checkpoint whose pick half initialises the place half (key and query nets, and the place text
    # encoder where it has one): every tensor of the same shape; the pick half learns color words faster
    place_init_from: str | None = None
    # a checkpoint of the same model config whose weights start the run (fine-tuning; a fresh optimiser and
    # learning-rate schedule)
    init_from: str | None = None
    place_loss: str = "pose"
    # pose loss: the placed object's rotational symmetry in degrees (90: the blocks), 0 for none; rotations that
    # far apart look the same, so the label is all of them (the task checks the yaw modulo the symmetry)
    place_symmetry: int = 0
    place_label: str = "pick_centre"  # one of PLACE_LABELS
    # the from-scratch CLIP's learning rate as a multiple of ``lr`` (its text encoder can lag behind the nets:
    # color words it maps almost alike are words the policy cannot tell apart)
    clip_lr_scale: float = 1.0
    # how much more often a step an operator chose (a correction or demonstration recorded by the console)
    # is drawn than any other step of its task
    operator_weight: float = 1.0
    # step index in its demo -> how much more often that step is drawn (a sequential task's step where the
    # instruction alone decides, say); multiplies operator_weight
    step_weights: dict = field(default_factory=dict)
    # samples per optimiser step on each process (the global batch is this times the number of processes)
    batch_size: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        folders = (self.data,) if isinstance(self.data, str) else tuple(self.data)
        if not folders or not all(isinstance(f, str) and f for f in folders):
            raise ValueError(f"data must name one or more demo folders, got {self.data!r}")
        object.__setattr__(self, "data", folders[0] if len(folders) == 1 else folders)
        if not isinstance(self.n_demos, int) or isinstance(self.n_demos, bool) or self.n_demos < 0:
            raise ValueError(f"n_demos must be a non-negative integer (0: every episode), got {self.n_demos!r}")
        if not (
            isinstance(self.operator_weight, (int, float))
            and math.isfinite(self.operator_weight)
            and 0 < self.operator_weight <= 1000
        ):
            raise ValueError(f"operator_weight must be a number in (0, 1000], got {self.operator_weight!r}")
        weights = {}
        for index, weight in dict(self.step_weights).items():
            try:
                index = int(index)  # JSON keys of a saved config are strings
            except (TypeError, ValueError):
                index = -1
            if index < 0 or not (
                isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight)
            ):
                raise ValueError(
                    f"step_weights maps a step's index in its demo (0, 1, ...) to a weight in (0, 1000], got "
                    f"{self.step_weights!r}"
                )
            if not 0 < weight <= 1000:
                raise ValueError(f"step_weights: the weight of step {index} must be in (0, 1000], got {weight!r}")
            weights[index] = float(weight)
        object.__setattr__(self, "step_weights", weights)
        if not self.tasks or not all(isinstance(t, str) and t for t in self.tasks):
            raise ValueError(f"tasks must be one or more task names, got {self.tasks!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        for name in ("steps", "log_every", "save_every", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("val_every", "val_episodes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 < self.lr_final_fraction <= 1:
            raise ValueError(f"lr_final_fraction must be in (0, 1], got {self.lr_final_fraction!r}")
        if self.nets not in TRAINED_NETS:
            raise ValueError(f"nets must be one of {TRAINED_NETS}, got {self.nets!r}")
        if self.nets != "all" and self.val_every:
            raise ValueError(
                f"nets={self.nets!r} trains one half of the policy, and validation in the simulator needs both: "
                "set val_every to 0 and evaluate the merged policy (`cliport merge`, then `cliport eval`)"
            )
        if self.place_loss not in PLACE_LOSSES:
            raise ValueError(f"place_loss must be one of {PLACE_LOSSES}, got {self.place_loss!r}")
        if self.place_label not in PLACE_LABELS:
            raise ValueError(f"place_label must be one of {PLACE_LABELS}, got {self.place_label!r}")
        if not (isinstance(self.clip_lr_scale, (int, float)) and 0 < self.clip_lr_scale <= 1000):
            raise ValueError(f"clip_lr_scale must be a number in (0, 1000], got {self.clip_lr_scale!r}")
        if self.init_from is not None and self.place_init_from is not None:
            raise ValueError("init_from and place_init_from both set the starting weights: give one of them")
        model_cfg = ModelConfig.named(self.model, **self.model_overrides)  # a bad model fails before data loads
        check_place_symmetry(self.place_symmetry, self.place_loss, model_cfg.n_rotations)
        if self.place_init_from is not None and self.nets == "pick":
            raise ValueError("place_init_from initialises the place half, which nets='pick' does not train")
        if self.nets != "all" and model_cfg.clip_trainable and not model_cfg.clip_per_net:
            raise ValueError(
                f"nets={self.nets!r} needs halves that share no trainable parameter, but this model's pick "
                "and place nets share a CLIP trained from scratch: add clip_per_net=true to the model"
            )


def _exact_point(workspace: Workspace, xyz: Sequence[float], pixel: Sequence[int]) -> tuple[float, float] | None:
    """The fractional (row, col) of a step's pose, if it lies in the step's recorded pixel (else None: the
    recorded pixel is the label as it is)."""
    point = workspace.xyz_to_point(xyz)
    inside = all(abs(v - int(k)) <= 0.5 + 1e-6 for v, k in zip(point, pixel))
    return point if inside else None


def centred_labels(
    pick_point: tuple[float, float],
    place_point: tuple[float, float],
    yaws: Sequence[float],
    matrix: np.ndarray,
    shape: tuple[int, int],
) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """The pick pixel, and one place pixel per place yaw, of a demo step whose exact pick and place points
    ((row, col), pixel centres at whole numbers) went through the 2x3 (col, row) map ``matrix``.

    The policy's tool lands on the centre of the pick pixel, not on the demo's pick point, so the place pixel
    is where that centre must go for the object to land as in the demo: the place point moved by the centre's
    offset from the pick point, turned by the place yaw (rotations are counter-clockwise in the (col, row)
    plane, as the yaw is in the base frame's x-y plane)."""
    rows, cols = shape

    def pixel(row: float, col: float) -> tuple[int, int]:
        return (min(max(math.floor(row + 0.5), 0), rows - 1), min(max(math.floor(col + 0.5), 0), cols - 1))

    p_row, p_col = transform_point(matrix, pick_point)
    q_row, q_col = transform_point(matrix, place_point)
    pick = pixel(p_row, p_col)
    d_row, d_col = pick[0] - p_row, pick[1] - p_col
    places = []
    for yaw in yaws:
        c, s = math.cos(yaw), math.sin(yaw)
        places.append(pixel(q_row + s * d_col + c * d_row, q_col + c * d_col - s * d_row))
    return pick, places


def check_place_symmetry(place_symmetry: int, place_loss: str, n_rotations: int) -> None:
    """Refuse a place symmetry that is not 0 or a divisor of 360 in whole rotation bins, or not with the pose loss."""
    if (
        not isinstance(place_symmetry, int)
        or isinstance(place_symmetry, bool)
        or not 0 <= place_symmetry < 360
        or (place_symmetry and 360 % place_symmetry)
    ):
        raise ValueError(
            "place_symmetry must be 0 (none) or a whole number of degrees dividing 360 (90 for a square block), "
            f"got {place_symmetry!r}"
        )
    if place_symmetry and place_loss != "pose":
        raise ValueError(f"place_symmetry applies to the pose place loss (it needs the pose loss), not {place_loss!r}")
    if (place_symmetry * n_rotations) % 360:
        raise ValueError(
            f"place_symmetry {place_symmetry} is not a whole number of rotation bins (the model's are "
            f"{360 // n_rotations} degrees each)"
        )


def lr_factor(schedule: str, step: int, total: int, final_fraction: float) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total``."""
    if schedule == "cosine":
        progress = min(step / max(total, 1), 1.0)
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "step":
        return 1.0 if step < total // 2 else (0.5 if step < (3 * total) // 4 else 0.25)
    return 1.0


class Trainer:
    """The optimisation loop around a ``Policy``: one ``step(samples)`` = one pick and one place update on the
    mean loss of a batch.

    Each sample's augmentation is drawn from a generator seeded with (run seed, iteration, the sample's
    position in the global batch), and each sample runs through the nets on its own (batch-norm statistics of
    one scene, as at batch size 1). So a global batch gives the same gradient however it is split between
    processes: with ``world`` > 1 each process computes its slice, and the gradients are summed over the
    processes with ``torch.distributed.all_reduce`` before the step, as DistributedDataParallel does (its
    wrapper is not used: the losses call the model's sub-networks, not one ``forward``).
    """

    def __init__(
        self,
        policy: Policy,
        lr: float = 1e-4,
        augment: bool = True,
        seed: int = 0,
        schedule: str = "none",
        total_steps: int = 1,
        final_fraction: float = 0.1,
        nets: str = "all",
        place_loss: str = "pose",
        clip_lr_scale: float = 1.0,
        place_symmetry: int = 0,
        place_label: str = "pick_centre",
    ) -> None:
        if nets not in TRAINED_NETS:
            raise ValueError(f"nets must be one of {TRAINED_NETS}, got {nets!r}")
        if place_loss not in PLACE_LOSSES:
            raise ValueError(f"place_loss must be one of {PLACE_LOSSES}, got {place_loss!r}")
        if place_label not in PLACE_LABELS:
            raise ValueError(f"place_label must be one of {PLACE_LABELS}, got {place_label!r}")
        self.place_loss = place_loss
        self.place_label = place_label
        n_rotations = policy.cfg.n_rotations
        check_place_symmetry(place_symmetry, place_loss, n_rotations)
        # rotation bins between two yaws that look the same (the whole circle: no symmetry)
        self.symmetry_bins = place_symmetry * n_rotations // 360 or n_rotations
        if nets != "all" and not policy.model.halves_independent:
            raise ValueError(
                f"nets={nets!r}: the pick and place nets share a CLIP trained from scratch, so one half "
                "cannot train alone; use clip_per_net=true"
            )
        self.nets = nets
        self.policy = policy
        self.model = policy.model
        self.augment = augment
        self.seed = seed
        self.rng = np.random.default_rng(seed)  # kept in the state for files written before per-sample seeds
        self.base_lr = lr
        self.schedule, self.total_steps, self.final_fraction = schedule, total_steps, final_fraction
        groups = self.model.parameter_groups()
        self.lr_scales = {name: (clip_lr_scale if name == "clip" else 1.0) for name in groups}
        self.optimisers = {
            name: torch.optim.Adam(params, lr=lr * self.lr_scales[name]) for name, params in groups.items()
        }
        self.iteration = 0

    def losses(self, sample: TrainSample, position: int = 0) -> dict[str, torch.Tensor]:
        """Cross-entropy of the pick and place maps (of the trained nets) against the (augmented) labels;
        ``position``: the sample's place in the global batch (it seeds the augmentation)."""
        color, height, pick, place = sample.color, sample.height, sample.pick_pixel, sample.place_pixel
        if self.augment:
            rng = np.random.default_rng([self.seed, self.iteration, position])
            aug = perturb(color, height, pick, place, rng)
            color, height, pick, place, matrix = aug.color, aug.height, aug.pick_pixel, aug.place_pixel, aug.matrix
        else:
            matrix = se2_matrix(height.shape, 0.0, (0.0, 0.0))
        n_rotations = self.policy.cfg.n_rotations
        if self.place_loss == "position":
            bins = list(range(n_rotations))  # every rotation: the yaw is summed out
        else:  # the label's rotation and its look-alikes (only itself without a symmetry)
            rot = rotation_bin(sample.place_yaw, n_rotations)
            bins = [(rot + k) % n_rotations for k in range(0, n_rotations, self.symmetry_bins)]
        places = [place] * len(bins)
        if self.place_label == "pick_centre" and sample.pick_point is not None and sample.place_point is not None:
            # each rotation bin's pixel for the yaw the policy would turn the object by in that bin
            yaws = [bin_to_yaw(b, n_rotations) for b in bins]
            pick, places = centred_labels(sample.pick_point, sample.place_point, yaws, matrix, height.shape)
        device = self.policy.device
        image = image_tensor(color, height).to(device)
        text = self.model.text([sample.instruction])
        h, w = height.shape
        out = {}
        if self.nets in ("all", "pick"):
            pick_logits = self.model.pick_logits(image, text).reshape(1, -1)
            out["pick_loss"] = F.cross_entropy(pick_logits, torch.tensor([pick[0] * w + pick[1]], device=device))
        if self.nets in ("all", "place"):
            place_logits = self.model.place_logits(image, torch.tensor([pick], device=device), text).reshape(1, -1)
            # -log of the probability summed over those rotations at their label pixels (one bin: cross-entropy)
            log_p = F.log_softmax(place_logits, dim=-1).reshape(n_rotations, h * w)
            flat = [r * w + c for r, c in places]
            out["place_loss"] = -torch.logsumexp(log_p[bins, flat], dim=0)
        return out

    def step(
        self, samples: TrainSample | Sequence[TrainSample], first: int = 0, global_batch: int | None = None
    ) -> dict[str, float]:
        """One update on the mean loss of a global batch of ``global_batch`` samples, of which ``samples`` are
        this process's, at positions ``first``, ``first + 1``, ... The optimisers own disjoint parameters, so
        one backward per sample serves all. Returns the losses averaged over the global batch.

        With one half trained, the other half's parameters get no gradient, and Adam leaves them as they are.
        """
        local = [samples] if isinstance(samples, TrainSample) else list(samples)
        total = global_batch if global_batch is not None else len(local)
        self.model.train()
        factor = lr_factor(self.schedule, self.iteration, self.total_steps, self.final_fraction)
        for name, opt in self.optimisers.items():
            for group in opt.param_groups:
                group["lr"] = self.base_lr * factor * self.lr_scales[name]
            opt.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for k, sample in enumerate(local):
            losses = self.losses(sample, first + k)
            (sum(losses.values()) / total).backward()  # gradients accumulate to those of the batch mean
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value.item()
        if total != len(local):
            sums = _all_reduce_gradients(self.model, sums)
        for opt in self.optimisers.values():
            opt.step()
        self.iteration += 1
        self.model.eval()
        return {**{k: v / total for k, v in sums.items()}, "lr": self.base_lr * factor}

    def state_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "optimisers": {k: v.state_dict() for k, v in self.optimisers.items()},
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        for k, v in state["optimisers"].items():
            self.optimisers[k].load_state_dict(v)
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])


def _all_reduce_gradients(model: torch.nn.Module, sums: dict[str, float]) -> dict[str, float]:
    """Sum every gradient (and the loss sums, for the log) over the processes, in one flat buffer per dtype
    and device: one all_reduce per step, as DistributedDataParallel's buckets do."""
    import torch.distributed as dist

    params = [p for p in model.parameters() if p.grad is not None]
    keys = sorted(sums)
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for p in params:
        groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    for grads in groups.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
    device = params[0].grad.device if params else torch.device("cpu")
    totals = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return dict(zip(keys, totals.tolist()))


# ---------------------------------------------------------------------------------------------- data
def load_samples(
    data_dir: str | Path | Sequence[str | Path],
    task: str,
    n_demos: int,
    split: str = "train",
    operator_weight: float = 1.0,
    step_weights: Mapping[int, float] | None = None,
) -> tuple[list[list[TrainSample]], Workspace]:
    """The first ``n_demos`` demos of ``task`` (0: all) over one folder or several, in folder order then by
    seed (one list of samples per episode), and their workspace. Episodes an operator marked failed are left
    out; steps an operator chose weigh ``operator_weight``, times ``step_weights[i]`` for the i-th step of a
    demo."""
    step_weights = dict(step_weights or {})
    from cliport_ros.data import list_episodes, load_episode

    folders = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
    episodes = [ref for folder in folders for ref in list_episodes(folder, task, split)]
    where = " or ".join(str(f) for f in folders)
    if not episodes:
        raise ValueError(
            f"no {split} demos of {task!r} under {where}; generate some with "
            f"`cliport demos {task} --split {split} --n {n_demos or 100} --out {folders[0]}`, or record them "
            "with `cliport console`"
        )
    out, workspace, failed = [], None, 0
    for ref in episodes:
        if n_demos and len(out) == n_demos:
            break
        episode = load_episode(ref)
        if episode.info.get("outcome") == "failed":
            failed += 1  # the operator said the episode went wrong: its steps teach nothing reliable
            continue
        if workspace is None:
            workspace = episode.workspace
        elif episode.workspace != workspace:
            raise ValueError(f"{ref} was recorded over another workspace than the first demo: {episode.workspace}")
        out.append(
            [
                TrainSample(
                    color=np.asarray(s.color),
                    height=np.asarray(s.height, np.float32),
                    instruction=s.instruction,
                    pick_pixel=tuple(int(c) for c in s.pick_pixel),
                    place_pixel=tuple(int(c) for c in s.place_pixel),
                    place_yaw=float(s.place.yaw),
                    pick_point=_exact_point(workspace, s.pick.position, s.pick_pixel),
                    place_point=_exact_point(workspace, s.place.position, s.place_pixel),
                    task=task,
                    source=s.source,
                    weight=(operator_weight if s.source == "operator" else 1.0) * step_weights.get(i, 1.0),
                )
                for i, s in enumerate(episode.steps)
            ]
        )
    if n_demos and len(out) < n_demos:
        skipped = f" ({failed} more marked failed)" if failed else ""
        raise ValueError(f"asked for {n_demos} demos of {task!r} but {where} holds {len(out)}{skipped}")
    if not out:
        raise ValueError(f"every episode of {task!r} under {where} was marked failed: nothing to learn from")
    return out, workspace


class SampleSource:
    """Uniform over tasks, then demos, then steps, from one seeded generator (so runs repeat exactly).

    Where steps carry weights other than 1 (operator corrections), a task's step is drawn with probability
    proportional to its weight divided by its episode's length: with every weight 1 that is the same
    distribution, uniform over demos, then steps."""

    def __init__(self, demos: dict[str, list[list[TrainSample]]], seed: int) -> None:
        if not demos or any(not eps or not all(eps) for eps in demos.values()):
            raise ValueError("every task needs at least one demo with at least one step")
        self.demos = demos
        self.tasks = sorted(demos)
        self.rng = np.random.default_rng(seed + 1)
        self._weighted: dict[str, tuple[list[TrainSample], np.ndarray]] = {}
        for task, episodes in demos.items():
            if all(s.weight == 1.0 for episode in episodes for s in episode):
                continue
            steps = [s for episode in episodes for s in episode]
            mass = np.array([s.weight / len(episode) for episode in episodes for s in episode], np.float64)
            self._weighted[task] = (steps, np.cumsum(mass / mass.sum()))

    def next(self) -> TrainSample:
        task = self.tasks[int(self.rng.integers(len(self.tasks)))]
        if task in self._weighted:
            steps, cumulative = self._weighted[task]
            index = int(np.searchsorted(cumulative, self.rng.random(), side="right"))
            return steps[min(index, len(steps) - 1)]
        episode = self.demos[task][int(self.rng.integers(len(self.demos[task])))]
        return episode[int(self.rng.integers(len(episode)))]


# ---------------------------------------------------------------------------------------------- run
def read_train_state(path: Path) -> dict[str, Any]:
    """The resume state ``save_last`` wrote, read without unpickling objects (``ValueError`` otherwise).

    A run folder may come from elsewhere; ``weights_only=True`` admits tensors and plain Python values only,
    so a crafted file cannot run code while it loads. Everything the trainer saves is of those types: the
    optimiser state dicts, numpy's bit generator state (a dict of str and int) and the ``best`` dict.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path}: refused: a training state holds only tensors and plain values, this file holds other "
            f"objects, and unpickling them could run code; choose another --out, or delete {path.parent.parent} "
            f"to start the run afresh ({str(exc).splitlines()[0]})"
        ) from exc
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise ValueError(
            f"{path}: not a readable training state ({type(exc).__name__}: {exc}); choose another --out, or "
            f"delete {path.parent.parent} to start the run afresh"
        ) from exc
    expected = {"trainer", "source_rng", "best"}
    if not isinstance(state, dict) or not expected <= set(state):
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        missing = sorted(expected - set(state)) if isinstance(state, dict) else sorted(expected)
        raise ValueError(
            f"{path}: not a training state of this trainer: missing {missing} (found {found}, expected the "
            f"keys {sorted(expected)})"
        )
    best = state["best"]
    if not isinstance(best, dict) or not isinstance(best.get("score"), float) or not isinstance(best.get("step"), int):
        raise ValueError(f"{path}: 'best' must be {{'score': float, 'step': int}}, got {best!r}")
    return state


def train(
    cfg: TrainConfig,
    demos: dict[str, list[list[TrainSample]]] | None = None,
    validate: Callable[[Policy, int], dict[str, float]] | None = None,
    progress: bool = True,
    workspace: Workspace | None = None,
) -> dict[str, Any]:
    """Train (resuming from ``out/last`` when present); ``demos`` default to ``cfg.data``.

    Started by torchrun (``RANK``/``WORLD_SIZE`` in the environment), each process is one rank of a
    data-parallel run over torch.distributed (gloo on CPUs, NCCL on GPUs): every rank draws the same global
    batch of ``batch_size`` x world samples and computes its own slice of it, gradients are summed over the
    ranks (see ``Trainer``), and rank 0 alone writes logs and checkpoints and validates.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, world, device = _join_process_group(cfg.device)
    if world > 1:
        cfg = replace(cfg, device=device)
    try:
        return _train(cfg, demos, validate, progress and rank == 0, workspace, rank, world)
    finally:
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def _join_process_group(device: str) -> tuple[int, int, str]:
    """(rank, world size, this rank's device); joins torchrun's process group when there is one."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def _train(
    cfg: TrainConfig,
    demos: dict[str, list[list[TrainSample]]] | None,
    validate: Callable[[Policy, int], dict[str, float]] | None,
    progress: bool,
    workspace: Workspace | None,
    rank: int,
    world: int,
) -> dict[str, Any]:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if demos is None:
        demos = {}
        for task in cfg.tasks:
            demos[task], task_workspace = load_samples(
                cfg.data, task, cfg.n_demos, operator_weight=cfg.operator_weight, step_weights=cfg.step_weights
            )
            if workspace is not None and task_workspace != workspace:
                raise ValueError(f"the demos of {task!r} were recorded over another workspace: {task_workspace}")
            workspace = task_workspace
    source = SampleSource(demos, cfg.seed)
    shape = next(iter(demos.values()))[0][0].height.shape
    last = out / "last"
    resumed = (last / STATE_FILE).is_file()
    if resumed:
        policy = Policy.load(last, device=cfg.device, precision="fp32")
        previous = (policy.cfg.name, tuple(policy.metadata.get("tasks", ())), policy.metadata.get("nets", "all"))
        if previous != (cfg.model, cfg.tasks, cfg.nets):
            raise ValueError(
                f"{out} holds a run of config {previous[0]!r} on {list(previous[1])} training nets "
                f"{previous[2]!r}, not {cfg.model!r} on {list(cfg.tasks)} training {cfg.nets!r}; resume it with "
                "the same settings or choose another --out"
            )
    else:
        model_cfg = ModelConfig.named(cfg.model, **cfg.model_overrides)
        workspace = workspace if workspace is not None else Workspace()
        if workspace.shape != shape:
            raise ValueError(f"demos are {shape} pixels but the workspace grid is {workspace.shape}")
        policy = Policy(model_cfg, workspace=workspace, device=cfg.device, precision="fp32")
        if cfg.place_init_from is not None:
            copied = init_place_from_pick(policy.model, cfg.place_init_from)
            policy.metadata["place_init_from"] = {"checkpoint": cfg.place_init_from, "tensors": copied}
        if cfg.init_from is not None:
            policy.metadata["init_from"] = init_from_checkpoint(policy, cfg.init_from)
    trainer = Trainer(
        policy,
        lr=cfg.lr,
        augment=cfg.augment,
        seed=cfg.seed,
        schedule=cfg.lr_schedule,
        total_steps=cfg.steps,
        final_fraction=cfg.lr_final_fraction,
        nets=cfg.nets,
        place_loss=cfg.place_loss,
        place_symmetry=cfg.place_symmetry,
        place_label=cfg.place_label,
        clip_lr_scale=cfg.clip_lr_scale,
    )
    best = {"score": -1.0, "step": 0}
    if resumed:
        state = read_train_state(last / STATE_FILE)
        trainer.load_state_dict(state["trainer"])
        source.rng.bit_generator.state = state["source_rng"]
        best = state["best"]
    lead = rank == 0  # the one rank that writes, logs and validates
    if world > 1:
        import torch.distributed as dist

        for tensor in policy.model.state_dict().values():  # every rank starts from rank 0's weights
            dist.broadcast(tensor, 0)
    if lead:
        (out / "train_config.json").write_text(json.dumps({**asdict(cfg), "world_size": world}, indent=2) + "\n")
    writer = SummaryWriter(str(out / "tb"), purge_step=trainer.iteration if resumed else None) if lead else None
    metrics = (out / "metrics.jsonl").open("a") if lead else None

    def record(entry: dict[str, Any]) -> None:
        if metrics is not None:
            metrics.write(json.dumps(entry) + "\n")
            metrics.flush()

    def meta(**extra: Any) -> dict[str, Any]:
        init = {k: policy.metadata[k] for k in ("place_init_from", "init_from") if k in policy.metadata}
        return {"tasks": list(cfg.tasks), "n_demos": cfg.n_demos, "nets": cfg.nets, **init, **extra}

    def save_last() -> None:
        if not lead:
            return
        policy.save(last, metadata=meta(step=trainer.iteration, world_size=world, batch_size=cfg.batch_size))
        # plain values and tensors only, so that resuming can load the file with weights_only=True
        state = {
            "trainer": trainer.state_dict(),
            "source_rng": source.rng.bit_generator.state,
            "best": {"score": float(best["score"]), "step": int(best["step"])},
        }
        tmp = last / (STATE_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(last / STATE_FILE)

    window: dict[str, list[float]] = {
        key: [] for key in ("pick_loss", "place_loss") if cfg.nets in ("all", key.split("_")[0])
    }
    bar = tqdm(
        total=cfg.steps,
        initial=trainer.iteration,
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        desc="train",
    )
    start = time.time()
    try:
        while trainer.iteration < cfg.steps:
            batch = [source.next() for _ in range(cfg.batch_size * world)]  # the same on every rank
            first = rank * cfg.batch_size
            result = trainer.step(batch[first : first + cfg.batch_size], first, len(batch))
            it = trainer.iteration
            for key in window:
                window[key].append(result[key])
            bar.update(1)
            if it % cfg.log_every == 0 or it == cfg.steps:
                entry = {
                    "step": it,
                    **{key: float(np.mean(values)) for key, values in window.items()},
                    "lr": result["lr"],
                    "elapsed_s": round(time.time() - start, 1),
                }
                window = {k: [] for k in window}
                for key in (*window, "lr"):
                    if writer is not None:
                        writer.add_scalar(f"train/{key}", entry[key], it)
                bar.set_postfix({k.split("_")[0]: f"{entry[k]:.3f}" for k in window})
                record(entry)
            validating = validate is not None and cfg.val_every and (it % cfg.val_every == 0 or it == cfg.steps)
            if validating and lead:
                val = validate(policy, it)
                for key, value in val.items():
                    writer.add_scalar(f"val/{key}", value, it)
                record({"step": it, **{f"val_{k}": v for k, v in val.items()}})
                if val["mean_score"] > best["score"]:
                    best = {"score": float(val["mean_score"]), "step": it}
                    policy.save(out / "best", metadata=meta(step=it, val=val))
            if it % cfg.save_every == 0 or it == cfg.steps:
                save_last()
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if metrics is not None:
            metrics.close()
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # every rank has finished before the run is reported done
    if lead and (validate is None or not cfg.val_every):
        policy.save(
            out / "best",
            metadata=meta(step=trainer.iteration, note="no validation: the last weights"),
        )
    return {
        "steps": trainer.iteration,
        "best_step": best["step"],
        "best_val_score": best["score"],
        "out": str(out),
        "resumed": resumed,
    }


def init_from_checkpoint(policy: Policy, checkpoint: str | Path) -> dict[str, Any]:
    """Load every weight of ``checkpoint`` into ``policy``; its model config and workspace must be the policy's.

    Returns what the run's metadata records of the source: path, the step and nets it was trained to, and its
    own lineage (where it was started from, merged or averaged from).
    """
    from cliport_ros.model.policy import lineage, load_state, read_checkpoint

    source_cfg, source_ws, source_meta, state = read_checkpoint(checkpoint)
    if source_cfg != policy.cfg:
        raise ValueError(
            f"init_from {checkpoint} has another model config than this run (fields "
            f"{source_cfg.differing_fields(policy.cfg)}); fine-tuning "
            "needs the same config (copy its model fields into --config/--model-set)"
        )
    if source_ws != policy.workspace:
        raise ValueError(f"init_from {checkpoint} was trained over another workspace: {source_ws}")
    load_state(policy.model, state, checkpoint)  # fp16-stored weights are cast to the model's fp32 on load
    return {
        "checkpoint": str(checkpoint),
        "step": source_meta.get("step"),
        "nets": source_meta.get("nets", "all"),
        **lineage(source_meta),
    }


def init_place_from_pick(model: CLIPortModel, checkpoint: str | Path) -> int:
    """Copy a checkpoint's pick net into ``model``'s key and query nets (and its pick text encoder into the
    place one, with ``clip_per_net``): every tensor whose shape fits; returns how many were copied."""
    from cliport_ros.model.policy import read_checkpoint

    source_cfg, _, _, state = read_checkpoint(checkpoint)
    if source_cfg.clip_per_net != model.cfg.clip_per_net:
        raise ValueError(
            f"{checkpoint} has clip_per_net={source_cfg.clip_per_net}, this model {model.cfg.clip_per_net}: "
            "the pick net's CLIP would not map onto the place half's"
        )
    own = model.state_dict()
    update = {}
    for key, value in own.items():
        for prefix in ("transport.key.", "transport.query."):
            if key.startswith(prefix):
                source = "attention.net." + key[len(prefix) :]
                break
        else:
            source = "clip." + key[len("place_clip.") :] if key.startswith("place_clip.") else None
        if source is not None and source in state and state[source].shape == value.shape:
            update[key] = state[source]
    if not update:
        raise ValueError(f"{checkpoint} holds no pick-net tensor that fits this model's place half")
    model.load_state_dict(update, strict=False)
    return len(update)


def sim_validator(tasks: Sequence[str], n_episodes: int) -> Callable[[Policy, int], dict[str, float]]:
    """Validation by task success in the simulator on the ``val`` split (mean over tasks)."""
    from cliport_ros.training.evaluate import evaluate_policy

    def validate(policy: Policy, step: int) -> dict[str, float]:
        scores, successes = [], []
        for task in tasks:
            summary = evaluate_policy(policy, task, split="val", n=n_episodes, seed_start=0, verbose=False)
            scores.append(summary["mean_score"])
            successes.append(summary["success_rate"])
        return {"mean_score": float(np.mean(scores)), "success_rate": float(np.mean(successes))}

    return validate
