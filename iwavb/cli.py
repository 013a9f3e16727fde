"""Command line: `python -m iwavb train|info|eval ...` (run `python -m iwavb COMMAND --help`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import (CONV_ON_CPU, DATASETS, ESTIMATORS, FAMILIES, METHODS, SCHEDULES, STARTS, TrainConfig,
                     objective_label)

EPILOG = """examples:
  python -m iwavb train --data toy --method avb --latent 2 --steps 3000
  python -m iwavb train --data mnist --method iwavb --k 10 --latent 8 --minutes 5
  python -m iwavb train --resume runs/mnist-iwavb-k10-l8-mlp-s0.safetensors --steps 20000
  python -m iwavb info runs/mnist-iwavb-k10-l8-mlp-s0.safetensors
  python -m iwavb eval runs/mnist-iwavb-k10-l8-mlp-s0.safetensors --estimator ais --n-test 100

data sets are read from --data-root (or IWAVB_DATA_ROOT, default ~/.cache/iwavb/datasets) in
torchvision's layout and downloaded there when missing, unless IWAVB_OFFLINE=1."""


def add_run_arguments(p: argparse.ArgumentParser, data_root: bool = False) -> None:
    """Where a command runs (shared by train, eval and reproduce): device, CPU threads, and the data folder."""
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: IWAVB_THREADS or all cores)")
    if data_root:
        p.add_argument("--data-root", type=Path, default=None,
                       help="folder of the data sets (overrides IWAVB_DATA_ROOT)")


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train VAE, IWAE, AVB or IWAVB and save a checkpoint",
        description="Train one of the four methods: VAE and IWAE use a Gaussian q, AVB and IWAVB an implicit q "
        "with a discriminator; IWAE and IWAVB average K importance samples in the bound.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", choices=DATASETS, default="mnist", help="data set (default: mnist; toy needs no files)")
    p.add_argument("--method", choices=METHODS, default="iwavb", help="vae, iwae, avb or iwavb (default: iwavb)")
    p.add_argument("--k", type=int, default=None, help="importance samples K (vae/avb: 1; iwae/iwavb default 10)")
    p.add_argument("--latent", type=int, default=8, help="latent size l (default: 8; 2 draws true posteriors)")
    p.add_argument("--family", choices=FAMILIES, default="mlp",
                   help="networks: mlp (fast on a CPU, default) or conv (the paper's AVB networks; needs a GPU)")
    p.add_argument("--hidden", type=int, default=None, help="width of the mlp layers (default: 300; toy 64)")
    p.add_argument("--noise-dim", type=int, default=None,
                   help="noise size of the implicit q (default: 32 as in the paper; toy 64 as in AVB)")
    p.add_argument("--steps", type=int, default=None,
                   help="total training steps (default: 10000; with --resume, the checkpoint's total)")
    p.add_argument("--minutes", type=float, default=None, help="also stop after this many minutes of training")
    p.add_argument("--batch-size", type=int, default=128, help="minibatch size (default: 128)")
    p.add_argument("--lr", type=float, default=None, help="Adam rate of decoder and q (default: by family, see README)")
    p.add_argument("--disc-lr", type=float, default=None, help="Adam rate of the discriminator T")
    p.add_argument("--disc-steps", type=int, default=1, help="discriminator updates per model update (default: 1)")
    p.add_argument("--eval-every", type=int, default=500, help="steps between validation bounds (default: 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_run_arguments(p, data_root=True)
    p.add_argument("--out", type=Path, default=None, help="checkpoint path (default: runs/<data>-<method>-k<K>-...)")
    p.add_argument("--resume", type=Path, default=None, help="continue a checkpoint's run (its settings are kept)")
    p.set_defaults(handler=run_train)


def build_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig.for_method(
        args.method, k=args.k, dataset=args.data, latent_dim=args.latent, family=args.family, hidden=args.hidden,
        noise_dim=args.noise_dim, steps=args.steps or 10_000, batch_size=args.batch_size, lr=args.lr,
        disc_lr=args.disc_lr, disc_steps=args.disc_steps, eval_every=args.eval_every, seed=args.seed,
        device=args.device,
    )


def run_train(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .console import train_with_progress
    from .data import load_dataset
    from .device import configure_cpu_threads, device_description
    from .runs import default_run_path
    from .trainer import Trainer, last_validation

    configure_cpu_threads(args.threads)
    if args.resume is not None:
        checkpoint = load_checkpoint(args.resume)
        data = load_dataset(checkpoint.config.dataset, data_root=args.data_root)
        trainer = Trainer.from_checkpoint(checkpoint, steps=args.steps, device=args.device, data=data)
        out = args.out or args.resume
    else:
        config = build_config(args)
        trainer = Trainer(config, data=load_dataset(config.dataset, data_root=args.data_root))
        out = args.out or default_run_path(config)
    cfg = trainer.config
    print(f"{cfg.method.upper()} on {cfg.dataset}: K={cfg.k}, l={cfg.latent_dim}, {cfg.family}, "
          f"lr {cfg.lr:g}/{cfg.disc_lr:g}, on {device_description(trainer.device)} -> {out}")
    if cfg.family == "conv" and trainer.device.type == "cpu":
        print(f"warning: {CONV_ON_CPU}; --family mlp trains live on a CPU", file=sys.stderr)
    status = train_with_progress(trainer, out, args.minutes)
    trainer.save(out)
    valid = last_validation(trainer.history)
    print(f"saved {out} at step {trainer.step} after {trainer.elapsed_s:.0f} s of training"
          + (f"; validation {objective_label(cfg.q)} {valid:.2f} nats" if valid is not None else ""))
    return status


def add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show a checkpoint's settings, training and results",
                       description="Print what a checkpoint holds, read from its header (fast, loads no weights).")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--json", action="store_true", help="print the metadata as JSON (history included)")
    p.set_defaults(handler=run_info)


def run_info(args: argparse.Namespace) -> int:
    from .checkpoint import read_metadata

    meta = read_metadata(args.checkpoint)
    if args.json:
        print(json.dumps(meta, indent=2))
        return 0
    cfg = TrainConfig.from_dict(meta["config"])
    history = meta.get("history", [])
    print(f"{args.checkpoint}\n  {cfg.method.upper()} (q {cfg.q}, K={cfg.k}) on {cfg.dataset}, l={cfg.latent_dim}, "
          f"{cfg.family} family")
    print(f"  step {meta.get('step')} of {cfg.steps}, {meta.get('train_seconds', 0):.0f} s on {meta.get('device', '?')}, "
          f"library {meta.get('library_version')}, written {meta.get('created')}")
    if history:
        last = history[-1]
        valid = [r for r in history if r.get("valid_bound") is not None]
        print(f"  last train bound {last['train_bound']:.2f}"
              + (f", validation {valid[-1]['valid_bound']:.2f} at step {valid[-1]['step']}" if valid else "")
              + (" (objective uses T)" if cfg.q == "implicit" else ""))
    print_eval_results(args.checkpoint, meta.get("step"))
    return 0


def print_eval_results(checkpoint: Path, step: int | None) -> None:
    """The test NLLs saved beside a checkpoint by `eval`, if any; an unreadable file is reported, not fatal."""
    from .evaluate import EvalError, read_eval_results

    try:
        results = read_eval_results(checkpoint)
    except EvalError as err:
        print(f"  evaluation: {err}")
        return
    for r in results:
        stale = f" [evaluated at step {r.checkpoint_step}; the checkpoint is now at step {step}]" \
            if r.checkpoint_step != step else ""
        print(f"  {r.summary()}; seed {r.settings.get('seed')}, {r.created}{stale}")


EVAL_EPILOG = """estimators (none uses the discriminator T):
  is    importance sampling with k samples: q itself for a Gaussian q (VAE, IWAE); for an implicit q
        (AVB, IWAVB) a Student-t fitted to q's samples: fast, but a loose bound where q is far from
        Gaussian (3.7 nats below ais on a short AVB run). Cost: k decoder passes per image.
  ais   annealed importance sampling with HMC from the prior, the paper's estimator: chains x steps x
        leapfrog decoder forward+backward passes per image (8 x 1000 x 10 = 80,000 by default, + one
        tuning chain): about 20x the time of is with k = 5000, some 80 minutes per 1,000 MNIST images
        on one CPU thread for an mlp model. Fewer steps cost less and read lower (biased low).
  grid  exact log p(x) by quadrature over z; latent size 2 only.
  auto  grid for l = 2, else is for a Gaussian q and ais for an implicit q.

The test images are a seeded subset of the test split, binarised with the same seed, so results of
different checkpoints are on the same images. The result is saved as <checkpoint stem>.eval.json."""


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="estimate a checkpoint's test log-likelihood (IS, AIS or exact)",
                       description="Estimate test NLL with its standard error and save it beside the checkpoint.",
                       epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--estimator", choices=ESTIMATORS, default="auto",
                   help="is, ais, grid (l = 2) or auto (default; see below)")
    p.add_argument("--k", type=int, default=5_000, help="importance samples per image for is (default: 5000)")
    p.add_argument("--chains", type=int, default=8, help="AIS chains per image (default: 8, the paper's)")
    p.add_argument("--steps", type=int, default=1_000, help="AIS intermediate distributions (default: 1000, the paper's)")
    p.add_argument("--leapfrog", type=int, default=10, help="leapfrog steps per HMC move (default: 10)")
    p.add_argument("--schedule", choices=SCHEDULES, default="sigmoid", help="AIS schedule (default: sigmoid)")
    p.add_argument("--start", choices=STARTS, default="prior",
                   help="AIS start: the prior (default) or q (for an implicit q a Gaussian moment-matched to it)")
    p.add_argument("--n-test", type=int, default=1_000, help="test images, a seeded subset (default: 1000; 0 = all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset, its binarisation and the estimator")
    p.add_argument("--batch-size", type=int, default=100, help="images per batch (default: 100)")
    add_run_arguments(p, data_root=True)
    p.add_argument("--no-save", action="store_true", help="print the result without writing the .eval.json file")
    p.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from .checkpoint import read_metadata
    from .console import evaluate_with_progress
    from .data import load_dataset
    from .device import configure_cpu_threads
    from .evaluate import EvalSettings, eval_path, evaluation_count

    configure_cpu_threads(args.threads)
    settings = EvalSettings(estimator=args.estimator, n_test=args.n_test or None, seed=args.seed, k=args.k,
                            chains=args.chains, steps=args.steps, leapfrog=args.leapfrog, schedule=args.schedule,
                            start=args.start, batch_size=args.batch_size, device=args.device)
    cfg = TrainConfig.from_dict(read_metadata(args.checkpoint)["config"])
    data = load_dataset(cfg.dataset, data_root=args.data_root)
    n = evaluation_count(data, settings.n_test)
    estimator = settings.resolved_estimator(cfg.model_config())
    print(f"{cfg.method.upper()} on {cfg.dataset}, l={cfg.latent_dim}: {estimator} on {n} test images "
          f"(seed {args.seed}); cost: {settings.cost(estimator)}")
    result = evaluate_with_progress(args.checkpoint, settings, data, write=not args.no_save)
    print(result.summary())
    if not args.no_save:
        print(f"saved {eval_path(args.checkpoint)}")
    return 0


def add_reproduce_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="regenerate shipped checkpoints from pretrained/manifest.json",
                       description="Train a manifest entry from scratch with its recorded configuration, write it "
                       "to pretrained/ (float16 weights), evaluate its test NLL as the manifest says, and record "
                       "steps, time, hardware and NLL in the manifest.")
    p.add_argument("names", nargs="*", help="entries to regenerate (see --list)")
    p.add_argument("--all", action="store_true", help="every entry of the manifest")
    p.add_argument("--list", action="store_true", help="list the entries and what they achieved")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep files that exist (and their saved evaluations); train and evaluate the rest")
    p.add_argument("--skip-eval", action="store_true", help="train only")
    add_run_arguments(p)
    p.set_defaults(handler=run_reproduce)


def run_reproduce(args: argparse.Namespace) -> int:
    from .device import configure_cpu_threads
    from .pretrained import load_manifest
    from .reproduce import reproduce

    entries = load_manifest()
    if args.list or not (args.names or args.all):
        for e in entries:
            nll = (e.result.get("nll") or [{}])[0]
            done = f"NLL {nll['nll']:.2f} ({nll['estimator']})" if "nll" in nll else "not evaluated"
            print(f"{e.name:24s} {e.config.steps:>6} steps  {done:28s} {e.description}")
        return 0
    configure_cpu_threads(args.threads)
    reproduce([e.name for e in entries] if args.all else args.names, args.device, args.skip_existing, args.skip_eval)
    return 0


def add_results_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="write RESULTS.md: the shipped checkpoints beside the paper's Table 1")
    p.add_argument("--out", type=Path, default=Path("RESULTS.md"), help="Markdown file (default: RESULTS.md)")
    p.set_defaults(handler=run_results)


def run_results(args: argparse.Namespace) -> int:
    from .pretrained import load_manifest
    from .reproduce import write_results

    print(f"wrote {write_results(load_manifest(), args.out)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iwavb", description="IWAVB Lab: train and inspect VAE, IWAE, "
                                     "AVB and IWAVB models.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (add_train_parser, add_info_parser, add_eval_parser, add_reproduce_parser, add_results_parser):
        add(sub)
    args = parser.parse_args(argv)
    from .checkpoint import CheckpointError
    from .data import DataError

    try:
        return args.handler(args)
    except (CheckpointError, DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
