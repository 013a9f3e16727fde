"""What each command of the CLI does, once its options are parsed (cli.parser, main in cli/__init__.py)."""

from __future__ import annotations

import argparse
import json
import sys

from ..artefacts.pretrained import load_manifest, write_previews
from ..artefacts.reproduce import reproduce
from ..artefacts.results import write_results
from ..core.config import objective_label
from ..data.loading import load_dataset
from ..evaluation.evaluate import EvalError, EvalSettings, eval_path, evaluation_count, read_eval_results
from ..evaluation.progress import evaluate_with_progress
from ..evaluation.truth import truth_probe
from ..training.checkpoint import load_checkpoint, read_metadata
from ..training.config import CONV_ON_CPU, TrainConfig
from ..training.device import configure_cpu_threads, device_description
from ..training.progress import train_with_progress
from ..training.records import Record, last_validation
from ..training.runs import default_run_path
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
    data = load_dataset(checkpoint.config.dataset, data_root=args.data_root)
    return Trainer.from_checkpoint(
        checkpoint,
        steps=getattr(args, "steps", None),
        device=getattr(args, "device", "auto"),
        data=data,
        truth=truth_probe(checkpoint.config, data),
    )


def train(args: argparse.Namespace) -> int:
    configure_cpu_threads(args.threads)
    if args.resume is not None:
        trainer = _resume_trainer(args)
        out = args.out or args.resume
    else:
        config = build_config(args)
        data = load_dataset(config.dataset, data_root=args.data_root)
        trainer = Trainer(config, data=data, truth=truth_probe(config, data))
        out = args.out or default_run_path(config)
    cfg = trainer.config
    print(
        f"{cfg.method.upper()} on {cfg.dataset}: K={cfg.k}, l={cfg.latent_dim}, {cfg.family}, "
        f"lr {cfg.lr:g}/{cfg.disc_lr:g}, on {device_description(trainer.device)} -> {out}"
    )
    if cfg.family == "conv" and trainer.device.type == "cpu":
        print(f"warning: {CONV_ON_CPU}; --family mlp trains live on a CPU", file=sys.stderr)
    status = train_with_progress(trainer, out, args.minutes)
    trainer.save(out)
    valid = last_validation(trainer.history)
    print(
        f"saved {out} at step {trainer.step} after {trainer.elapsed_s:.0f} s of training"
        + (f"; validation {objective_label(cfg.q)} {valid:.2f} nats" if valid is not None else "")
    )
    return status


def info(args: argparse.Namespace) -> int:
    meta = read_metadata(args.checkpoint)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    cfg = TrainConfig.from_dict(meta["config"])
    history = [Record(**r) for r in meta.get("history", [])]
    print(
        f"{args.checkpoint}\n  {cfg.method.upper()} (q {cfg.q}, K={cfg.k}) on {cfg.dataset}, l={cfg.latent_dim}, "
        f"{cfg.family} family"
    )
    print(
        f"  step {meta.get('step')} of {cfg.steps}, {meta.get('train_seconds', 0):.0f} s on {meta.get('device', '?')}, "
        f"library {meta.get('library_version')}, written {meta.get('created')}"
    )
    if history:
        valid = [r for r in history if r.valid_bound is not None]
        print(
            f"  last train bound {history[-1].train_bound:.2f}"
            + (f", validation {valid[-1].valid_bound:.2f} at step {valid[-1].step}" if valid else "")
            + (" (objective uses T)" if cfg.q == "implicit" else "")
        )
    try:
        for r in read_eval_results(args.checkpoint):
            stale = (
                f" [evaluated at step {r.checkpoint_step}; the checkpoint is now at step {meta.get('step')}]"
                if r.checkpoint_step != meta.get("step")
                else ""
            )
            print(f"  {r.summary()}; seed {r.settings.get('seed')}, {r.created}{stale}")
    except EvalError as err:  # an unreadable evaluation file is reported, not fatal
        print(f"  evaluation: {err}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    configure_cpu_threads(args.threads)
    settings = EvalSettings(**given(args, EvalSettings))
    cfg = TrainConfig.from_dict(read_metadata(args.checkpoint)["config"])
    data = load_dataset(cfg.dataset, data_root=args.data_root)
    n = evaluation_count(data, settings.n_test)
    estimator = settings.resolved_estimator(cfg.model_config())
    print(
        f"{cfg.method.upper()} on {cfg.dataset}, l={cfg.latent_dim}: {estimator} on {n} test images "
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
