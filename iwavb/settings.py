"""Every `IWAVB_*` environment variable, read here and nowhere else: one rule per setting.

Each setting is read when it is asked for (not at import), so a test or a user can change the
environment between calls. A value that does not parse is a `SettingsError` that names the variable.
The README's table of environment variables lists `SETTINGS`; a test keeps the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import IWAVBError

CACHE_HOME = Path.home() / ".cache" / "iwavb"
SOURCE_TREE = Path(__file__).resolve().parent.parent  # the checkout, when the package runs from one


class SettingsError(IWAVBError, ValueError):
    """An environment variable holds a value that cannot be used; the message names it."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # in words, as the README shows it
    meaning: str


SETTINGS = (
    Setting("IWAVB_DATA_ROOT", "~/.cache/iwavb/datasets", "data sets in torchvision's layout"),
    Setting("IWAVB_CACHE_DIR", "~/.cache/iwavb/arrays", "compressed 28x28 arrays, written on first load"),
    Setting("IWAVB_OFFLINE", "0", "1: never download a data set"),
    Setting("IWAVB_RUNS_DIR", "./runs", "the app's and the CLI's own checkpoints"),
    Setting("IWAVB_PRETRAINED_DIR", "pretrained/ of the source tree, else ./pretrained", "the curated checkpoints"),
    Setting("IWAVB_THREADS", "1", "torch CPU threads of one training run or evaluation (CLI: --threads)"),
    Setting("IWAVB_JOB_TIMEOUT_S", "180", "app: a session silent this long has its runs stopped and freed"),
    Setting("IWAVB_GPU_JOBS", "4", "app: runs that train on the GPU at once, at most (fewer if memory is short)"),
    Setting("IWAVB_CPU_JOBS", "cores ÷ IWAVB_THREADS", "app: runs that train on the CPU at once"),
)
DEFAULT_THREADS = 1  # measured: on 2 shared cores, 2 threads ran 2-5x slower than 1 (README, Performance)
DEFAULT_GPU_JOBS = 4  # the app's device queue admits them by their estimated memory (iwavb/app/device_queue.py)
DEFAULT_JOB_TIMEOUT_S = 180.0  # longer than the once-a-minute timers of a browser tab left in the background


def _raw(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _path(name: str, default: Path) -> Path:
    value = _raw(name)
    return Path(value).expanduser() if value is not None else default


def _number(name: str, default: float, kind: type = int, minimum: float = 1) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = kind(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a {'whole ' if kind is int else ''}number") from None
    if not number >= minimum:  # also refuses NaN
        raise SettingsError(f"{name}={value!r}: it must be at least {minimum:g}")
    return number


def data_root() -> Path:
    return _path("IWAVB_DATA_ROOT", CACHE_HOME / "datasets")


def cache_dir() -> Path:
    return _path("IWAVB_CACHE_DIR", CACHE_HOME / "arrays")


def offline() -> bool:
    value = (_raw("IWAVB_OFFLINE") or "0").lower()
    if value not in ("0", "1", "false", "true", "no", "yes"):
        raise SettingsError(f"IWAVB_OFFLINE={value!r}: use 1 (never download) or 0")
    return value in ("1", "true", "yes")


def runs_dir() -> Path:
    return _path("IWAVB_RUNS_DIR", Path("runs"))


def pretrained_dir() -> Path:
    """IWAVB_PRETRAINED_DIR; else `pretrained/` of the source tree the package runs from (a checkout or an
    editable install); else ./pretrained."""
    shipped = SOURCE_TREE / "pretrained"
    return _path("IWAVB_PRETRAINED_DIR", shipped if shipped.is_dir() else Path("pretrained"))


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def threads() -> int:
    """IWAVB_THREADS: 1 to the cores available; more threads than cores only slow a run down (README)."""
    n = int(_number("IWAVB_THREADS", DEFAULT_THREADS))
    if n > available_cores():
        raise SettingsError(f"IWAVB_THREADS={n}: this process may use {available_cores()} CPU cores; use at most that")
    return n


def job_timeout_s() -> float:
    return float(_number("IWAVB_JOB_TIMEOUT_S", DEFAULT_JOB_TIMEOUT_S, float, minimum=1.0))


def gpu_jobs() -> int:
    return int(_number("IWAVB_GPU_JOBS", DEFAULT_GPU_JOBS))


def cpu_jobs(threads_per_job: int) -> int:
    return int(_number("IWAVB_CPU_JOBS", max(1, (os.cpu_count() or 1) // max(1, threads_per_job))))
