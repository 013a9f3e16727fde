"""What a sweep costs on paper: FLOPs of its training steps and its evaluation, as GPU-hours and wall time.

    python -m benchmarks.sweep_cost table1
    python -m benchmarks.sweep_cost table1-short --utilisation 0.3 --gpus 1,8,54

For each trial, one training step is counted at a small batch on the CPU (`measure.MatmulFlops`: every
convolution and matrix product from its shapes, forward and backward; all of them scale with the batch,
so the count is scaled to the trial's batch), and the evaluation from the estimator's decoder passes per
image (AIS: chains x distributions x leapfrog forward-and-input-gradient passes, about 2x a forward pass).
FLOPs become seconds at a GPU's peak rates (convolutions on TF32 tensor cores, PyTorch's default for
cuDNN; other products in FP32, its default for matmul) divided by an assumed utilisation: no GPU step time
has been measured yet, so the result is a floor at utilisation 1 and an estimate below it. Wall time on
N GPUs packs the trials longest first, one per GPU (or as many as `gpu` shares allow).
"""

from __future__ import annotations

import argparse
import heapq
import math
import re
from dataclasses import dataclass, replace

import torch
from torch.nn import functional as F

from iwavb.core.model import LatentVariableModel
from iwavb.data.splits import DataSplits, Split
from iwavb.sweep.spec import SweepError, SweepSpec, load_spec, parse_spec, spec_path
from iwavb.training.config import TrainConfig
from iwavb.training.trainer import Trainer

from .measure import MatmulFlops

# NVIDIA H100 SXM5, dense (no sparsity): TF32 tensor cores and FP32, FLOP/s (NVIDIA's data sheet).
H100 = {"tf32": 494.7e12, "fp32": 66.9e12}
COUNT_BATCH = 4  # rows per x at which a step is counted; products scale linearly with the batch
CONVOLUTIONS = (F.conv2d, F.conv_transpose2d)


class SplitFlops(MatmulFlops):
    """MatmulFlops, with the share of convolutions kept apart (they run on TF32 tensor cores by default)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        before = self.flops
        out = super().__torch_function__(func, types, args, kwargs)
        if func in CONVOLUTIONS:
            self.conv += self.flops - before
        return out


@dataclass(frozen=True)
class Flops:
    conv: float
    other: float

    def seconds(self, utilisation: float) -> float:
        return (self.conv / H100["tf32"] + self.other / H100["fp32"]) / utilisation

    def __add__(self, other: Flops) -> Flops:
        return Flops(self.conv + other.conv, self.other + other.other)

    def __mul__(self, n: float) -> Flops:
        return Flops(self.conv * n, self.other * n)


def _random_data(config: TrainConfig) -> DataSplits:
    images = torch.randint(0, 256, (64, config.data_dim), dtype=torch.uint8)
    split = Split(images, torch.zeros(64, dtype=torch.long))
    return DataSplits(config.dataset, split, split, split, ("none",))


def step_flops(config: TrainConfig) -> Flops:
    """FLOPs of one training step of `config` (counted at COUNT_BATCH, scaled to its batch)."""
    small = replace(config, batch_size=COUNT_BATCH, device="cpu")
    trainer = Trainer(small, data=_random_data(small))
    with SplitFlops() as counter:
        trainer.train_step()
    scale = config.batch_size / COUNT_BATCH
    return Flops(counter.conv * scale, (counter.flops - counter.conv) * scale)


def decoder_flops(config: TrainConfig) -> Flops:
    """FLOPs of one decoder forward pass for one latent point."""
    model = LatentVariableModel(config.model_config()).eval()
    with torch.no_grad(), SplitFlops() as counter:
        model.decoder(torch.zeros(1, config.latent_dim))
    return Flops(counter.conv, counter.flops - counter.conv)


def evaluation_flops(spec: SweepSpec, config: TrainConfig, n_images: int) -> Flops:
    e = spec.evaluation
    decoder = decoder_flops(config)
    if e.estimator == "ais":
        return decoder * (2 * e.ais_config().passes_per_image * n_images)
    if e.estimator == "is":
        return decoder * (e.k * n_images)
    return decoder * (e.grid_resolution**2 * n_images)


def load(name: str) -> tuple[SweepSpec, str]:
    """The spec; one that names adaptive contrast before TrainConfig has it is counted without it (its
    basis networks, 3 layers of 128 units per basis vector, add little to the conv networks)."""
    try:
        return load_spec(name), ""
    except SweepError as err:
        if "contrast" not in str(err):
            raise
        path = spec_path(name)
        text = re.sub(r'contrast\s*=\s*\[?\s*"adaptive"\s*\]?', 'contrast = ["none"]', path.read_text())
        return parse_spec(text, path), "adaptive contrast not counted (this TrainConfig has no contrast setting)"


def wall_seconds(durations: list[float], gpus: int, share: float) -> float:
    """Longest-first packing of trials onto `gpus` GPUs, each holding floor(1 / share) trials at once."""
    slots = [0.0] * max(1, gpus * (math.floor(1 / share) if 0 < share <= 1 else 1))
    heapq.heapify(slots)
    for d in sorted(durations, reverse=True):
        heapq.heappush(slots, heapq.heappop(slots) + d)
    return max(slots)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("spec", help="a shipped spec or a spec file")
    p.add_argument("--utilisation", type=float, default=0.3, help="assumed share of the peak rates (default 0.3)")
    p.add_argument("--gpus", default="1,8,18,54", help="cluster sizes for the wall time (default 1,8,18,54)")
    p.add_argument("--test-images", type=int, default=10_000, help="images when n_test is 'all' (default 10,000)")
    args = p.parse_args()
    spec, note = load(args.spec)
    torch.set_num_threads(1)
    cache: dict[tuple, tuple[Flops, Flops]] = {}
    durations, train_total, eval_total = [], Flops(0, 0), Flops(0, 0)
    n_images = args.test_images if spec.evaluation.n_test is None else spec.evaluation.n_test
    print(
        f"sweep {spec.name}: {len(spec.trials)} trials; {note}"
        if note
        else f"sweep {spec.name}: {len(spec.trials)} trials"
    )
    for trial in spec.trials:
        c = trial.config
        key = (c.q, c.k, c.latent_dim, c.family, c.hidden, c.noise_dim, c.batch_size, c.data_dim)
        if key not in cache:
            cache[key] = (step_flops(c), evaluation_flops(spec, c, n_images))
            step, evaluation = cache[key]
            conv_share = 100 * step.conv / (step.conv + step.other)
            print(
                f"  {c.method.upper():5s} K={c.k:<2d} l={c.latent_dim:<2d} {c.family}: "
                f"{(step.conv + step.other) / 1e12:.2f} TFLOP per step ({conv_share:.0f}% convolutions), "
                f"evaluation {(evaluation.conv + evaluation.other) / 1e15:.0f} PFLOP"
            )
        step, evaluation = cache[key]
        if spec.budget.minutes is not None:
            train_s = 60 * spec.budget.minutes
            train_flops = Flops(0, 0)
        else:
            train_flops = step * spec.budget.step_total
            train_s = train_flops.seconds(args.utilisation)
        train_total, eval_total = train_total + train_flops, eval_total + evaluation
        durations.append(train_s + evaluation.seconds(args.utilisation))
    total = train_total + eval_total
    print(
        f"training {(train_total.conv + train_total.other) / 1e18:.1f} EFLOP, evaluation "
        f"{(eval_total.conv + eval_total.other) / 1e18:.1f} EFLOP; at H100 peak (TF32 convolutions "
        f"{H100['tf32'] / 1e12:.0f}, FP32 {H100['fp32'] / 1e12:.0f} TFLOP/s): {total.seconds(1.0) / 3600:.1f} GPU-hours"
        + (" of compute" if spec.budget.minutes is None else " of compute besides the training minutes")
    )
    print(f"at utilisation {args.utilisation:g}: {sum(durations) / 3600:.1f} GPU-hours in all")
    share = spec.resources.gpu
    for n in (int(g) for g in args.gpus.split(",")):
        print(f"  on {n:3d} GPU(s): wall time {wall_seconds(durations, n, share) / 3600:.1f} h")


if __name__ == "__main__":
    main()
