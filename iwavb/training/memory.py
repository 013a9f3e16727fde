"""A training run's memory, estimated from its settings before anything is allocated.

    the weights and Adam's two moments, and the copies of both that the trainer keeps to roll back to
    after a NaN: 6 floats per parameter (the gradients are in the step's peak)
  + the peak of one step's live tensors, or of a validation pass if larger (iwavb/core/footprint.py, on the
    meta device), which a CUDA graph keeps allocated between replays
  + on a GPU, the data set, held on the device as uint8
then times ALLOCATOR_MARGIN for the caching allocator's rounding and cuDNN's workspaces, plus, on a CPU,
PyTorch's own runtime. The app's GPU queue admits runs by it and a run that exceeds the free memory of its
device is refused before it starts (iwavb/training/resources.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..core.footprint import bound_peak_bytes, parameter_count, step_peak_bytes
from ..data.names import IMAGES
from .config import TrainConfig

STATE_FLOATS_PER_PARAMETER = 6  # weights 1 + Adam's moments 2, and the rollback copy of those 3
ALLOCATOR_MARGIN = 1.25
CPU_RUNTIME = 300_000_000  # PyTorch's own buffers, allocator and threads on a CPU: measured about 0.2 GB
VALIDATION_BATCH = 500  # images the trainer scores at a time when it validates


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at its peak, in parts (before the allocator's margin)."""

    state: int  # weights, Adam's moments and the rollback copy
    activations: int  # the larger of a step's and a validation pass's live tensors
    data: int  # the data set, when it is held on the device
    runtime: int  # PyTorch itself, on a CPU

    @property
    def total(self) -> int:
        return round(ALLOCATOR_MARGIN * (self.state + self.activations + self.data)) + self.runtime

    def describe(self) -> str:
        parts = [f"weights and optimiser {gb(self.state)}", f"activations {gb(self.activations)}"]
        parts += [f"data {gb(self.data)}"] if self.data else []
        return f"about {gb(self.total)} ({', '.join(parts)})"


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n < 1e11 else f"{n / 1e9:,.0f} GB"


@functools.lru_cache(maxsize=64)
def training_memory(config: TrainConfig, on_gpu: bool = True) -> MemoryEstimate:
    """The estimate of training `config` (float32 state; bfloat16 autocast needs less) on a GPU or a CPU.
    Kept per config: the CLI checks a run before loading its data and the trainer again when it starts, and the
    app's GPU queue asks at every admission (each estimate runs the networks on the meta device, 0.2-0.4 s)."""
    model = config.model_config()
    step = step_peak_bytes(model, config.batch_size, config.k)
    validation = bound_peak_bytes(model, VALIDATION_BATCH, config.k)
    return MemoryEstimate(
        state=STATE_FLOATS_PER_PARAMETER * 4 * parameter_count(model),
        activations=max(step, validation),
        data=IMAGES[config.dataset] * config.data_dim if on_gpu else 0,  # on a CPU: already loaded by then
        runtime=0 if on_gpu else CPU_RUNTIME,
    )


def training_bytes(config: TrainConfig) -> int:
    """Estimated GPU bytes of training `config`: what the app's GPU queue admits by."""
    return training_memory(config).total
