"""Importance-sampling estimates of log p(x), generic over the target log p(x, z).

    log p(x) ~= log (1/k) sum_j p(x, z_j) / r(z_j|x),   z_j ~ r(z|x)                  (2.9) with K = k

A stochastic lower bound on log p(x) that tightens as k grows (Burda et al.). The proposal r is q itself
for a Gaussian q (the weights are then `bounds.log_weights`'), and for an implicit q, which has no
density, a Student-t moment-matched to q's samples, widened so that its tails cover the posterior's.

A target is a function z (B, N, l) -> log p(x, z) (B, N) for a fixed batch of B images; `model_log_joint`
builds it from a model, and tests pass closed-form ones (a linear-Gaussian model) through the same code.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.bounds import iw_bound, log_weights
from ..core.config import ModelConfig
from ..core.footprint import log_joint_bytes_per_latent
from ..core.model import LatentVariableModel, log_prior

LogJoint = Callable[[torch.Tensor], torch.Tensor]  # z (B, N, l) -> log p(x, z) (B, N)
LogWeightsFn = Callable[[int], torch.Tensor]  # n -> log-weights (B, n) of n fresh samples per x

# Latents per decoder call: as many as memory allows, up to a cap. On one CPU thread 4,096 ran IS 1.5x faster
# than 32,768 (whose 100 MB tensors fall out of cache); a GPU wants as many as fit.
CPU_POINTS, GPU_POINTS = 4_096, 262_144
CPU_CALL_BYTES = 1 << 30  # what one call may hold on a CPU
GPU_FREE_SHARE = 0.5  # of the GPU's free memory, what one call may hold (the rest: the model, other jobs)
COVARIANCE_JITTER = 1e-6  # added to the diagonal of a fitted covariance, so that a collapsed q still fits


@functools.lru_cache(maxsize=32)
def _bytes_per_latent(config: ModelConfig) -> int:
    return log_joint_bytes_per_latent(config)


def points_per_call(device: torch.device, config: ModelConfig) -> int:
    """Latents z per call of the decoder (with the gradient of log p(x, z) in z, as AIS needs): what the
    device's memory holds at the model's bytes per latent (iwavb/core/footprint.py), at most the cap. An mlp
    model meets the cap; a conv model (about 2.7 MB per latent) is held to what fits: ~380 on a CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        budget, cap = int(GPU_FREE_SHARE * free), GPU_POINTS
    else:
        budget, cap = CPU_CALL_BYTES, CPU_POINTS
    return max(1, min(cap, budget // _bytes_per_latent(config)))


def model_log_joint(model: LatentVariableModel, x: torch.Tensor) -> LogJoint:
    """log p(x, z) = log p(x|z) + log p(z) (2.1)-(2.2) of a model for the images x (B, D)."""
    return lambda z: model.log_px_given_z(x, z) + log_prior(z)


@dataclass(frozen=True)
class ISConfig:
    """Importance sampling of log p(x): its defaults, written here once."""

    k: int = 5_000  # importance samples per image (Burda et al.'s k = 5,000)
    fit_samples: int = 1_000  # draws of an implicit q per image to fit the proposal (and AIS's start from q)
    widen: float = 1.2  # implicit q: the Student-t's standard deviations are q's times this
    df: float = 5.0  # implicit q: the Student-t's degrees of freedom (heavy tails)


@dataclass(frozen=True)
class Proposal:
    """A multivariate Student-t per image, batched: loc (B, l), scale_tril (B, l, l), df degrees of freedom.

    df = inf is the Gaussian N(loc, L L^T): the prior (loc 0, L = I), q itself for a Gaussian q, or a
    Gaussian moment-matched to an implicit q's samples. log_prob is differentiable in z (for HMC).
    """

    loc: torch.Tensor  # (B, l)
    scale_tril: torch.Tensor  # (B, l, l) lower-triangular L
    df: float = math.inf

    @classmethod
    def standard_normal(cls, batch: int, latent_dim: int, device: torch.device | str = "cpu") -> Proposal:
        """The prior p(z) = N(0, I) for each of `batch` images."""
        eye = torch.eye(latent_dim, device=device).expand(batch, latent_dim, latent_dim)
        return cls(torch.zeros(batch, latent_dim, device=device), eye)

    def sample(self, n: int) -> torch.Tensor:
        """n draws per image: (B, n, l). Student-t: z = loc + L eps / sqrt(u / df), u ~ chi2(df)."""
        b, l = self.loc.shape
        eps = torch.randn(b, n, l, device=self.loc.device, dtype=self.loc.dtype)  # (B, n, l)
        if math.isfinite(self.df):
            u = torch.distributions.Chi2(torch.tensor(self.df, device=self.loc.device)).sample((b, n, 1))
            eps = eps * torch.rsqrt(u / self.df)
        return self.loc.unsqueeze(1) + torch.einsum("bij,bnj->bni", self.scale_tril, eps)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log r(z) for z (B, N, l) -> (B, N)."""
        l = z.shape[-1]
        diff = (z - self.loc.unsqueeze(1)).transpose(1, 2)  # (B, l, N)
        white = torch.linalg.solve_triangular(self.scale_tril, diff, upper=False)  # (B, l, N): L^-1 (z - loc)
        mahalanobis = white.pow(2).sum(1)  # (B, N)
        log_det = torch.diagonal(self.scale_tril, dim1=-2, dim2=-1).log().sum(-1, keepdim=True)  # (B, 1)
        if not math.isfinite(self.df):
            return -0.5 * (mahalanobis + l * math.log(2 * math.pi)) - log_det
        nu = self.df
        log_norm = math.lgamma((nu + l) / 2) - math.lgamma(nu / 2) - 0.5 * l * math.log(nu * math.pi)
        return log_norm - log_det - 0.5 * (nu + l) * torch.log1p(mahalanobis / nu)


def fit_proposal(z: torch.Tensor, widen: float = 1.0, df: float = math.inf) -> Proposal:
    """Moment-match a proposal to samples z (B, S, l) of q: their mean, and their covariance times widen^2.

    With a finite df the Student-t's scale is chosen so that its covariance (df / (df - 2)) L L^T equals
    the widened sample covariance: the t adds heavy tails, `widen` adds width; both guard IS against
    a proposal narrower than the posterior, whose weights would then have infinite variance.
    """
    _b, s, l = z.shape
    if s < 2:
        raise ValueError("fitting a proposal needs at least 2 samples of q per image")
    if math.isfinite(df) and df <= 2:
        raise ValueError(f"a Student-t proposal needs df > 2 (a finite covariance), got {df}")
    loc = z.mean(1)  # (B, l)
    centred = z - loc.unsqueeze(1)
    cov = centred.transpose(1, 2) @ centred / (s - 1)  # (B, l, l)
    scale = widen**2 * (df - 2) / df if math.isfinite(df) else widen**2
    eye = torch.eye(l, device=z.device, dtype=z.dtype)
    return Proposal(loc, torch.linalg.cholesky(scale * cov + COVARIANCE_JITTER * eye), df)


def q_proposal(
    model: LatentVariableModel, x: torch.Tensor, fit_samples: int, widen: float = 1.0, df: float = math.inf
) -> Proposal:
    """q(z|x) as a Proposal for the images x (B, D): a Gaussian q (2.6) is itself, N(m(x), diag v(x));
    an implicit q (2.12) has no density, so a Student-t (or Gaussian, df = inf) is fitted to `fit_samples`
    of its draws per image, widened by `widen`."""
    if model.config.q == "gaussian":
        mean, log_var = model.encoder(x)  # (B, l) each
        return Proposal(mean, torch.diag_embed(torch.exp(0.5 * log_var)))
    chunk = max(1, points_per_call(x.device, model.config) // x.shape[0])
    z = torch.cat([model.sample_q(x, n).z for n in chunk_sizes(fit_samples, chunk)], dim=1)  # (B, S, l)
    return fit_proposal(z, widen, df)


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """[chunk, chunk, ..., rest]: sizes that add up to total."""
    return [min(chunk, total - start) for start in range(0, total, chunk)]


def importance_log_px(log_weights_of: LogWeightsFn, k: int, chunk: int) -> torch.Tensor:
    """log (1/k) sum_j w_j over k samples drawn `chunk` at a time: (B,). Memory is that of one chunk.

    Each chunk's iw_bound (2.9) is log of its mean weight; merging by logsumexp of (bound + log n)
    gives the log of the sum over all k.
    """
    parts = [iw_bound(log_weights_of(n)) + math.log(n) for n in chunk_sizes(k, chunk)]  # each (B,)
    return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)


def proposal_log_weights(log_joint: LogJoint, proposal: Proposal) -> LogWeightsFn:
    """n -> log p(x, z) - log r(z|x) for n fresh z ~ r: the log-weights of IS with any proposal."""

    def draw(n: int) -> torch.Tensor:
        z = proposal.sample(n)  # (B, n, l)
        return log_joint(z) - proposal.log_prob(z)  # (B, n)

    return draw


def importance_log_px_with_error(log_weights_of: LogWeightsFn, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log (1/k) sum_j w_j (B,) and its Monte Carlo standard error (B,); holds all B * k log-weights.

    By the delta method, s.e.(log mean w) ~ s.d.(w) / (sqrt(k) mean w) = sqrt(1/ESS - 1/k), with Kish's
    ESS = (sum w)^2 / sum w^2 of the k weights. It says how much another draw would move the estimate, not
    how far IS's downward bias (a stochastic lower bound) leaves it below log p(x)."""
    log_w = torch.cat([log_weights_of(n) for n in chunk_sizes(k, chunk)], dim=1)  # (B, k)
    inverse_ess = torch.exp(torch.logsumexp(2 * log_w, -1) - 2 * torch.logsumexp(log_w, -1))
    return iw_bound(log_w), (inverse_ess - 1 / k).clamp_min(0).sqrt()


def model_log_weights(model: LatentVariableModel, x: torch.Tensor, config: ISConfig) -> LogWeightsFn:
    """n -> log-weights (B, n) of IS for the images x (B, D): q as proposal for a Gaussian q (the weights of
    `bounds.log_weights`), else a Student-t (df, widen) fitted to `fit_samples` draws of q per x."""
    if model.config.q == "gaussian":
        return lambda n: log_weights(model, x, n).log_w
    proposal = q_proposal(model, x, config.fit_samples, config.widen, config.df)
    return proposal_log_weights(model_log_joint(model, x), proposal)


@torch.no_grad()
def model_importance_log_px(model: LatentVariableModel, x: torch.Tensor, config: ISConfig = ISConfig()) -> torch.Tensor:
    """IS estimate of log p(x) (B,) for binary images x (B, D), with the proposal of `model_log_weights`."""
    chunk = max(1, points_per_call(x.device, model.config) // x.shape[0])
    return importance_log_px(model_log_weights(model, x, config), config.k, chunk)
