"""Which device and how many CPU threads a run uses."""

from __future__ import annotations

import torch

from .. import settings


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" picks CUDA when present, else the CPU; "cuda" without a GPU is a ValueError that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but PyTorch sees no GPU here; use 'auto' or 'cpu'")
    return device


def device_description(device: torch.device) -> str:
    """A human name for the device, for metadata and the app: 'NVIDIA H100 80GB HBM3', 'CPU (1 thread)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads > 1 else ''})"


def configure_cpu_threads(n: int | None = None) -> int:
    """Set PyTorch's intra-op CPU threads (n, else IWAVB_THREADS: iwavb.settings) and return the number used.

    On a small shared machine one thread per training job is the robust choice: with as many OpenMP
    threads as cores, training slowed 10-25x whenever another process took a core (README, Performance).
    """
    if n is None:
        n = settings.threads()
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()
