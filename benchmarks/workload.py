"""What is trained while it is timed: the data set (or random images of its shape) and the shared options."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from iwavb.data.loading import DataError, load_dataset
from iwavb.data.splits import DataSplits, Split

SYNTHETIC_IMAGES = 10_000  # random images stand in when a data set's files are missing: speed is the same


def benchmark_data(name: str, data_root: Path | None) -> tuple[DataSplits, str]:
    """The data set by name and a note for the report; random uint8 images of its shape when it is missing."""
    try:
        return load_dataset(name, data_root=data_root, allow_download=False), f"{name} (real data)"
    except DataError as err:
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (SYNTHETIC_IMAGES, 784), dtype=torch.uint8, generator=generator)
        split = Split(images, torch.zeros(SYNTHETIC_IMAGES, dtype=torch.long))
        note = f"random images of {name}'s shape ({err})"
        return DataSplits(name, split, split, split, ("none",)), note


def add_workload_arguments(p: argparse.ArgumentParser) -> None:
    """Options that this project's run and pythae's run must share so that they time the same work."""
    p.add_argument(
        "--data",
        default="mnist",
        choices=("mnist", "fashion", "omniglot", "toy"),
        help="data set (default: mnist; random images of its shape when its files are missing)",
    )
    p.add_argument("--data-root", type=Path, default=None, help="folder of the data sets (default: IWAVB_DATA_ROOT)")
    p.add_argument("--batch", type=int, default=128, help="batch size (default: 128)")
    p.add_argument("--latent", type=int, default=8, help="latent size l (default: 8)")
    p.add_argument("--hidden", type=int, default=None, help="mlp width (default: the project's, 300; toy 64)")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per case (default: 3)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: IWAVB_THREADS or all cores)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")


def parse_k_list(text: str) -> tuple[int, ...]:
    """'1,5,10' -> (1, 5, 10), with a clear message for anything else."""
    try:
        ks = tuple(int(k) for k in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"K must be a comma-separated list of integers, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"every K must be >= 1, got {text!r}")
    return ks
