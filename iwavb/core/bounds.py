"""The one formula behind all four methods, and the discriminator's objective beside it.

    bound_K(x) = logsumexp_k(log w_k) - log K,   z_1..z_K ~ q(z|x)               (2.9), (3.1)

    Gaussian q:  log w = log p(x|z) + log p(z) - log q(z|x)     VAE (K = 1), IWAE (K > 1)
    implicit q:  log w = log p(x|z) - T(x, z)                    AVB (K = 1), IWAVB (K > 1)

With K = 1 the bound is the ELBO (2.4) (AVB's (2.15)); it does not decrease with K (Burda et al.).

Adaptive contrast (AC; section 5 of the paper uses it, docs/background.md describes it). The AC q
(`nets.ContrastEncoder`) comes with the mean m(x) and variance v(x) of z in closed form, held fixed. With
s = sqrt(v + 1e-4) (coordinate by coordinate), T is given the normalised sample and r is the Gaussian
with q's moments:

    u = (z - m) / s,        r(z|x) = N(z; m, diag s^2)                                           (AC.1)

Let q_u(u|x) be the density of u when z ~ q(z|x). The change of variables z -> u has Jacobian prod_j s_j:

    q(z|x) = q_u(u|x) / prod_j s_j,        r(z|x) = N(u; 0, I) / prod_j s_j                     (AC.2)

T is trained by (2.14) on u (label 1) against draws of N(0, I) (label 0), so its optimum is

    T*(x, u) = log q_u(u|x) - log N(u; 0, I) = log q(z|x) - log r(z|x)            by (AC.2)     (AC.3)

(the Jacobians cancel), and the log-ratio that (2.13) and (3.1) need is, exactly at T = T*,

    log q(z|x) - log p(z) = T*(x, u) + log r(z|x) - log p(z)                                     (AC.4)

so that the importance weight of (3.1) under AC is

    log w = log p(x|z) + log p(z) - log q(z|x) = log p(x|z) - T(x, u) - log r(z|x) + log p(z)     (AC.5)

T now has only the difference between q and a Gaussian with its moments to learn, zero when q is
Gaussian. (AC.3)-(AC.5) hold for any m, s fixed given x, so the moments are detached, as in AVB's code;
gradients still reach q through z in u, r and p. (AVB's code puts log v, not log(v + 1e-4), in log r; the
same s in (AC.1) and r keeps (AC.4) exact.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.func import functional_call
from torch.nn import functional as F

from .model import LatentVariableModel, log_prior
from .nets import ContrastMoments, Discriminator, QSample, XPart

CONTRAST_JITTER = 1e-4  # AVB's: T sees (z - m) / sqrt(v + 1e-4)  (AC.1)


@dataclass(frozen=True)
class LogWeights:
    log_w: torch.Tensor  # (B, K) log importance weights
    log_px_given_z: torch.Tensor  # (B, K) log p(x|z_k)
    log_ratio: torch.Tensor  # (B, K) log q(z_k|x) - log p(z_k): exact, T(x, z_k), or (AC.4) under AC
    z: torch.Tensor  # (B, K, l) the samples from q(z|x)
    t_input: torch.Tensor  # (B, K, l) what T is given: z, or under AC the normalised sample u (AC.1)


def frozen_discriminator(
    discriminator: Discriminator, x: torch.Tensor, z: torch.Tensor, x_part: XPart | None = None
) -> torch.Tensor:
    """T(x, z) with T's weights held fixed: gradients reach z (and so q), never T's parameters.

    The text after (2.15): the gradient of T* with respect to q's parameters vanishes in expectation,
    so the bound step treats T as a fixed function; T is trained by (2.14) alone.
    `x_part`: T's x-features (`Discriminator.x_part`) where already computed; they are used detached.
    """
    state = {name: p.detach() for name, p in discriminator.named_parameters()}
    state.update(discriminator.named_buffers())
    fixed = None if x_part is None else (x_part[0].detach(), x_part[1].detach())
    return functional_call(discriminator, state, (x, z), {"x_part": fixed})


def contrast(z: torch.Tensor, moments: ContrastMoments) -> tuple[torch.Tensor, torch.Tensor]:
    """(AC.1): the normalised sample u (B, K, l) and log r(z|x) (B, K) of samples z (B, K, l)."""
    std = torch.sqrt(moments.var + CONTRAST_JITTER).unsqueeze(1)  # (B, 1, l) s, fixed
    u = (z - moments.mean.unsqueeze(1)) / std  # (B, K, l)
    log_r = -0.5 * (u.pow(2) + math.log(2 * math.pi)).sum(-1) - std.log().sum(-1)  # log N(u; 0, I) - sum log s
    return u, log_r


def discriminator_input(sample: QSample) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What T sees of an implicit q's samples, and the known part of log q - log p beside T:
    (z, None), or under adaptive contrast (u, log r(z|x) - log p(z)) of (AC.4)."""
    if sample.moments is None:
        return sample.z, None
    u, log_r = contrast(sample.z, sample.moments)
    return u, log_r - log_prior(sample.z)


def log_weights(
    model: LatentVariableModel,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    disc_x_part: XPart | None = None,
) -> LogWeights:
    """K samples z ~ q(z|x) per x and their log-weights: one decoder and one T call on B*K latents.

    `disc_x_part`: T's x-features where already computed (the trainer shares them with (2.14)).
    """
    sample = model.sample_q(x, k, generator)
    z = sample.z  # (B, K, l)
    log_px_given_z = model.log_px_given_z(x, z)  # (B, K)  (2.2)
    if sample.log_q is not None:
        log_ratio, t_input = sample.log_q - log_prior(z), z  # (2.6): exact log q(z|x) - log p(z)
    else:
        assert model.discriminator is not None
        t_input, known = discriminator_input(sample)
        log_ratio = frozen_discriminator(model.discriminator, x, t_input, disc_x_part)  # (2.13): T ~ log q - log p
        if known is not None:
            log_ratio = log_ratio + known  # (AC.4): T(x, u) + log r(z|x) - log p(z)
    return LogWeights(log_px_given_z - log_ratio, log_px_given_z, log_ratio, z, t_input)  # (3.1) / (AC.5)


def iw_bound(log_w: torch.Tensor) -> torch.Tensor:
    """(2.9) / (3.1): log (1/K) sum_k w_k, computed stably: (B, K) -> (B,)."""
    return torch.logsumexp(log_w, dim=-1) - math.log(log_w.shape[-1])


def bound(
    model: LatentVariableModel, x: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The per-example bound (B,) of the model's method for K samples."""
    return iw_bound(log_weights(model, x, k, generator).log_w)


@torch.no_grad()
def mean_bound(
    model: LatentVariableModel, x: torch.Tensor, k: int, generator: torch.Generator | None = None, batch: int = 500
) -> float:
    """The bound of the model's method averaged over images x, computed `batch` images at a time."""
    return float(sum(bound(model, chunk, k, generator).sum() for chunk in x.split(batch))) / x.shape[0]


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    """Kish's ESS of normalised importance weights: (sum w)^2 / sum w^2, (B, K) -> (B,), in [1, K]."""
    return torch.exp(2 * torch.logsumexp(log_w, -1) - torch.logsumexp(2 * log_w, -1))


def discriminator_samples(
    model: LatentVariableModel, x: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """K fresh samples of an implicit q per x as T sees them (B, K, l), detached: z, or u under AC."""
    with torch.no_grad():
        return discriminator_input(model.sample_q(x, k, generator))[0]


@dataclass(frozen=True)
class DiscriminatorLoss:
    loss: torch.Tensor  # scalar: the negative of (2.14), as a mean binary cross-entropy
    accuracy: torch.Tensor  # scalar in [0, 1]: how often T's sign tells q's samples from the prior's


def discriminator_loss(
    discriminator: Discriminator,
    x: torch.Tensor,
    z_q: torch.Tensor,
    generator: torch.Generator | None = None,
    x_part: XPart | None = None,
) -> DiscriminatorLoss:
    """(2.14): logistic regression of z ~ q(z|x) (label 1) against z ~ p(z) (label 0), same x.

    x (B, D), z_q (B, K, l) detached samples of q, as T sees them (`LogWeights.t_input`: under adaptive
    contrast the normalised u, whose contrast N(0, I) is again p). At the optimum T = log q(z|x) - log p(z),
    under AC (AC.3).
    `x_part`: `discriminator.x_part(x)` where already computed with T's current weights.
    """
    z_q = z_q.detach()
    z_p = torch.randn(z_q.shape, device=z_q.device, dtype=z_q.dtype, generator=generator)  # (B, K, l) ~ p(z)
    t = discriminator(x, torch.cat([z_q, z_p], dim=1), x_part)  # (B, 2K): one call, x-features shared
    t_q, t_p = t.split(z_q.shape[1], dim=1)
    loss = F.binary_cross_entropy_with_logits(t_q, torch.ones_like(t_q)) + F.binary_cross_entropy_with_logits(
        t_p, torch.zeros_like(t_p)
    )
    accuracy = 0.5 * ((t_q > 0).float().mean() + (t_p < 0).float().mean())
    return DiscriminatorLoss(loss, accuracy.detach())
