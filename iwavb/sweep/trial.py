"""One trial of a sweep, without Ray: train (or resume) to its budget, save its checkpoint, evaluate it.

A trial's files are `<out>/trials/<name>.safetensors` and its `.eval.json` beside it, written by the project's
own code (Trainer.save, evaluate_checkpoint), so `python -m iwavb info`, `eval` and the app read them as any
run. They are also the sweep's memory: a trial whose checkpoint has spent its budget and holds the spec's
estimate is finished and is never written again; one whose checkpoint stopped short resumes from it. Files
that hold other settings than the spec's are refused, never replaced.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from ..data.loading import load_dataset
from ..evaluation.evaluate import EvalError, EvalResult, EvalSettings, evaluate_checkpoint, read_eval_results
from ..evaluation.evaluate import same_estimate as same_evaluation
from ..training.checkpoint import CheckpointError, load_checkpoint, read_metadata
from ..training.config import TrainConfig
from ..training.device import configure_cpu_threads
from ..training.runs import SUFFIX
from ..training.trainer import Trainer
from .spec import Budget, SweepError, SweepSpec, Trial

State = Literal["new", "partial", "trained", "done"]  # no file; training to go on; evaluation to run; finished
Report = Callable[[str, float], None]  # (phase: "train" or "eval", fraction of that phase done)
RUN_ONLY = ("device",)  # training settings that do not change the run


def trial_path(out: Path, trial: Trial) -> Path:
    return out / "trials" / f"{trial.name}{SUFFIX}"


def _same_training(saved: TrainConfig, wanted: TrainConfig) -> list[str]:
    """The settings in which a saved run differs from the wanted one ([] when it is the same run)."""
    a, b = saved.to_dict(), wanted.to_dict()
    return [f"{k} {a.get(k)!r} there, {b.get(k)!r} in the spec" for k in b if k not in RUN_ONLY and a.get(k) != b[k]]


def _matching_estimate(results: list[EvalResult], wanted: EvalSettings, step: int) -> EvalResult | None:
    settings = dataclasses.asdict(wanted)
    return next((r for r in results if same_evaluation(r.settings, settings) and r.checkpoint_step == step), None)


@dataclass(frozen=True)
class TrialFiles:
    """What a trial's files say: its state, and for a trained run its step, training time and device."""

    state: State
    step: int = 0
    train_seconds: float = 0.0
    device: str = ""
    estimate: EvalResult | None = None  # the spec's estimate, when it is there


def read_trial(out: Path, trial: Trial, budget: Budget, evaluation: EvalSettings) -> TrialFiles:
    """The state of a trial from its files; a SweepError when they hold another run or another estimate."""
    path = trial_path(out, trial)
    if not path.exists():
        return TrialFiles("new")
    keep = "give the sweep another --out, or move the file away; nothing was changed"
    try:
        meta = read_metadata(path)  # checked whole: its config is a TrainConfig
    except CheckpointError as err:
        raise SweepError(f"{path} cannot be resumed ({err}): {keep}") from None
    differences = _same_training(meta.config, trial.config)
    if differences:
        raise SweepError(f"{path} holds a run with other settings ({'; '.join(differences)}): {keep}")
    step, seconds = meta.step, meta.train_seconds
    files = TrialFiles("partial", step, seconds, meta.device)
    if not budget.spent(step, seconds):
        return files
    try:
        results = read_eval_results(path)
    except EvalError as err:
        raise SweepError(f"{err}: {keep}") from None
    estimate = _matching_estimate(results, evaluation, step)
    if estimate is not None:
        return replace(files, state="done", estimate=estimate)
    other = next((r for r in results if r.estimator == evaluation.resolved_estimator(meta.config.model_config())), None)
    if other is not None:  # evaluating again would replace that estimate
        raise SweepError(
            f"{path}: its {other.estimator} estimate was made with other settings or at another step "
            f"(step {other.checkpoint_step}, {other.n_images} images, seed {other.settings.get('seed')}): {keep}"
        )
    return replace(files, state="trained")


@dataclass(frozen=True)
class TrialOutcome:
    """What a trial run did, for the sweep's view."""

    name: str
    nll: float
    nll_se: float | None
    step: int
    train_seconds: float
    device: str
    resumed_from: int | None  # the step it went on from, None for a run from scratch or one only evaluated


def _train(trainer: Trainer, path: Path, budget: Budget, report: Report | None) -> None:
    """Train to the budget, saving the checkpoint at every validation and at the end; a NaN raises
    TrainingDiverged, leaving the last checkpoint as it was."""
    for record in trainer.run():
        fraction = record.step / trainer.config.steps
        if budget.minutes is not None:
            fraction = max(fraction, trainer.elapsed_s / (60 * budget.minutes))
        if report is not None:
            report("train", min(fraction, 1.0))
        if record.valid_bound is not None:
            trainer.save(path)
        if budget.spent(trainer.step, trainer.elapsed_s):
            trainer.stop()
    trainer.save(path)


def run_trial(
    trial: Trial, spec: SweepSpec, out: Path, report: Report | None = None, data_root: Path | None = None
) -> TrialOutcome:
    """Bring one trial to done: train (or go on from its checkpoint), then evaluate; its files say where it is."""
    configure_cpu_threads(spec.resources.threads)
    files = read_trial(out, trial, spec.budget, spec.evaluation)
    path = trial_path(out, trial)
    if files.state == "done":
        raise SweepError(f"{trial.name} is finished: its files are kept as they are")
    data = load_dataset(trial.config.dataset, data_root=data_root)
    resumed = files.step if files.state == "partial" and files.step > 0 else None
    if files.state in ("new", "partial"):
        if files.state == "partial":  # the sweep's own file (read_trial checked its settings): go on in it
            checkpoint = load_checkpoint(path)
            trainer = Trainer.from_checkpoint(checkpoint, device=trial.config.device, data=data, continue_file=True)
        else:
            trainer = Trainer(trial.config, data=data)
        _train(trainer, path, spec.budget, report)

    def progress(fraction: float) -> None:
        if report is not None:
            report("eval", fraction)

    result = evaluate_checkpoint(path, spec.evaluation, data=data, progress=progress)
    meta = read_metadata(path)
    return TrialOutcome(
        trial.name,
        result.nll,
        result.nll_se,
        meta.step,
        meta.train_seconds,
        meta.device,
        resumed,
    )


def describe(outcome: TrialOutcome) -> str:
    se = f" ± {outcome.nll_se:.2f}" if outcome.nll_se is not None else ""
    resumed = f", resumed from step {outcome.resumed_from:,}" if outcome.resumed_from is not None else ""
    return (
        f"{outcome.name}: test NLL {outcome.nll:.2f}{se} nats after {outcome.step:,} steps "
        f"({outcome.train_seconds:.0f} s of training on {outcome.device}{resumed})"
    )
