"""What each command of the CLI does, once its options are parsed (cli.parser, main in cli/__init__.py)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from ..artefacts.pretrained import load_manifest, write_previews
from ..artefacts.reproduce import reproduce
from ..artefacts.results import write_results
from ..core.config import objective_label
from ..data.loading import load_dataset
from ..evaluation.evaluate import EvalError, EvalSettings, eval_path, evaluation_count, read_eval_results
from ..evaluation.progress import evaluate_with_progress
from ..evaluation.truth import truth_probe
from ..files import file_signature
from ..sweep.spec import load_spec, shipped_summary
from ..sweep.table import evaluation_words, sweep_folder
from ..training.checkpoint import CheckpointError, load_checkpoint, read_metadata
from ..training.config import CONV_ON_CPU, TrainConfig
from ..training.device import configure_cpu_threads, device_description, resolve_device
from ..training.memory import gb
from ..training.progress import INTERRUPTED, train_with_progress
from ..training.records import last_validation
from ..training.resources import check_training_fits
from ..training.runs import default_run_path, owner_tag, save_run
from ..training.trainer import Trainer
from .options import given
from .parser import DEFAULT_METHOD, RESUME_FIELDS, option_flag


def run(args: argparse.Namespace) -> int:
    return {
        "train": train,
        "info": info,
        "eval": evaluate,
        "reproduce": reproduce_entries,
        "results": results,
        "previews": previews,
        "sweep": sweep,
    }[args.command](args)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of the options given; the rest are TrainConfig's defaults."""
    settings = given(args, TrainConfig)
    return TrainConfig.for_method(args.method or DEFAULT_METHOD, k=settings.pop("k", None), **settings)


def _resume_trainer(args: argparse.Namespace) -> Trainer:
    fixed = sorted(set(given(args, TrainConfig)) - set(RESUME_FIELDS)) + (["method"] if args.method else [])
    if fixed:
        options = ", ".join(option_flag(name) for name in fixed)
        raise ValueError(
            f"--resume keeps the checkpoint's settings; {options} cannot change them "
            f"(only {', '.join(option_flag(f) for f in RESUME_FIELDS)} can)"
        )
    checkpoint = load_checkpoint(args.resume)
    config = replace(checkpoint.config, steps=getattr(args, "steps", checkpoint.config.steps))
    check_training_fits(config, resolve_device(getattr(args, "device", "auto")))  # before the data are loaded
    data = load_dataset(checkpoint.config.dataset, data_root=args.data_root)
    return Trainer.from_checkpoint(
        checkpoint,
        steps=getattr(args, "steps", None),
        device=getattr(args, "device", "auto"),
        data=data,
        accelerate=getattr(args, "accelerate", "auto"),
        continue_file=args.out is None,  # it goes on in its own file
        truth=truth_probe(checkpoint.config, data),
    )


def _free_out(args: argparse.Namespace) -> None:
    """--out names a file that does not exist yet: a run never replaces another."""
    if args.out is not None and file_signature(args.out) is not None:
        kind = "a folder" if args.out.is_dir() else "a file"
        raise ValueError(f"--out {args.out}: {kind} of that name exists; choose another name (or delete it first)")


def train(args: argparse.Namespace) -> int:
    configure_cpu_threads(args.threads)
    _free_out(args)
    owner = owner_tag("name", args.owner) if args.owner else None
    if args.resume is not None:
        trainer = _resume_trainer(args)
        out = args.out or args.resume
    else:
        config = build_config(args)
        check_training_fits(config, resolve_device(config.device))  # before the data are loaded
        data = load_dataset(config.dataset, data_root=args.data_root)
        trainer = Trainer(config, data=data, truth=truth_probe(config, data))
        out = args.out or default_run_path(config)
    cfg = trainer.config
    print(
        f"{cfg.title} on {cfg.dataset}: K={cfg.k}, l={cfg.latent_dim}, {cfg.family}, "
        f"lr {cfg.lr:g}/{cfg.disc_lr:g}, on {device_description(trainer.device)} ({trainer.accelerate}), "
        f"{gb(trainer.memory.total)} estimated -> {out}"
    )
    if cfg.family == "conv" and trainer.device.type == "cpu":
        print(f"warning: {CONV_ON_CPU}; --family mlp trains live on a CPU", file=sys.stderr)
    written: list[Path] = []

    def save() -> None:  # at every validation, and at the end: the file this run took, or a free name
        written.append(save_run(trainer, written[-1] if written else out, owner))

    status = train_with_progress(trainer, save, args.minutes)
    if not trainer.trained:
        print(f"nothing was trained (still at step {trainer.step}): nothing was written", file=sys.stderr)
        return status
    save()
    valid = last_validation(trainer.history)
    print(
        f"saved {written[-1]} at step {trainer.step} after {trainer.elapsed_s:.0f} s of training"
        + (f"; validation {objective_label(cfg.q)} {valid:.2f} nats" if valid is not None else "")
    )
    if written[-1] != out:
        print(f"note: {out} holds another run, so this one went to {written[-1]}", file=sys.stderr)
    return status


def info(args: argparse.Namespace) -> int:
    meta = read_metadata(args.checkpoint)
    if args.json:
        print(json.dumps(meta.to_json(), indent=2))
        return 0
    cfg = meta.config
    print(
        f"{args.checkpoint}\n  {cfg.title} (q {cfg.q}, K={cfg.k}) on {cfg.dataset}, l={cfg.latent_dim}, "
        f"{cfg.family} family"
    )
    print(
        f"  step {meta.step} of {cfg.steps}, {meta.train_seconds:.0f} s on {meta.device}, "
        f"library {meta.library_version}, written {meta.created}"
    )
    history = meta.history
    if history:
        valid = [r for r in history if r.valid_bound is not None]
        print(
            f"  last train bound {history[-1].train_bound:.2f}"
            + (f", validation {valid[-1].valid_bound:.2f} at step {valid[-1].step}" if valid else "")
            + (" (objective uses T)" if cfg.q == "implicit" else "")
        )
    try:
        load_checkpoint(args.checkpoint)
        print("  weights: complete and finite")
    except CheckpointError as err:  # the header is fine: say what is wrong with the rest, not fatal
        print(f"  weights: {err}")
    try:
        for r in read_eval_results(args.checkpoint):
            stale = (
                f" [evaluated at step {r.checkpoint_step}; the checkpoint is now at step {meta.step}]"
                if r.checkpoint_step != meta.step
                else ""
            )
            print(f"  {r.summary()}; seed {r.settings.get('seed')}, {r.created}{stale}")
    except EvalError as err:  # an unreadable evaluation file is reported, not fatal
        print(f"  evaluation: {err}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    configure_cpu_threads(args.threads)
    settings = EvalSettings(**given(args, EvalSettings))
    cfg = load_checkpoint(args.checkpoint).config  # a file that cannot be evaluated says so before data load
    data = load_dataset(cfg.dataset, data_root=args.data_root)
    n = evaluation_count(data, settings.n_test)
    estimator = settings.resolved_estimator(cfg.model_config())
    print(
        f"{cfg.title} on {cfg.dataset}, l={cfg.latent_dim}: {estimator} on {n} test images "
        f"(seed {settings.seed}); cost: {settings.cost(estimator)}"
    )
    result = evaluate_with_progress(args.checkpoint, settings, data, write=not args.no_save)
    print(result.summary())
    if not args.no_save:
        print(f"saved {eval_path(args.checkpoint)}")
    return 0


def reproduce_entries(args: argparse.Namespace) -> int:
    entries = load_manifest()
    if args.list or not (args.names or args.all):
        for e in entries:
            done = f"NLL {e.result.nll[0].nll:.2f} ({e.result.nll[0].estimator})" if e.result.nll else "not evaluated"
            print(f"{e.name:24s} {e.config.steps:>6} steps  {done:28s} {e.description}")
        return 0
    configure_cpu_threads(args.threads)
    reproduce([e.name for e in entries] if args.all else args.names, args.device, args.skip_existing, args.skip_eval)
    return 0


def results(args: argparse.Namespace) -> int:
    print(f"wrote {write_results(load_manifest(), args.out)}")
    return 0


def previews(args: argparse.Namespace) -> int:
    print(f"wrote {write_previews(data_root=args.data_root)}")
    return 0


def sweep(args: argparse.Namespace) -> int:
    from ..sweep.engine import plan, run_sweep  # imports Ray only when a sweep runs

    if args.list or args.spec is None:
        for name, description, problem in shipped_summary():
            print(f"{name:14s} {description}" + (f"\n{'':14s} cannot run here{problem}" if problem else ""))
        return 0
    spec = load_spec(args.spec)
    out = args.out or sweep_folder(spec.name)
    if args.plan:
        states = plan(spec, out)
        for trial in spec.trials:
            files = states[trial.name]
            step = f" (step {files.step:,})" if files.state != "new" else ""
            print(f"{trial.name:40s} {files.state}{step}")
        print(
            f"{len(spec.trials)} trials, budget {spec.budget.describe()} each; evaluation: {evaluation_words(spec)}; "
            f"{spec.resources.threads} CPU thread(s) and {spec.resources.gpu:g} GPU per trial -> {out}"
        )
        return 0
    report = run_sweep(spec, out, args.address, args.data_root)
    if report.results is not None:
        print(f"wrote {report.results[0]} and {report.results[1]}")
    if report.interrupted:
        return INTERRUPTED
    return 1 if report.failed else 0
