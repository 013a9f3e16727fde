"""Whether a run fits this machine, decided from its settings before anything is allocated.

A run's memory is estimated from its settings: the parameters (weights, gradients, Adam's two moments and
the copy of the last good state, 7 floats each), the activations of one training step (the B*K samples of
z through the decoder and T, and the B images through the encoders, counted layer by layer on PyTorch's
"meta" device, which allocates nothing) and of a validation pass, and, on a GPU, the data. A run whose
estimate exceeds the memory free on its device is refused with the estimate in the message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..core.bounds import discriminator_loss, log_weights
from ..core.model import LatentVariableModel
from ..errors import ResourceError
from .config import TrainConfig

FLOAT = 4  # bytes
PARAMETER_COPIES = 7  # weights, gradients, Adam's exp_avg and exp_avg_sq, and the last good copy of all but grads
# What a pass holds at its peak, per float that its layers output (counted on the meta device): a training
# step keeps its activations and adds their gradients; a validation pass keeps little. Measured on the CPU
# (peak RSS less RUNTIME and the parameters; mlp, all four methods, B*K from 1,024 to 8,192 and validation
# of 500 x 300): 1.1 to 1.3 for a step and about 0.7 for validation; these leave a margin of 1.5 or more.
STEP_FACTOR = 2.0
VALIDATION_FACTOR = 1.0
VALIDATION_IMAGES = 500  # the trainer scores its validation subset 500 images at a time
RUNTIME = 300_000_000  # PyTorch's own buffers, allocator and threads on a CPU: measured about 0.2 GB


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs at its peak, in parts."""

    parameters: int
    activations: int
    data: int

    @property
    def total(self) -> int:
        return self.parameters + self.activations + self.data

    def describe(self) -> str:
        parts = [f"parameters, optimiser and runtime {gb(self.parameters)}", f"activations {gb(self.activations)}"]
        if self.data:
            parts.append(f"data {gb(self.data)}")
        return f"about {gb(self.total)} ({', '.join(parts)})"


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n < 1e11 else f"{n / 1e9:,.0f} GB"


def _counted_floats(model: LatentVariableModel, batch: int, k: int) -> tuple[int, int]:
    """Floats output by the leaf layers in one training step's two forward passes, the bound's and (for an
    implicit q) that of (2.14), for `batch` images and `k` samples each, counted on the meta device."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        outputs = output if isinstance(output, tuple) else (output,)
        total += sum(o.numel() for o in outputs if isinstance(o, torch.Tensor))

    handles = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        x = torch.zeros(batch, model.config.data_dim, device="meta")
        weights = log_weights(model, x, k)
        bound = total + 2 * weights.log_px_given_z.numel() * model.config.data_dim  # log p(x|z), pixel by pixel
        total = 0
        if model.discriminator is not None:
            discriminator_loss(model.discriminator, x, weights.z)
    finally:
        for handle in handles:
            handle.remove()
    return bound, total


def training_memory(config: TrainConfig, data_bytes: int = 0) -> MemoryEstimate:
    """The estimate of a run's peak memory on its device; `data_bytes`: the data it keeps there."""
    with torch.device("meta"):
        model = LatentVariableModel(config.model_config())
    parameters = sum(p.numel() for p in model.parameters())

    # Each pass's count is linear in the images B and in the samples B*K: two small counts give both rates.
    (bound_1, disc_1), (bound_2, disc_2) = _counted_floats(model, 1, 1), _counted_floats(model, 1, 2)

    def floats(batch: int, k: int, one: int, two: int) -> int:
        return batch * (2 * one - two) + batch * k * (two - one)

    b, k = config.batch_size, config.k
    step = STEP_FACTOR * max(floats(b, k, bound_1, bound_2), floats(b, k, disc_1, disc_2))
    validation = VALIDATION_FACTOR * floats(VALIDATION_IMAGES, k, bound_1, bound_2)
    return MemoryEstimate(
        parameters=PARAMETER_COPIES * FLOAT * parameters + RUNTIME,
        activations=int(FLOAT * max(step, validation)),
        data=data_bytes,
    )


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def free_cpu_memory() -> int | None:
    """Bytes this process may still allocate: the system's available memory, or less under a cgroup limit."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        limit, usage = _read_int(Path(limit_file)), _read_int(Path(usage_file))
        if limit is not None and usage is not None and limit < 2**60:
            found.append(max(0, limit - usage))
    return min(found) if found else None


def free_memory(device: torch.device) -> int | None:
    """Bytes free on a device (None where it cannot be told)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        return free_cpu_memory()
    return None


def check_training_fits(config: TrainConfig, device: torch.device, data_bytes: int = 0) -> MemoryEstimate:
    """The run's estimate; a ResourceError with it when it exceeds the memory free on `device`."""
    estimate = training_memory(config, data_bytes if device.type != "cpu" else 0)  # CPU data: already loaded
    free = free_memory(device)
    if free is not None and estimate.total > free:
        where = "on the GPU" if device.type == "cuda" else "in this machine's memory"
        raise ResourceError(
            f"this run would need {estimate.describe()}, and {gb(free)} are free {where}: lower K "
            f"({config.k}), the batch size ({config.batch_size}) or the network's size"
        )
    return estimate


def data_bytes(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)
