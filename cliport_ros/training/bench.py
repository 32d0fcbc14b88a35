"""Latency, parameter, memory and efficiency figures of a policy at batch 1 (random weights: same speed).

The efficiency compares the latency with the compute bound of the decision: its floating-point work (the
network's convolutions and linear layers, counted by torch's FlopCounterMode, plus the place correlation as
the reference computes it, a direct convolution) at the machine's sustained fp32 rate, measured in the same
run on the two kernels that do the network's work: a large matrix product and a 3x3 convolution. The faster
of the two is taken, so the bound is the strictest of the two.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
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


def sustained_gflops(device: torch.device, seconds: float = 1.0) -> dict[str, float]:
    """The machine's sustained fp32 rate (GFLOP/s) on a 2048^3 matrix product and a 3x3 convolution."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(device, memory_format=torch.channels_last)
    x = torch.randn(1, 256, 80, 80, device=device).contiguous(memory_format=torch.channels_last)
    kernels = {
        "gemm": (lambda: a @ b, 2 * 2048**3),
        "conv3x3": (lambda: conv(x), 2 * 256 * 256 * 9 * 80 * 80),
    }
    rates = {}
    with torch.inference_mode():
        for name, (fn, flops) in kernels.items():
            for _ in range(3):
                fn()
            sync()
            n, t0 = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                sync()
                elapsed = time.perf_counter() - t0
                if elapsed >= seconds and n >= 5:
                    break
            rates[name] = round(flops * n / elapsed / 1e9, 1)
    rates["rate"] = max(rates["gemm"], rates["conv3x3"])
    return rates


def decision_gflop(policy: Policy, view: Any, instruction: str) -> dict[str, float]:
    """The floating-point work of one decision (GFLOP): the network's, and the place correlation's as a
    direct convolution (what the reference computes; this package does it through the FFT, with less)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        policy.act(view, instruction)
    cfg = policy.cfg
    rows, cols = policy.workspace.shape
    k, pad = cfg.crop_size, cfg.pad
    # F.conv2d(key (C, rows + 2 pad, cols + 2 pad), kernels (R, C, k, k), padding=pad), as the reference
    out = (rows + 2 * pad + 2 * pad - k + 1) * (cols + 2 * pad + 2 * pad - k + 1)
    correlation = 2 * cfg.n_rotations * cfg.key_query_dim * k * k * out
    network = counter.get_total_flops()
    return {
        "network": round(network / 1e9, 1),
        "correlation_direct": round(correlation / 1e9, 1),
        "decision": round((network + correlation) / 1e9, 1),
    }


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[list[subprocess.Popen]]:
    """``n`` processes that each keep one core busy (a robot PC's drivers, MoveIt and RViz), stopped on exit."""
    if n < 0:
        raise ValueError(f"load must be >= 0 busy processes, got {n}")
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL) for _ in range(n)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def run_bench(
    config: str = "tiny",
    device: str = "cpu",
    threads: int | None = None,
    repeats: int = 20,
    warmup: int = 3,
    precision: str = "auto",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    load: int = 0,
) -> dict[str, Any]:
    """Build the named config (with ``overrides`` of its fields) with random CLIP weights, warm up, then time
    ``repeats`` decisions, with ``load`` busy processes running beside the warm-up and the timing."""
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
        view.color = rng.integers(0, 256, (*policy.workspace.shape, 3), dtype=np.uint8)
        view.height = (rng.random(policy.workspace.shape) * 0.1).astype(np.float32)
        views.append(view)
    timings: dict[str, list[float]] = {"pick_ms": [], "place_ms": [], "total_ms": []}
    with busy_processes(load):
        for i in range(warmup):
            policy.act(views[i % 2], INSTRUCTIONS[i % 2])
        if policy.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(policy.device)
        for i in range(repeats):
            out = policy.act(views[i % 2], INSTRUCTIONS[i % 2])
            for key in timings:
                timings[key].append(out.timings[key])
    memory = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}
    work = decision_gflop(policy, views[0], INSTRUCTIONS[0])
    rates = sustained_gflops(policy.device)
    decision_p50 = float(np.percentile(timings["total_ms"], 50))
    bound_ms = work["decision"] / rates["rate"] * 1e3
    efficiency = {
        "gflop_per_decision": work,
        "sustained_gflops": rates,
        "compute_bound_ms": round(bound_ms, 1),
        # compute bound / measured latency (p50): 1.0 = the decision's work at the machine's best rate
        "efficiency": round(bound_ms / decision_p50, 3),
        "achieved_gflops": round(work["network"] / decision_p50 * 1e3, 1),
    }
    if policy.device.type == "cuda":
        memory["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(policy.device) / 2**20, 1)
    return {
        "config": config,
        "model_overrides": dict(overrides or {}),
        "device": str(policy.device),
        "precision": str(policy.dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "load": load,
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
        **efficiency,
    }
