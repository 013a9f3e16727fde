"""How a training step runs on its device: plain, in bfloat16 autocast, replayed from a CUDA graph, or compiled.

The maths of the step is the same in every way (Trainer.update); these only change how the device runs it:

    none        float32, eagerly, op by op
    amp         the two objectives' forward passes in bfloat16 autocast (the backward follows their dtypes).
                Losses, log p(x|z), logsumexp and sums stay float32 (autocast's own float32 list), and so do
                the adaptive-contrast moments; no loss scaling is needed with bfloat16's range.
    graph       the whole step (batch gather, binarisation, both updates, Adam) captured once as a CUDA graph
                and replayed: one launch per step instead of hundreds. The batch indices are its one input,
                copied into a fixed buffer before each replay; the run's generator is registered with the
                graph, so each replay draws fresh noise. Adam runs with capturable=True (its step on the GPU).
    amp+graph   both
    compile     torch.compile of the two objectives (the bound's log-weights and (2.14)) inside the step

The CUDA ways cannot run on a CPU; `resolve_accelerate` says so before a run starts.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from ..core.config import Family
from .config import CUDA_AUTO, Accelerate

Metrics = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]  # bound, T's loss, T's accuracy
WARMUP_STEPS = 3  # eager steps on a side stream before a graph is captured (lazy initialisation happens there)


def resolve_accelerate(choice: Accelerate, device: torch.device, family: Family) -> Accelerate:
    """The way a step runs on `device`: `auto` resolved (README, Performance), anything impossible refused."""
    if choice == "auto":
        return CUDA_AUTO[family] if device.type == "cuda" else "none"
    if "graph" in choice and device.type != "cuda":
        raise ValueError(f"accelerate {choice!r} replays a CUDA graph and needs a GPU; on a CPU use none or auto")
    return choice


def uses_graph(mode: Accelerate) -> bool:
    return "graph" in mode


def autocast(mode: Accelerate, device: torch.device) -> AbstractContextManager:
    """bfloat16 autocast for the amp ways, else nothing. Its weight cache is off: a captured graph must not
    keep casts made during capture (PyTorch's CUDA-graph notes)."""
    if "amp" not in mode:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


class GraphedStep:
    """A step function of the batch indices, eager for WARMUP_STEPS calls on a side stream, then captured
    once as a CUDA graph and replayed. Every call performs one real update: the capture records the step
    without running it, so the capturing call replays it at once. The outputs are the graph's own
    tensors, overwritten by the next replay: copy what must outlive it (Trainer.run stacks them)."""

    def __init__(self, step: Callable[[torch.Tensor], Metrics], generator: torch.Generator):
        self.step = step
        self.generator = generator
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.indices: torch.Tensor | None = None  # the graph's input buffer
        self.outputs: Metrics | None = None

    def __call__(self, indices: torch.Tensor) -> Metrics:
        self.calls += 1
        if self.calls <= WARMUP_STEPS:
            side = torch.cuda.Stream(indices.device)
            side.wait_stream(torch.cuda.current_stream(indices.device))
            with torch.cuda.stream(side):
                outputs = self.step(indices)
            torch.cuda.current_stream(indices.device).wait_stream(side)
            return outputs
        if self.graph is None:
            self.indices = indices.clone()
            self.graph = torch.cuda.CUDAGraph()
            self.graph.register_generator_state(self.generator)  # the run's generator, besides the default one
            # thread_local: another job's thread may use the GPU while this one captures (the app's queue)
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.outputs = self.step(self.indices)
        else:
            assert self.indices is not None
            self.indices.copy_(indices)
        self.graph.replay()
        assert self.outputs is not None
        return self.outputs
