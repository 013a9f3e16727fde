"""Admission of training jobs to devices: first come, first served, by count and, on a GPU, by memory.

Jobs that share one GPU train at once only while their estimated memory (iwavb/training/memory.py) fits in
the GPU's: a job waits, first in line, until those running leave it room, and the jobs behind it wait
behind it. A job that would not fit even alone still runs once it is alone, so that it fails with
PyTorch's own out-of-memory message rather than waiting for ever. At most IWAVB_GPU_JOBS train on the GPU
at once and IWAVB_CPU_JOBS on the CPU (where memory is not counted).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .. import settings

GPU_MEMORY_SHARE = 0.9  # of the GPU's memory, what the admitted jobs' estimates may add up to

Capacity = Callable[[str], int | None]  # device kind -> bytes that admitted jobs may hold, None: not counted


class DeviceQueue:
    """At most `limits[kind]` jobs at once on each device kind, and on a kind with a capacity only as many as
    their memory estimates fit in it; first come, first served."""

    def __init__(self, limits: dict[str, int], capacity: Capacity | None = None):
        self.limits = limits
        self.capacity = capacity if capacity is not None else device_capacity
        self._cond = threading.Condition()
        self._waiting: dict[str, list[str]] = {}
        self._busy: dict[str, int] = {}
        self._held: dict[str, int] = {}  # bytes of the admitted jobs' estimates

    def _fits(self, kind: str, need: int) -> bool:
        busy = self._busy.get(kind, 0)
        if busy >= self.limits.get(kind, 1):
            return False
        room = self.capacity(kind) if busy else None  # alone, a job is always let in
        return room is None or self._held.get(kind, 0) + need <= room

    @contextmanager
    def slot(
        self,
        kind: str,
        ticket: str,
        cancelled: threading.Event,
        on_wait: Callable[[int], None] = lambda ahead: None,
        need: int = 0,
    ) -> Iterator[bool]:
        """Wait for a slot on `kind` for a job estimated to hold `need` bytes; yields True when admitted,
        False when cancelled while waiting. `on_wait(ahead)`: the jobs ahead of this one (in line or running)."""
        with self._cond:
            waiting = self._waiting.setdefault(kind, [])
            waiting.append(ticket)
            try:
                while not cancelled.is_set():
                    ahead = waiting.index(ticket)
                    if ahead == 0 and self._fits(kind, need):
                        break
                    on_wait(ahead + (ahead == 0))
                    self._cond.wait(timeout=0.5)
            finally:
                waiting.remove(ticket)
            admitted = not cancelled.is_set()
            if admitted:
                self._busy[kind] = self._busy.get(kind, 0) + 1
                self._held[kind] = self._held.get(kind, 0) + need
            self._cond.notify_all()
        try:
            yield admitted
        finally:
            if admitted:
                with self._cond:
                    self._busy[kind] -= 1
                    self._held[kind] -= need
                    self._cond.notify_all()


def default_limits(threads_per_job: int) -> dict[str, int]:
    """IWAVB_GPU_JOBS on the GPU (memory permitting); on the CPU as many as the cores allow (IWAVB_CPU_JOBS)."""
    return {"cuda": settings.gpu_jobs(), "cpu": settings.cpu_jobs(threads_per_job)}


@functools.cache
def device_capacity(kind: str) -> int | None:
    """GPU_MEMORY_SHARE of the first GPU's memory for "cuda"; None (not counted) for the CPU."""
    if kind != "cuda":
        return None
    import torch  # here, in a job's thread: the pages import this module without torch

    if not torch.cuda.is_available():
        return None
    return int(GPU_MEMORY_SHARE * torch.cuda.get_device_properties(0).total_memory)


def device_kind(device: str) -> str:
    """ "cuda" or "cpu": the queue a run on `device` ("auto", "cpu", "cuda:1") waits in."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"
