"""The command line's options: `train` and `eval` built from the fields of TrainConfig and EvalSettings
(cli.options), so their defaults are the configs' own. Parsing imports no torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import settings
from ..core.config import METHODS, method_name
from ..errors import SettingError
from ..evaluation.evaluate import EvalSettings
from ..training.config import TrainConfig, check_device_name
from .options import add_field_options, positive_number, whole_number

EPILOG = """examples:
  python -m iwavb train --data toy --method avb --latent 2 --steps 3000
  python -m iwavb train --data mnist --method iwavb --k 10 --latent 8 --minutes 5
  python -m iwavb train --resume runs/mnist-iwavb-k10-l8-mlp-s0.safetensors --steps 20000
  python -m iwavb info runs/mnist-iwavb-k10-l8-mlp-s0.safetensors
  python -m iwavb eval runs/mnist-iwavb-k10-l8-mlp-s0.safetensors --estimator ais --n-test 100

data sets are read from --data-root (or IWAVB_DATA_ROOT, default ~/.cache/iwavb/datasets) in
torchvision's layout and downloaded there when missing, unless IWAVB_OFFLINE=1."""

TRAIN_FIELDS = (
    "dataset",
    "k",
    "latent_dim",
    "family",
    "contrast",
    "hidden",
    "noise_dim",
    "steps",
    "batch_size",
    "lr",
    "disc_lr",
    "disc_steps",
    "eval_every",
    "seed",
    "device",
    "accelerate",
)
TRAIN_FLAGS = {"dataset": "--data", "latent_dim": "--latent"}
RESUME_FIELDS = ("steps", "device", "accelerate")  # what --resume may change; the rest are the checkpoint's
MAX_OWNER_NAME = 64


def option_flag(field: str) -> str:
    """The command-line flag of a TrainConfig field: --data for dataset, --latent for latent_dim, else --a-b."""
    return TRAIN_FLAGS.get(field, "--" + field.replace("_", "-"))


DEBUG_HELP = "show a traceback instead of a one-line error"
DEFAULT_METHOD = method_name(TrainConfig.q, TrainConfig.k)  # the config's default grid point
EVAL_FIELDS = (
    "estimator",
    "n_test",
    "seed",
    "k",
    "chains",
    "steps",
    "leapfrog",
    "schedule",
    "start",
    "batch_size",
    "device",
)

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


def _threads(text: str) -> int:
    """1 to the cores this process may use: more threads than cores only slow a run down."""
    value, cores = whole_number(text), settings.available_cores()
    if not 1 <= value <= cores:
        raise argparse.ArgumentTypeError(f"must be 1 to {cores} (the CPU cores this process may use), got {value}")
    return value


def _device(text: str) -> str:
    try:
        check_device_name(text)
    except SettingError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _owner_name(text: str) -> str:
    name = text.strip()
    if not 1 <= len(name) <= MAX_OWNER_NAME:
        raise argparse.ArgumentTypeError(f"a name of 1 to {MAX_OWNER_NAME} characters, got {text!r}")
    return name


def add_run_arguments(p: argparse.ArgumentParser, data_root: bool = False, threads: bool = True) -> None:
    """Where a command runs (train, eval, reproduce, sweep): CPU threads (a sweep's are in its spec) and, where
    data is read, the data folder."""
    if threads:
        p.add_argument(
            "--threads",
            type=_threads,
            default=None,
            help=f"CPU threads, 1 to the cores (default: IWAVB_THREADS, else {settings.DEFAULT_THREADS})",
        )
    if data_root:
        p.add_argument(
            "--data-root", type=Path, default=None, help="folder of the data sets (overrides IWAVB_DATA_ROOT)"
        )


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train VAE, IWAE, AVB or IWAVB and save a checkpoint",
        epilog=EPILOG,
        description="Train one of the four methods: VAE and IWAE use a Gaussian q, AVB and IWAVB an implicit q "
        "with a discriminator; IWAE and IWAVB average K importance samples in the bound.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        help=f"vae, iwae (Gaussian q); avb, iwavb (implicit q) (default: {DEFAULT_METHOD})",
    )
    add_field_options(p, TrainConfig, TRAIN_FIELDS, TRAIN_FLAGS)
    p.add_argument(
        "--minutes", type=positive_number, default=None, help="also stop after this many minutes of training"
    )
    add_run_arguments(p, data_root=True)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint path, which must not exist yet (default: runs/<data>-<method>-k<K>-..., with -2, -3, "
        "... when taken)",
    )
    p.add_argument(
        "--owner",
        type=_owner_name,
        default=None,
        help="a name: the app lets a session that chose this name delete the run (no login: anyone may choose it)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="continue a checkpoint's run: its settings are kept, --steps sets a new total",
    )
    p.set_defaults(command="train")


def add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show a checkpoint's settings, training and results",
        description="Print what a checkpoint holds, read from its header (fast, loads no weights).",
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--json", action="store_true", help="print the metadata as JSON (history included)")
    p.set_defaults(command="info")


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="estimate a checkpoint's test log-likelihood (IS, AIS or exact)",
        description="Estimate test NLL with its standard error and save it beside the checkpoint.",
        epilog=EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", type=Path)
    add_field_options(p, EvalSettings, EVAL_FIELDS)
    add_run_arguments(p, data_root=True)
    p.add_argument("--no-save", action="store_true", help="print the result without writing the .eval.json file")
    p.set_defaults(command="eval")


def add_reproduce_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="regenerate shipped checkpoints from pretrained/manifest.json",
        description="Train a manifest entry from scratch with its recorded configuration, write it "
        "to pretrained/ (float16 weights), evaluate its test NLL as the manifest says, and record "
        "steps, time, hardware and NLL in the manifest.",
    )
    p.add_argument("names", nargs="*", help="entries to regenerate (see --list)")
    p.add_argument("--all", action="store_true", help="every entry of the manifest")
    p.add_argument("--list", action="store_true", help="list the entries and what they achieved")
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep files that exist (and their saved evaluations); train and evaluate the rest",
    )
    p.add_argument("--skip-eval", action="store_true", help="train only")
    p.add_argument("--device", type=_device, default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    add_run_arguments(p)
    p.set_defaults(command="reproduce")


def add_results_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="write RESULTS.md: the shipped checkpoints beside the paper's Table 1")
    p.add_argument("--out", type=Path, default=Path("RESULTS.md"), help="Markdown file (default: RESULTS.md)")
    p.set_defaults(command="results")


def add_previews_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "previews",
        help="write pretrained/previews.npz: test images the app shows offline",
        description="Store 256 test images of each image data set (from the data root) beside the "
        "shipped checkpoints, so that the app can show them on a machine without the data sets.",
    )
    add_run_arguments(p, data_root=True)
    p.set_defaults(command="previews")


SWEEP_EPILOG = """examples:
  python -m iwavb sweep tiny                      # a local Ray on this machine's cores (and GPUs)
  python -m iwavb sweep table1 --plan             # the trials and what is already done; nothing runs
  python -m iwavb sweep table1 --address HOST:6379 --out /shared/sweeps/table1   # on a Ray cluster
  python -m iwavb sweep my-grid.toml              # a spec of your own (see iwavb/sweep/spec.py)

Run it again to go on: finished trials are kept as they are, unfinished ones resume from their last
checkpoint. The results (Table 1's shape) are written to results.md and results.json in --out."""


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of trials (the paper's Table 1, or a spec of your own) on Ray",
        description="Train and evaluate every trial of a sweep spec on Ray (a local Ray unless --address or "
        "RAY_ADDRESS names a cluster), then write the results in the shape of the paper's Table 1.",
        epilog=SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", nargs="?", help="a shipped spec (table1, table1-short, tiny) or a spec file (.toml)")
    p.add_argument("--list", action="store_true", help="list the shipped specs")
    p.add_argument("--plan", action="store_true", help="show the trials and their state; run nothing")
    p.add_argument(
        "--out", type=Path, default=None, help="the sweep's folder (default: <runs folder>/sweeps/<spec name>)"
    )
    p.add_argument(
        "--address",
        default=None,
        help="a Ray cluster to run on, HOST:PORT (default: RAY_ADDRESS, else a local Ray on this machine)",
    )
    add_run_arguments(p, data_root=True, threads=False)
    p.set_defaults(command="sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iwavb",
        description="IWAVB Lab: train and inspect VAE, IWAE, AVB and IWAVB models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show a traceback instead of a one-line error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        add_train_parser,
        add_info_parser,
        add_eval_parser,
        add_reproduce_parser,
        add_results_parser,
        add_previews_parser,
        add_sweep_parser,
    ):
        add(sub)
    for command in sub.choices.values():  # `iwavb train ... --debug` as well as `iwavb --debug train ...`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser
