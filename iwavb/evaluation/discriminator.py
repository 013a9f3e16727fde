"""How far the discriminator T is from what it estimates, log q(z|x) - log p(z) (2.13), at q's own samples.

An implicit q (2.12) has no density, which is why AVB trains T; but for latent size 2 its density can be
estimated from its samples by k nearest neighbours (`knn`), independently of T. At q's samples z_m:

    error_m = T(x, z_m) - [log q(z_m|x) - log p(z_m)]     (log q by kNN from other samples of q)

A mean error below 0 says T underestimates log q - log p, so the objective (3.1) reads too high by about
that much (log w = log p(x|z) - T); the spread says how unevenly T is wrong across the latent plane. The
spread includes the kNN estimate's own noise (`knn.knn_noise`, about 0.23 nats at k = 20).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.bounds import discriminator_input
from ..core.model import LatentVariableModel, log_prior
from .knn import DEFAULT_NEIGHBOURS, knn_log_density, knn_noise

REFERENCE_SAMPLES = 20_000  # samples of q per x behind the kNN density: bias well below 0.1 nats in 2-D
QUERY_SAMPLES = 500  # further samples of q per x at which T is compared with it


@dataclass(frozen=True)
class DiscriminatorError:
    """T against log q - log p at q's samples for one x: the per-sample values and their summary."""

    z: np.ndarray  # (M, 2) the samples of q where both are evaluated
    t: np.ndarray  # (M,) T(x, z)
    truth: np.ndarray  # (M,) log q(z|x) - log p(z), log q by kNN
    noise: float  # standard deviation of the kNN estimate alone, per sample

    @property
    def errors(self) -> np.ndarray:
        return self.t - self.truth

    @property
    def mean(self) -> float:
        """Mean error in nats: < 0, T underestimates log q - log p (the objective reads too high)."""
        return float(self.errors.mean())

    @property
    def spread(self) -> float:
        """Standard deviation of the error over q's samples (kNN noise included)."""
        return float(self.errors.std())


@torch.no_grad()
def discriminator_error(
    model: LatentVariableModel,
    x: torch.Tensor,
    reference: int = REFERENCE_SAMPLES,
    queries: int = QUERY_SAMPLES,
    k: int = DEFAULT_NEIGHBOURS,
    generator: torch.Generator | None = None,
) -> list[DiscriminatorError]:
    """T's error at q's samples for each binary x (B, D) of a model with an implicit q and latent size 2."""
    if model.discriminator is None:
        raise ValueError("only an implicit q has a discriminator T; a Gaussian q's log q(z|x) is exact")
    if model.config.latent_dim != 2:
        raise ValueError(
            f"T's error needs latent size 2 (a kNN density in 2-D), this model has {model.config.latent_dim}"
        )
    sample = model.sample_q(x, reference + queries, generator)  # (B, N + M, 2)
    z_ref, z_query = sample.z[:, :reference], sample.z[:, reference:]
    t_input, known = discriminator_input(sample)  # z, or under adaptive contrast u and its exact part (AC.4)
    t = model.discriminator(x, t_input[:, reference:])  # (B, M): T's estimate of log q - log p (2.13)
    if known is not None:
        t = t + known[:, reference:]  # (AC.4): T(x, u) + log r(z|x) - log p(z)
    log_q = torch.stack([knn_log_density(r, q, k) for r, q in zip(z_ref, z_query)])  # (B, M), float64 on the CPU
    log_ratio = log_q - log_prior(z_query.cpu().double())  # (B, M): log q - log p
    noise = knn_noise(k)
    return [
        DiscriminatorError(zq.cpu().numpy(), tq.cpu().double().numpy(), truth.numpy(), noise)
        for zq, tq, truth in zip(z_query, t, log_ratio)
    ]
