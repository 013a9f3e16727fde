"""What the benchmark measures for any training step: steps/s, peak memory, FLOPs, host syncs, GEMM rate.

Shared by `train_speed` (this project's trainer) and `pythae_iwae` (pythae's model, in its own venv),
so that both sides of a comparison are measured by the same code.
"""

from __future__ import annotations

import math
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

Step = Callable[[], Any]
COUNTED_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
CHUNK_S = 0.5  # steps are timed in chunks of about this long, with one device sync after each


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def steps_per_second(step: Step, device: torch.device, seconds: float, warmup: int = 2, min_steps: int = 3) -> float:
    """Mean rate of `step` over about `seconds` (at least `min_steps` steps), after `warmup` steps."""
    for _ in range(warmup):
        step()
    synchronize(device)
    done, chunk, start = 0, 1, time.perf_counter()
    while True:
        for _ in range(chunk):
            step()
        synchronize(device)  # a step only queues work on a GPU: time what has finished
        done += chunk
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and done >= min_steps:
            return done / elapsed
        rate = done / elapsed
        chunk = max(1, min_steps - done, math.ceil(rate * min(seconds - elapsed, CHUNK_S)))


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype = torch.float32, seconds: float = 1.0) -> float:
    """The device's throughput on one large square GEMM: the ceiling that a step's FLOP count is set against."""
    n = 8192 if device.type == "cuda" else 2048 if dtype == torch.float32 else 256  # CPU bfloat16 may be ~1 GFLOP/s
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    return 2 * n**3 * steps_per_second(lambda: a @ b, device, seconds, warmup=1)


def forward_macs(layer: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-adds of one call of a Linear or (transposed) convolution, from its shapes."""
    if isinstance(layer, nn.Linear):
        return out.numel() * layer.in_features
    kernel = math.prod(layer.kernel_size)
    if isinstance(layer, nn.ConvTranspose2d):  # each input element meets every output channel's kernel
        return x.numel() * layer.out_channels // layer.groups * kernel
    return out.numel() * layer.in_channels // layer.groups * kernel


class LayerFlops:
    """FLOPs of the steps run inside it, counted from the shapes of each Linear and conv call.

    A call costs 2 * multiply-adds forward, and the same again in the backward pass for each of its
    weight gradient (trained weights) and its input gradient (an input that needs one): 3x forward for
    a trained layer inside a network, 2x for a first layer or for a frozen layer that passes a gradient
    back (T in the bound step), 1x for a frozen layer whose input needs none. Elementwise work, norms
    and T's inner product are left out (under 1% of the mlp steps).
    """

    def __init__(self, module: nn.Module):
        self.module, self.flops, self._hooks = module, 0, []

    def __enter__(self) -> "LayerFlops":
        self._hooks = [m.register_forward_hook(self._count) for m in self.module.modules()
                       if isinstance(m, COUNTED_LAYERS)]
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._hooks:
            hook.remove()

    def _count(self, layer: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        grad = torch.is_grad_enabled()
        passes = 1 + int(grad and layer.weight.requires_grad) + int(grad and inputs[0].requires_grad)
        self.flops += 2 * forward_macs(layer, inputs[0], out) * passes


class PeakTensorMemory(TorchDispatchMode):
    """Bytes of the tensors created inside it and still alive, at their peak (CPU: no allocator stats)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self._seen = WeakIdKeyDictionary()  # storages already counted (views share them)

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage() not in self._seen:
                storage = t.untyped_storage()
                self._seen[storage] = nbytes = storage.nbytes()
                weakref.finalize(storage, self._free, nbytes)
                self.live += nbytes
                self.peak = max(self.peak, self.live)
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
    steps_per_s: float
    flops_per_step: int | None  # None where the step cannot be counted eagerly (compiled, graphed)
    peak_bytes: int | None  # None where it cannot be tracked (compiled code on a CPU, graph replays)
    host_syncs: int | None  # None on a CPU


def measure(step: Step, device: torch.device, seconds: float, flops_of: nn.Module | None,
            track_memory: bool = True) -> Measurement:
    """All figures of one case: FLOPs on the first (warm-up) step, then the rate, memory and syncs."""
    flops = None
    if flops_of is not None:
        with LayerFlops(flops_of) as counter:
            step()
        flops = counter.flops
    rate = steps_per_second(step, device, seconds)
    peak = peak_step_memory(step, device) if track_memory else None
    return Measurement(rate, flops, peak, host_syncs(step, device))
