"""Running a sweep's trials on Ray: a local Ray by default, a cluster at an address, the spec unchanged.

Each trial is one Ray task (`run_trial`) holding the spec's CPU threads and GPUs; Ray places the tasks on
whatever cores and GPUs the machine or cluster has. The driver (this process) decides what to run from the
trials' files, retries a failed trial up to `retries` times while the others go on, shows a live view, and
writes the results table when it stops, finished or not. Ray's own retries are off, so that every failure
is seen, reported with its reason and counted here.

Ray is imported only here, and only when a sweep runs; without it the message says how to install it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from tqdm import tqdm

from ..errors import IWAVBError
from .board import Board
from .spec import SweepError, SweepSpec, Trial
from .table import collect_results, write_results
from .trial import TrialFiles, TrialOutcome, describe, read_trial, run_trial, trial_path

RAY_REQUIREMENT = "ray==2.60.0"
INSTALL = f"pip install '{RAY_REQUIREMENT}' (it is in requirements-dev.txt)"
POLL_S = 0.5  # how often the live view is refreshed while no trial ends


def import_ray() -> ModuleType:
    """Ray, or a SweepError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepError(f"sweeps run their trials on Ray, which is not installed here: {INSTALL}") from None
    return ray


@dataclass(frozen=True)
class Event:
    """What the driver reports as trials end: done, failed (and retried) or given up."""

    kind: Literal["done", "retry", "failed"]
    trial: str
    text: str


@dataclass
class SweepReport:
    """What one run of a sweep did."""

    skipped: list[str] = field(default_factory=list)  # finished before it started
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # trial -> the reason of its last failure
    attempts: dict[str, int] = field(default_factory=dict)  # trial -> attempts made
    interrupted: bool = False
    results: tuple[Path, Path] | None = None  # results.md, results.json


def plan(spec: SweepSpec, out: Path) -> dict[str, TrialFiles]:
    """Every trial's state from its files; a SweepError, before anything runs, for files of another run."""
    return {t.name: read_trial(out, t, spec.budget, spec.evaluation) for t in spec.trials}


def remote_trial(trial: Trial, spec: SweepSpec, out: Path, data_root: Path | None, board: Any) -> TrialOutcome:
    """The body of a trial's Ray task: run_trial, reporting progress to the board actor."""

    def report(phase: str, fraction: float) -> None:
        board.report.remote(trial.name, phase, fraction)

    return run_trial(trial, spec, out, report, data_root)


def failure_reason(ray: ModuleType, err: BaseException) -> str:
    """One line: the trial's own error (a NaN, a bad file, CUDA out of memory), or what Ray saw (a lost worker)."""
    if isinstance(err, ray.exceptions.RayTaskError) and err.cause is not None:
        cause = err.cause
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        return text if isinstance(cause, IWAVBError) else f"{type(cause).__name__}: {text}"
    lines = str(err).strip().splitlines()
    kind = "out of memory" if isinstance(err, ray.exceptions.OutOfMemoryError) else "lost worker"
    return f"{kind} ({type(err).__name__}): {lines[0] if lines else ''}"[:400]


def start_ray(ray: ModuleType, address: str | None) -> bool:
    """Connect to Ray: the running one (tests), the cluster at `address` (or RAY_ADDRESS), else a new local
    one on this machine's cores and GPUs, without its dashboard. True when this call started it."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as err:
        raise SweepError(
            f"{err}: is Ray running there (ray status)? A cluster started with token authentication (Ray's "
            "default) also needs RAY_AUTH_MODE=token here, and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        ) from None
    return True


def check_resources(ray: ModuleType, spec: SweepSpec) -> None:
    """Refuse a sweep whose trials this Ray cannot hold (they would wait for ever): more CPUs or GPUs per
    trial than it has in all."""
    have = ray.cluster_resources()
    wanted = {"CPU": spec.resources.threads, "GPU": spec.resources.gpu}
    short = [
        f"{n:g} {kind} per trial; this Ray has {have.get(kind, 0):g}"
        for kind, n in wanted.items()
        if n > have.get(kind, 0)
    ]
    if short:
        raise SweepError(
            f"spec {spec.name} asks for {', '.join(short)}: run it on a machine or cluster (--address) that has "
            "them (an autoscaling cluster: start such a node first), or lower its [resources]"
        )


class LiveView:
    """The terminal view: a tqdm bar counted in trials (running ones by their progress) with tqdm's ETA and the
    trials done, running, queued and failed; each trial's end is a line above it. Off a terminal only the lines
    are printed."""

    def __init__(self, spec: SweepSpec, total: int, enabled: bool = True):
        self.bar = tqdm(
            total=total,
            desc=f"sweep {spec.name}",
            dynamic_ncols=True,
            mininterval=1.0,
            disable=None if enabled else True,  # None: only on a terminal
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total} trials [{elapsed}<{remaining}{postfix}]",
        )

    def update(self, done: int, progress: dict[str, float], queued: int, failed: int) -> None:
        self.bar.n = done + sum(progress.values())
        self.bar.set_postfix_str(f"{done} done, {len(progress)} running, {queued} queued, {failed} failed", False)
        self.bar.update(0)  # redraws at most once per mininterval

    def line(self, text: str) -> None:
        self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def run_sweep(
    spec: SweepSpec,
    out: Path,
    address: str | None = None,
    data_root: Path | None = None,
    view: bool = True,
    on_event: Callable[[Event], None] | None = None,
) -> SweepReport:
    """Run the trials of `spec` that are not finished in `out`, on Ray, and write the results table.

    Finished trials are skipped and their files left untouched; unfinished ones resume from their last
    checkpoint; a failed trial is retried up to `spec.retries` times. Ctrl-C (KeyboardInterrupt) stops the
    running trials and keeps everything written so far: running the same command again goes on from there."""
    out = out.resolve()  # the tasks may run in other folders, or on other machines sharing this one
    states = plan(spec, out)
    report = SweepReport(skipped=[n for n, s in states.items() if s.state == "done"])
    todo = [t for t in spec.trials if states[t.name].state != "done"]
    live = LiveView(spec, len(todo), enabled=view)
    live.line(
        f"sweep {spec.name}: {len(spec.trials)} trials, {len(report.skipped)} finished before (kept as they are), "
        f"{len(todo)} to run ({sum(states[t.name].state == 'partial' for t in todo)} resume from a checkpoint) -> {out}"
    )
    started, driving = False, False
    try:
        if todo:
            ray = import_ray()
            started = start_ray(ray, address)
            check_resources(ray, spec)
            driving = True
            _drive(ray, spec, out, todo, data_root, report, live, on_event)
    except KeyboardInterrupt:
        report.interrupted = True
        live.line("interrupted: finished trials are kept, unfinished ones resume when the same sweep runs again")
    finally:
        live.close()
        if driving or not todo:  # a sweep refused before it started writes nothing
            report.results = write_results(collect_results(spec, out, report.failed), out)
        if started:
            import_ray().shutdown()
    return report


def _drive(
    ray: ModuleType,
    spec: SweepSpec,
    out: Path,
    todo: list[Trial],
    data_root: Path | None,
    report: SweepReport,
    live: LiveView,
    on_event: Callable[[Event], None] | None,
) -> None:
    board = ray.remote(num_cpus=0)(Board).remote()
    task = ray.remote(remote_trial).options(
        num_cpus=spec.resources.threads, num_gpus=spec.resources.gpu, max_retries=0, retry_exceptions=False
    )
    running: dict[Any, Trial] = {}

    def submit(trial: Trial) -> None:
        report.attempts[trial.name] = report.attempts.get(trial.name, 0) + 1
        board.forget.remote(trial.name)
        running[task.remote(trial, spec, out, data_root, board)] = trial

    def tell(event: Event) -> None:
        live.line(event.text)
        if on_event is not None:
            on_event(event)

    for trial in todo:
        submit(trial)
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                trial = running.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as err:
                    reason = failure_reason(ray, err)
                    attempt = report.attempts[trial.name]
                    if attempt <= spec.retries:
                        tell(Event("retry", trial.name, f"{trial.name} failed (attempt {attempt}): {reason}; retrying"))
                        submit(trial)
                    else:
                        report.failed[trial.name] = reason
                        tell(Event("failed", trial.name, f"{trial.name} failed after {attempt} attempts: {reason}"))
                    continue
                report.done.append(trial.name)
                if not trial_path(out, trial).exists():
                    live.line(
                        f"warning: {trial_path(out, trial)} is not here: --out must be on storage all nodes share"
                    )
                tell(Event("done", trial.name, describe(outcome)))
            snapshot = ray.get(board.snapshot.remote())
            names = {t.name for t in running.values()}
            progress = {n: p.overall for n, p in snapshot.items() if n in names}
            live.update(len(report.done), progress, len(names) - len(progress), len(report.failed))
    finally:
        for ref in running:  # Ctrl-C, or an error of the driver: stop what still runs
            ray.cancel(ref, force=True)
        ray.kill(board)
