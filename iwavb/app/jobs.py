"""Background training jobs for the app: each job is a thread that drives `Trainer.run()`.

A job trains one or more runs one after another (the Train page: one; Compare: the four methods),
publishes a thread-safe `JobSnapshot` after every record, and can be paused, resumed and stopped
from any thread. It never touches Streamlit.

The `JobRegistry` ties jobs to their owner (one browser session, by an opaque token) and a slot
("train", "compare"), so two tabs never share or overwrite each other's runs. Owners prove they are
alive with `heartbeat`; a watchdog closes the jobs of owners silent for `timeout_s` and drops their
models, so a closed tab frees its memory. A `DeviceQueue` admits jobs to each kind of device by count
and, on a GPU, by their estimated memory (`device_queue`); a run that ends on a GPU moves its model to
the CPU (where the pages can still show and save it) and gives the GPU's memory back.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .. import settings
from ..errors import IWAVBError
from ..training.config import TrainConfig
from .device_queue import DeviceQueue, default_limits, device_kind

if TYPE_CHECKING:  # torch and the trainer are imported in the job thread, not when a page imports this
    from ..data.splits import DataSplits
    from ..training.records import Record
    from ..training.trainer import Trainer

JobStatus = Literal["queued", "preparing", "running", "paused", "finished", "stopped", "failed", "expired"]
ACTIVE: frozenset[str] = frozenset({"queued", "preparing", "running", "paused"})
RUNNING: tuple[JobStatus, str] = ("running", "training")  # (status, message)
PAUSED: tuple[JobStatus, str] = ("paused", "paused: press Resume to go on")


@dataclass(frozen=True)
class RunSpec:
    """One run of a job: train `config` from scratch, or continue a checkpoint for `extra_steps` (0: just load)."""

    config: TrainConfig
    label: str = ""
    checkpoint: Path | None = None
    extra_steps: int = 0

    @property
    def name(self) -> str:
        return self.label or self.config.title


@dataclass(frozen=True)
class RunSnapshot:
    name: str
    config: TrainConfig  # for a checkpoint not loaded yet, the spec's (its file's config once loaded)
    history: tuple[Record, ...]
    step: int
    total_steps: int

    @property
    def last(self) -> Record | None:
        return self.history[-1] if self.history else None


@dataclass(frozen=True)
class JobSnapshot:
    job_id: str
    status: JobStatus
    message: str  # what is happening, in words: "waiting for the GPU (1 job ahead)"
    runs: tuple[RunSnapshot, ...]
    current: int  # index of the run being trained or prepared
    device: str | None
    error: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current speed, over this run and the ones after it."""
        last = self.runs[self.current].last if self.runs else None
        if not self.active or last is None or last.steps_per_s <= 0:
            return None
        left = sum(r.total_steps - r.step for r in self.runs[self.current :])
        return left / last.steps_per_s


class Job:
    """A thread training `specs` one after another. Controls and `snapshot()` are safe from any thread."""

    def __init__(
        self,
        specs: list[RunSpec],
        queue: DeviceQueue,
        threads: int = 1,
        data: Callable[[str], DataSplits] | None = None,
    ):
        if not specs:
            raise ValueError("a job needs at least one run")
        self.job_id = uuid.uuid4().hex[:8]
        self.specs = list(specs)
        self.threads = threads
        self._queue = queue
        self._load_data = data
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._trainers: list[Trainer | None] = [None] * len(specs)
        self._histories: list[tuple[Record, ...]] = [() for _ in specs]
        self._configs = [s.config for s in specs]
        self._totals = [s.config.steps for s in specs]
        self._status: JobStatus = "queued"
        self._message = "waiting to start"
        self._current = 0
        self._device: str | None = None
        self._error: str | None = None
        self._kind = "cpu"
        self._thread = threading.Thread(target=self._main, name=f"iwavb-job-{self.job_id}", daemon=True)

    # -- controls ------------------------------------------------------------------------------------
    def start(self) -> Job:
        self._thread.start()
        return self

    def pause(self) -> None:
        self._hold(True)

    def resume(self) -> None:
        self._hold(False)

    def _hold(self, paused: bool) -> None:
        """Pause or resume: the flag for runs still to start, the status, and the run now training."""
        with self._lock:
            (self._paused.set if paused else self._paused.clear)()
            trainer = self._trainers[self._current]
            if self._status == ("running" if paused else "paused"):
                self._set(*(PAUSED if paused else RUNNING))
        if trainer is not None:
            (trainer.pause if paused else trainer.resume)()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            trainers = [t for t in self._trainers if t is not None]
        for trainer in trainers:
            trainer.stop()

    def close(self, status: JobStatus = "stopped", message: str = "closed", join_s: float = 10.0) -> None:
        """Stop, wait for the thread, and drop the models so that their memory can be freed."""
        self.stop()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(join_s)
        with self._lock:
            on_gpu = any(t is not None and t.device.type == "cuda" for t in self._trainers)
            self._trainers = [None] * len(self.specs)
            if status == "expired" or self._status in ACTIVE:
                self._set(status, message)
        if on_gpu:
            import torch

            torch.cuda.empty_cache()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- reading ------------------------------------------------------------------------------------
    def snapshot(self) -> JobSnapshot:
        with self._lock:
            runs = tuple(
                RunSnapshot(spec.name, config, history, history[-1].step if history else 0, total)
                for spec, config, history, total in zip(self.specs, self._configs, self._histories, self._totals)
            )
            return JobSnapshot(self.job_id, self._status, self._message, runs, self._current, self._device, self._error)

    def trainer(self, index: int = 0) -> Trainer | None:
        """The trainer of run `index` once built (None before, and after `close`); hold its `.lock` to use
        its model while it trains."""
        with self._lock:
            return self._trainers[index]

    # -- the thread ----------------------------------------------------------------------------------
    def _set(self, status: JobStatus, message: str) -> None:
        self._status, self._message = status, message

    def _on_wait(self, ahead: int) -> None:
        with self._lock:
            self._set(
                "queued",
                f"waiting for a free {'GPU' if self._kind == 'cuda' else 'CPU'} slot "
                f"({ahead} job{'s' if ahead != 1 else ''} ahead)",
            )

    def _main(self) -> None:
        from ..training.device import configure_cpu_threads
        from ..training.memory import training_bytes

        configure_cpu_threads(self.threads)  # per thread: the page's own threads keep their setting
        try:
            self._kind = device_kind(self.specs[0].config.device)
            # The runs train one after another, each freeing the GPU when it ends: the largest one counts.
            need = max(training_bytes(s.config) for s in self.specs) if self._kind == "cuda" else 0
            with self._queue.slot(self._kind, self.job_id, self._stop, self._on_wait, need) as admitted:
                if admitted:
                    for index, spec in enumerate(self.specs):
                        if self._stop.is_set():
                            break
                        self._train(index, spec)
            with self._lock:
                if self._status in ACTIVE:
                    done = not self._stop.is_set()
                    self._set("finished" if done else "stopped", "finished" if done else "stopped")
        except (IWAVBError, ValueError, RuntimeError, OSError) as err:
            self._fail(str(err))
        except Exception as err:
            self._fail(f"{type(err).__name__}: {err}")

    def _fail(self, message: str) -> None:
        with self._lock:
            self._error = message
            self._set("failed", message)

    def _train(self, index: int, spec: RunSpec) -> None:
        with self._lock:
            self._current = index
            self._set("preparing", f"preparing {spec.name}: loading data and building the networks")
        trainer = self._build(spec)
        with self._lock:
            if self._stop.is_set():
                return
            self._trainers[index] = trainer
            self._configs[index] = trainer.config
            self._totals[index] = trainer.config.steps
            self._histories[index] = tuple(trainer.history)
            self._device = _describe(trainer)
            paused = self._paused.is_set()
            self._set(*(PAUSED if paused else RUNNING))
        if paused:
            trainer.pause()
        try:
            for record in trainer.run():
                with self._lock:
                    self._histories[index] = (*self._histories[index], record)
        finally:
            free_gpu(trainer)

    def _build(self, spec: RunSpec) -> Trainer:
        from ..evaluation.truth import truth_probe
        from ..training.checkpoint import load_checkpoint
        from ..training.trainer import Trainer
        from .shared_data import cached_dataset, display_dataset

        if spec.checkpoint is None:
            data = (self._load_data or cached_dataset)(spec.config.dataset)
            return Trainer(spec.config, data=data, truth=truth_probe(spec.config, data))
        checkpoint = load_checkpoint(spec.checkpoint)
        # A checkpoint only loaded (not trained further) can be shown with the shipped preview images.
        load = self._load_data or (cached_dataset if spec.extra_steps else display_dataset)
        data = load(checkpoint.config.dataset)
        return Trainer.from_checkpoint(
            checkpoint,
            steps=max(1, checkpoint.step + spec.extra_steps),
            device=spec.config.device,
            data=data,
            truth=truth_probe(checkpoint.config, data) if spec.extra_steps else None,
        )


def free_gpu(trainer: Trainer) -> None:
    """A run that has ended (finished, stopped or failed) on a GPU gives its memory back: its model and state
    move to the CPU, where the pages can still show and save them, and PyTorch's cache is emptied."""
    if trainer.device.type != "cuda":
        return
    import torch

    trainer.release_device()
    torch.cuda.empty_cache()


def _describe(trainer: Trainer) -> str:
    from ..training.device import device_description

    return device_description(trainer.device)


@dataclass
class _Owner:
    last_seen: float
    jobs: dict[str, Job] = field(default_factory=dict)


class JobRegistry:
    """Jobs by owner and slot; a watchdog closes the jobs of owners not heard from for `timeout_s`."""

    def __init__(
        self,
        timeout_s: float = settings.DEFAULT_JOB_TIMEOUT_S,
        threads: int = 1,
        limits: dict[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        data: Callable[[str], DataSplits] | None = None,
    ):
        self.timeout_s = timeout_s
        self.threads = threads
        self.queue = DeviceQueue(limits if limits is not None else default_limits(threads))
        self._clock = clock
        self._data = data
        self._lock = threading.Lock()
        self._owners: dict[str, _Owner] = {}
        self._watchdog: threading.Thread | None = None

    def submit(self, owner: str, slot: str, specs: list[RunSpec]) -> Job:
        """Start a job for `owner` in `slot`, closing the job that held that slot before."""
        job = Job(specs, self.queue, self.threads, self._data)
        with self._lock:
            entry = self._owners.setdefault(owner, _Owner(self._clock()))
            entry.last_seen = self._clock()
            previous = entry.jobs.get(slot)
            entry.jobs[slot] = job
        if previous is not None:
            previous.close(message="replaced by a new run")
        job.start()
        self._ensure_watchdog()
        return job

    def get(self, owner: str, slot: str) -> Job | None:
        with self._lock:
            entry = self._owners.get(owner)
            return entry.jobs.get(slot) if entry else None

    def heartbeat(self, owner: str) -> None:
        with self._lock:
            entry = self._owners.get(owner)
            if entry is not None:
                entry.last_seen = self._clock()

    def owners(self) -> list[str]:
        with self._lock:
            return list(self._owners)

    def reap(self) -> list[Job]:
        """Close and forget the jobs of owners silent for longer than `timeout_s`; returns them."""
        now = self._clock()
        with self._lock:
            gone = [o for o, e in self._owners.items() if now - e.last_seen > self.timeout_s]
            jobs = [job for o in gone for job in self._owners.pop(o).jobs.values()]
        for job in jobs:
            job.close("expired", f"stopped: this browser tab sent no heartbeat for {self.timeout_s:.0f} s")
        return jobs

    def close_all(self) -> None:
        with self._lock:
            jobs = [job for e in self._owners.values() for job in e.jobs.values()]
            self._owners.clear()
        for job in jobs:
            job.close()

    def _ensure_watchdog(self) -> None:
        with self._lock:
            if self._watchdog is not None and self._watchdog.is_alive():
                return
            self._watchdog = threading.Thread(target=self._watch, name="iwavb-job-watchdog", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        period = min(5.0, self.timeout_s / 4)
        while True:
            time.sleep(period)
            self.reap()
            with self._lock:
                if not self._owners:
                    self._watchdog = None
                    return
