"""Latency, parameter and memory figures of a policy at batch 1 (random weights: the speed is the same)."""

from __future__ import annotations

import resource
import time
from typing import Any

import numpy as np
import torch

from cliport_ros.geometry.workspace import Workspace
from cliport_ros.model.config import ModelConfig
from cliport_ros.model.policy import Policy

INSTRUCTIONS = ("put the red blocks in a green bowl", "put the blue blocks in a yellow bowl")


def _percentiles(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p95": round(float(np.percentile(values, 95)), 2),
    }


def run_bench(
    config: str = "tiny",
    device: str = "cpu",
    threads: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    precision: str = "auto",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the named config (with ``overrides`` of its fields) with random CLIP weights, warm up, then time
    ``repeats`` decisions."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    cfg = ModelConfig.named(config, **(overrides or {}))
    # Weights do not change the speed; random CLIP keeps this offline. A pretrained trunk stays frozen.
    cfg = cfg.replace(clip_weights="none", clip_trainable=cfg.clip_trainable)
    t0 = time.perf_counter()
    policy = Policy(cfg, workspace=Workspace(), device=device, precision=precision)
    build_s = time.perf_counter() - t0
    params = {"trainable": 0, "frozen": 0}
    for p in policy.model.parameters():
        params["trainable" if p.requires_grad else "frozen"] += p.numel()
    per_net = policy.model.parameter_counts()
    rng = np.random.default_rng(seed)
    views = []
    for _ in range(2):
        view = type("View", (), {})()
        view.colour = rng.integers(0, 256, (*policy.workspace.shape, 3), dtype=np.uint8)
        view.height = (rng.random(policy.workspace.shape) * 0.1).astype(np.float32)
        views.append(view)
    for i in range(warmup):
        policy.act(views[i % 2], INSTRUCTIONS[i % 2])
    if policy.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(policy.device)
    timings: dict[str, list[float]] = {"pick_ms": [], "place_ms": [], "total_ms": []}
    for i in range(repeats):
        out = policy.act(views[i % 2], INSTRUCTIONS[i % 2])
        for key in timings:
            timings[key].append(out.timings[key])
    memory = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}
    if policy.device.type == "cuda":
        memory["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(policy.device) / 2**20, 1)
    return {
        "config": config,
        "model_overrides": dict(overrides or {}),
        "device": str(policy.device),
        "precision": str(policy.dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "image": list(policy.workspace.shape),
        "n_rotations": cfg.n_rotations,
        "parameters": params,
        "parameters_per_net": per_net,
        "memory": memory,
        "build_s": round(build_s, 2),
        "repeats": repeats,
        "warmup": warmup,
        "pick_ms": _percentiles(timings["pick_ms"]),
        "place_ms": _percentiles(timings["place_ms"]),
        "decision_ms": _percentiles(timings["total_ms"]),
    }
