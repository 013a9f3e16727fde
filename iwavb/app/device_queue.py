"""Admission of training jobs to devices: at most a fixed number train at once on each kind.

One GPU is shared between browser sessions by letting one job train on it at a time (IWAVB_GPU_JOBS);
the others wait in line, first come first served, and can see how many are ahead of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .. import settings


class DeviceQueue:
    """First come, first served admission: at most `limits[kind]` jobs train at once on each device kind."""

    def __init__(self, limits: dict[str, int]):
        self.limits = limits
        self._cond = threading.Condition()
        self._waiting: dict[str, list[str]] = {}
        self._busy: dict[str, int] = {}

    @contextmanager
    def slot(
        self, kind: str, ticket: str, cancelled: threading.Event, on_wait: Callable[[int], None] = lambda ahead: None
    ) -> Iterator[bool]:
        """Wait for a slot on `kind`; yields True when admitted, False when cancelled while waiting."""
        with self._cond:
            waiting = self._waiting.setdefault(kind, [])
            waiting.append(ticket)
            try:
                while not cancelled.is_set():
                    free = self.limits.get(kind, 1) - self._busy.get(kind, 0)
                    ahead = waiting.index(ticket)
                    if ahead < free:
                        break
                    on_wait(ahead - free + 1)
                    self._cond.wait(timeout=0.5)
            finally:
                waiting.remove(ticket)
            admitted = not cancelled.is_set()
            if admitted:
                self._busy[kind] = self._busy.get(kind, 0) + 1
            self._cond.notify_all()
        try:
            yield admitted
        finally:
            if admitted:
                with self._cond:
                    self._busy[kind] -= 1
                    self._cond.notify_all()


def default_limits(threads_per_job: int) -> dict[str, int]:
    """One GPU job at a time (IWAVB_GPU_JOBS); on the CPU as many as the cores allow (IWAVB_CPU_JOBS)."""
    return {"cuda": settings.gpu_jobs(), "cpu": settings.cpu_jobs(threads_per_job)}


def device_kind(device: str) -> str:
    """ "cuda" or "cpu": the queue a run on `device` ("auto", "cpu", "cuda:1") waits in."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if device.startswith("cuda") else "cpu"
