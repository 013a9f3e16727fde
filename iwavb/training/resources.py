"""Whether a run fits this machine: the memory free on its device against the run's estimate
(iwavb/training/memory.py), decided from its settings before anything is allocated. A run whose estimate
exceeds the free memory is refused with the estimate in the message.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import ResourceError
from .config import TrainConfig
from .memory import MemoryEstimate, gb, training_memory


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


def check_training_fits(config: TrainConfig, device: torch.device) -> MemoryEstimate:
    """The run's estimate (iwavb/training/memory.py); a ResourceError with it when it exceeds the memory free
    on `device`."""
    estimate = training_memory(config, on_gpu=device.type == "cuda")
    free = free_memory(device)
    if free is not None and estimate.total > free:
        where = "on the GPU" if device.type == "cuda" else "in this machine's memory"
        raise ResourceError(
            f"this run would need {estimate.describe()}, and {gb(free)} are free {where}: lower K "
            f"({config.k}), the batch size ({config.batch_size}) or the network's size"
        )
    return estimate
