"""Which device and how many CPU threads a run uses."""

from __future__ import annotations

import torch

from .. import settings
from ..errors import ResourceError, SettingError
from .config import check_device_name


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" picks CUDA when present, else the CPU; a device that is not here is a SettingError saying so."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingError("device", "device 'cuda' was asked for, but PyTorch sees no GPU here; use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SettingError(
            "device", f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s), from cuda:0"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SettingError("device", "device 'mps' was asked for, but PyTorch sees no Apple GPU here")
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
    torch.set_num_threads(check_threads(settings.threads() if n is None else n))
    return torch.get_num_threads()


def check_threads(n: int, what: str = "threads") -> int:
    """A CPU thread count: 1 to the cores this process may use (more only slows a run down: a thousand
    threads ran 400 times slower); a ResourceError that names `what` otherwise."""
    cores = settings.available_cores()
    if not 1 <= n <= cores:
        plural = "s" if cores > 1 else ""
        raise ResourceError(f"{what} {n}: this process may use {cores} CPU core{plural}; use 1 to {cores}")
    return n
