"""What the benchmark measures for any training step: steps/s, peak memory, FLOPs, host syncs, GEMM rate.

Shared by `train_speed` (this project's trainer) and `pythae_iwae` (pythae's model, in its own venv),
so that both sides of a comparison are measured by the same code.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from iwavb.core.footprint import PeakTensorMemory

Step = Callable[[], Any]
CHUNK_S = 0.25  # steps are timed in chunks of about this long, with one device sync after each


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steps_per_second(
    step: Step, device: torch.device, seconds: float, warmup: int = 2, min_chunks: int = 3
) -> tuple[float, float]:
    """(best, mean) rate of `step` over about `seconds`, timed in chunks of ~CHUNK_S after `warmup` steps.

    The best chunk is the figure to quote on a shared machine: other work only ever slows a chunk down.
    """
    for _ in range(warmup):
        step()
    synchronize(device)
    rates: list[float] = []
    done, chunk, start = 0, 1, time.perf_counter()
    while len(rates) < min_chunks or time.perf_counter() - start < seconds:
        chunk_start = time.perf_counter()
        for _ in range(chunk):
            step()
        synchronize(device)  # a step only queues work on a GPU: time what has finished
        rates.append(chunk / (time.perf_counter() - chunk_start))
        done += chunk
        chunk = max(1, round(rates[-1] * CHUNK_S))
    return max(rates), done / (time.perf_counter() - start)


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype = torch.float32, seconds: float = 1.0) -> float:
    """The device's throughput on one large square GEMM: the ceiling that a step's FLOP count is set against."""
    n = 8192 if device.type == "cuda" else 2048 if dtype == torch.float32 else 256  # CPU bfloat16 may be ~1 GFLOP/s
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return 2 * n**3 * steps_per_second(lambda: a @ b, device, seconds, warmup=1)[0]


def _einsum_macs(equation: str, *operands: torch.Tensor) -> int:
    """Multiply-adds of a two-operand einsum: the product of the sizes of all its distinct indices."""
    sizes: dict[str, int] = {}
    for letters, t in zip(equation.replace(" ", "").split("->")[0].split(","), operands):
        sizes.update(zip(letters, t.shape))
    return math.prod(sizes.values())


# Multiply-adds of one call, from its operands' shapes and its output's: function -> (macs, operands).
MATRIX_PRODUCTS: dict[Callable, Callable[..., tuple[int, tuple[torch.Tensor, ...]]]] = {
    F.linear: lambda out, x, w, b=None: (x.numel() * w.shape[0], (x, w)),
    torch.matmul: lambda out, a, b: (out.numel() * a.shape[-1], (a, b)),
    torch.Tensor.__matmul__: lambda out, a, b: (out.numel() * a.shape[-1], (a, b)),
    torch.einsum: lambda out, eq, *ops: (_einsum_macs(eq, *ops), ops),
    torch.baddbmm: lambda out, bias, a, b, **kw: (out.numel() * a.shape[-1], (a, b)),  # the AC basis (nets.BasisNets)
    F.conv2d: lambda out, x, w, *rest: (out.numel() * math.prod(w.shape[1:]), (x, w)),
    # each input element meets a kernel of every output channel (of its group)
    F.conv_transpose2d: lambda out, x, w, *rest: (x.numel() * math.prod(w.shape[1:]), (x, w)),
}


class MatmulFlops(TorchFunctionMode):
    """FLOPs of the steps run inside it, counted from the shapes of every matrix product and convolution.

    A product costs 2 * multiply-adds forward, and the same again in the backward pass for each operand
    that needs a gradient: 3x forward for a trained layer inside a network, 2x for a first layer (its
    input needs none) or for a frozen layer that passes a gradient back (T in the bound step), 1x for a
    frozen layer whose input needs none. Elementwise work and norms are left out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in MATRIX_PRODUCTS:
            positional = (args[0], *args[1]) if func is torch.einsum and isinstance(args[1], (list, tuple)) else args
            macs, operands = MATRIX_PRODUCTS[func](out, *positional)
            grads = sum(torch.is_grad_enabled() and t.requires_grad for t in operands)
            self.flops += 2 * macs * (1 + grads)
        return out


def peak_step_memory(step: Step, device: torch.device) -> int:
    """Bytes a step holds at its peak beyond what was held before it (weights, Adam state, data)."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    with PeakTensorMemory() as tracker:
        step()
    return tracker.peak


def host_syncs(step: Step, device: torch.device) -> int | None:
    """How many times one step waits for the GPU (CUDA's sync debug mode); None on a CPU."""
    if device.type != "cuda":
        return None
    synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@dataclass(frozen=True)
class Measurement:
    steps_per_s: float  # the best chunk's rate (see `steps_per_second`)
    mean_steps_per_s: float
    flops_per_step: int | None  # None where the step cannot be counted eagerly (compiled, graphed)
    peak_bytes: int | None  # None where it cannot be tracked (compiled code on a CPU, graph replays)
    host_syncs: int | None  # None on a CPU


def measure(
    step: Step, device: torch.device, seconds: float, count_flops: bool = True, track_memory: bool = True
) -> Measurement:
    """All figures of one case: FLOPs on the first (warm-up) step, then the rate, memory and syncs."""
    flops = None
    if count_flops:
        with MatmulFlops() as counter:
            step()
        flops = counter.flops
    best, mean = steps_per_second(step, device, seconds)
    peak = peak_step_memory(step, device) if track_memory else None
    return Measurement(best, mean, flops, peak, host_syncs(step, device))
