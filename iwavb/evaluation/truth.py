"""What a model really achieves while it trains: log p(x) of a fixed validation subset, measured without T.

The trainer calls a `TruthProbe` at some of its records (iwavb.training.trainer, within a share of the
training time), and the Train and Compare pages draw its readings beside the objective:

    latent size 2   exact log p(x) by quadrature (`grid`): the toy's four points, or TRUTH_IMAGES validation
                    images, on one TRUTH_RESOLUTION-point grid over [-5, 5]^2. On the shipped MNIST
                    models its mean is within 0.001 nats of a 601-point grid's (each image within 0.09),
                    at a quarter of the cost of zoomed grids per image
    latent size > 2 an importance-sampled estimate on IS_TRUTH_IMAGES images, with its Monte Carlo
                    standard error: an estimate, and a lower bound in expectation

Beside it, the model's own bound (the objective, with T for an implicit q) on the same images: the gap
between the two is the bound's gap (a Gaussian q) or, where an implicit q's objective reads above, T's error.
"""

from __future__ import annotations

import math

import torch

from ..core.bounds import mean_bound
from ..core.model import LatentVariableModel
from ..data.splits import FIXED_SEED, DataSplits, binarize
from ..data.toy import toy_points
from ..training.config import TrainConfig
from ..training.records import Truth, TruthProbe
from .grid import posterior_grid
from .importance import ISConfig, importance_log_px_with_error, model_log_weights, points_per_call

TRUTH_IMAGES = 100  # validation images whose exact log p(x) is followed (l = 2)
TRUTH_RESOLUTION = 151  # grid points per axis (tests/test_truth.py checks it against zoomed grids)
IS_TRUTH_IMAGES = 32  # validation images of the importance-sampled estimate (l > 2)
IS_TRUTH = ISConfig(k=500)
BOUND_ROWS = 1_000  # images x draws behind the bound beside it: a few hundredths of a nat of noise


def truth_images(data: DataSplits, latent_dim: int) -> torch.Tensor:
    """The fixed subset the truth is measured on: the toy's four points, or the first validation images
    binarised with the fixed seed (float 0/1, on the data's device)."""
    if data.name == "toy":
        return toy_points().to(data.valid.images.device)
    n = TRUTH_IMAGES if latent_dim == 2 else IS_TRUTH_IMAGES
    images = data.valid.images[:n]
    return binarize(images, torch.Generator(images.device).manual_seed(FIXED_SEED))


def estimated_log_px(model: LatentVariableModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An IS estimate of log p(x) (B,) and its Monte Carlo standard error (B,), with fixed random numbers."""
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # the proposal's draws use the global generator
        torch.manual_seed(FIXED_SEED)
        chunk = max(1, points_per_call(x.device, model.config) // x.shape[0])
        return importance_log_px_with_error(model_log_weights(model, x, IS_TRUTH), IS_TRUTH.k, chunk)


def truth_probe(config: TrainConfig, data: DataSplits) -> TruthProbe | None:
    """The probe of a run on `data`; None where the data are only the shipped preview images."""
    if data.previews_only:
        return None
    x = truth_images(data, config.latent_dim)
    draws = max(1, BOUND_ROWS // x.shape[0])

    @torch.no_grad()
    def probe(model: LatentVariableModel) -> Truth:
        device = next(model.parameters()).device
        images = x.to(device)
        if config.latent_dim == 2:
            log_px, stderr = posterior_grid(model, images, resolution=TRUTH_RESOLUTION).log_px.mean().item(), None
        else:
            values, errors = estimated_log_px(model, images)
            log_px, stderr = values.mean().item(), math.sqrt(errors.pow(2).sum().item()) / len(values)
        noise = torch.Generator(device).manual_seed(FIXED_SEED)  # the same draws at every reading
        return Truth(log_px, stderr, mean_bound(model, images.repeat(draws, 1), config.k, noise))

    return probe
