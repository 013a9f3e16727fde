"""The networks, in two families: `mlp` (small, fast on a CPU) and `conv` (AVB's, the paper's).

Read top to bottom from the smallest part up. Every encoder turns x into a feature vector once,
so that the K samples of z (and the K noise draws of an implicit q) share that work.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from .config import ModelConfig

CONV_FEATURES = 512  # width of the dense layer after AVB's conv stack (7*7*512 -> 512)
CONV_ADVERSARY = (1024, 8192)  # AVB's adversary: 3 layers of 1024 units -> 8192 features
XPart = tuple[torch.Tensor, torch.Tensor]  # what T takes from x alone: u (B, H), a constant (B,) per x
BASIS_WIDTH = 128  # AVB's adaptive contrast: each basis vector v_i(e_i) is an MLP of three 128-unit ELU layers
MOMENT_DRAWS = 128  # adaptive contrast: least draws of each v_i behind its moments (AVB's batch of 128)


def contrast_basis_size(latent_dim: int) -> int:
    """Basis vectors of the adaptive-contrast q: AVB uses 16 for l = 8 and 32 for l = 32."""
    return max(16, latent_dim)


@dataclass(frozen=True)
class ContrastMoments:
    """Adaptive contrast: the mean and variance of q(z|x), in closed form from its basis, held fixed (detached)."""

    mean: torch.Tensor  # (B, l)
    var: torch.Tensor  # (B, l)


class QSample(NamedTuple):
    """K draws of q(z|x) per x and what is known of q's density at them."""

    z: torch.Tensor  # (B, K, l)
    log_q: torch.Tensor | None  # (B, K) log q(z|x) of a Gaussian q (2.6); None for an implicit q (2.12)
    moments: ContrastMoments | None = None  # the adaptive-contrast q's closed-form moments; else None


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ELU, last_activation: bool = False) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or last_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


def conv_block(c_in: int, c_out: int, stride: int, transpose: bool = False) -> nn.Sequential:
    """5x5 (transposed) convolution + batch norm + ELU, 'same' padding, as in AVB's networks."""
    if transpose:
        conv: nn.Module = nn.ConvTranspose2d(c_in, c_out, 5, stride, padding=2, output_padding=stride - 1)
    else:
        conv = nn.Conv2d(c_in, c_out, 5, stride, padding=2)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ELU())


class ConvFeatures(nn.Module):
    """AVB's encoder stack: x in [-1, 1], 5x5 convs 64/128/256/512 (strides 1, 1, 2, 2) -> dense."""

    def __init__(self, out_dim: int = CONV_FEATURES):
        super().__init__()
        self.convs = nn.Sequential(
            conv_block(1, 64, 1), conv_block(64, 128, 1), conv_block(128, 256, 2), conv_block(256, 512, 2)
        )
        self.dense = nn.Sequential(nn.Linear(7 * 7 * 512, out_dim), nn.ELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x.view(-1, 1, 28, 28) * 2 - 1)  # (B, 512, 7, 7)
        return self.dense(h.flatten(1))  # (B, out_dim)


def x_features(config: ModelConfig) -> tuple[nn.Module, int]:
    """The part of an encoder that sees only x, and its output width."""
    if config.family == "conv":
        return ConvFeatures(), CONV_FEATURES
    h = config.hidden
    return mlp([config.data_dim, h, h], last_activation=True), h


class GaussianEncoder(nn.Module):
    """q(z|x) = N(m(x), diag v(x)) (2.6), sampled by reparameterisation: z = m + sqrt(v) * eps."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.features, width = x_features(config)
        self.head = nn.Linear(width, 2 * config.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.head(self.features(x)).chunk(2, dim=-1)  # (B, l) each
        return mean, log_var

    def sample(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> QSample:
        """K samples per x and their log-density: z (B, K, l), log q(z|x) (B, K)."""
        mean, log_var = self(x)
        std = torch.exp(0.5 * log_var)
        eps = torch.randn(
            x.shape[0], k, mean.shape[-1], device=x.device, dtype=mean.dtype, generator=generator
        )  # (B, K, l)
        z = mean.unsqueeze(1) + std.unsqueeze(1) * eps
        # log N(z | m, v) = -1/2 sum_j [eps_j^2 + log v_j + log 2 pi]
        log_q = -0.5 * (eps.pow(2) + log_var.unsqueeze(1) + math.log(2 * math.pi)).sum(-1)
        return QSample(z, log_q)


class ImplicitEncoder(nn.Module):
    """z = f(x, e), e ~ N(0, I) (2.12): no density, only samples.

    f = head([features(x), e]); the features are computed once per x and shared by the K noise draws,
    and so is their part of the head's first layer (see `sample`).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.features, width = x_features(config)
        self.noise_dim = config.noise_dim
        h = config.hidden if config.family == "mlp" else CONV_FEATURES
        self.head = mlp([width + config.noise_dim, h, config.latent_dim])

    def sample(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> QSample:
        """K samples per x: z (B, K, l); the log-density is unknown (None)."""
        feats = self.features(x)  # (B, F)
        e = torch.randn(
            x.shape[0], k, self.noise_dim, device=x.device, dtype=feats.dtype, generator=generator
        )  # (B, K, noise)
        # head[0]([f, e]) = W_f f + W_e e + b: the x-part once per x, not once per noise draw
        first, width = self.head[0], feats.shape[-1]
        assert isinstance(first, nn.Linear)
        h_x = F.linear(feats, first.weight[:, :width], first.bias)  # (B, H)
        h_e = F.linear(e, first.weight[:, width:])  # (B, K, H)
        z = self.head[1:](h_x.unsqueeze(1) + h_e)  # (B, K, l)
        return QSample(z, None)


class BasisNets(nn.Module):
    """n small MLPs, v_i(e_i) for i = 1..n, each of its own weights, run together as one batched matrix
    product per layer: e (n, N, noise) -> v (n, N, l). Initialised as nn.Linear is (uniform, 1/sqrt(fan-in))."""

    def __init__(self, n: int, noise_dim: int, latent_dim: int, width: int = BASIS_WIDTH, depth: int = 3):
        super().__init__()
        sizes = [noise_dim, *[width] * depth, latent_dim]
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(n, a, b)) for a, b in itertools.pairwise(sizes))
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(n, 1, b)) for b in sizes[1:])
        for w, b in zip(self.weights, self.biases):
            bound = 1 / math.sqrt(w.shape[1])
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        h = e  # (n, N, noise)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)  # (n, N, width): b + h @ w, basis vector by basis vector
            if i < len(self.weights) - 1:
                h = F.elu(h)
        return h  # (n, N, l)


class ContrastEncoder(nn.Module):
    """The implicit q of AVB's adaptive contrast (docs/background.md): z = z0(x) + sum_i a_i(x) * v_i(e_i).

    Each e_i ~ N(0, I) is the noise of one basis vector v_i (an MLP of the noise alone) and a_i(x) > 0 its
    coefficients per coordinate. The v_i are independent and do not depend on x, so q's moments follow
    from theirs in closed form:
        E[z|x] = z0 + sum_i a_i E[v_i],    Var[z|x] = sum_i a_i^2 Var[v_i]     (coordinate by coordinate)
    with E[v_i], Var[v_i] taken over this call's draws (at least MOMENT_DRAWS of them), as in AVB's code,
    and held fixed (detached): what the bound and T do with them is in iwavb/core/bounds.py.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.features, features = x_features(config)
        self.latent_dim, self.noise_dim = config.latent_dim, config.noise_dim
        self.n_basis = contrast_basis_size(config.latent_dim)
        self.z0 = nn.Linear(features, config.latent_dim)
        nn.init.normal_(self.z0.weight, std=1e-5)  # AVB's: z0 starts at its bias, zero
        nn.init.zeros_(self.z0.bias)
        self.coefficients = nn.Linear(features, self.n_basis * config.latent_dim)
        width = BASIS_WIDTH if config.family == "conv" else min(BASIS_WIDTH, config.hidden)  # toy: 64
        self.basis = BasisNets(self.n_basis, config.noise_dim, config.latent_dim, width)

    def sample(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> QSample:
        """K samples per x, z (B, K, l), and q's closed-form moments (B, l) each; the density is unknown."""
        b, n, l = x.shape[0], self.n_basis, self.latent_dim
        feats = self.features(x)  # (B, F): once per x, shared by the K draws
        z0 = self.z0(feats)  # (B, l)
        a = F.elu(self.coefficients(feats).view(b, n, l) - 5.0) + 1.0  # (B, n, l) > 0, AVB's: about e^-5 at first
        draws = max(b * k, MOMENT_DRAWS)  # a few images (the Posteriors page's one) still get stable moments
        e = torch.randn(n, draws, self.noise_dim, device=x.device, dtype=self.z0.weight.dtype, generator=generator)
        v = self.basis(e)  # (n, draws, l)
        wide = torch.promote_types(v.dtype, torch.float32)  # moments in float32 at least (bfloat16 autocast)
        v_moments = v.detach().to(wide)
        v_mean, v_var = v_moments.mean(1), v_moments.var(1, correction=0)  # (n, l) each
        v_q = v[:, : b * k].reshape(n, b, k, l).permute(1, 2, 0, 3)  # (B, K, n, l): the draws that make z
        z = z0.unsqueeze(1) + (a.unsqueeze(1) * v_q).sum(2)  # (B, K, l)
        a_fixed = a.detach().to(wide)
        mean = z0.detach().to(wide) + (a_fixed * v_mean).sum(1)  # (B, l)
        var = (a_fixed.pow(2) * v_var).sum(1)  # (B, l)
        return QSample(z, None, ContrastMoments(mean, var))


class ConvDecoder(nn.Module):
    """AVB's decoder: z -> 7*7*512 (ELU) -> transposed 5x5 convs 256 (s2), 128 (s2), 64 (s1) -> 1."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.dense = nn.Sequential(nn.Linear(latent_dim, 7 * 7 * 512), nn.ELU())
        self.deconvs = nn.Sequential(
            conv_block(512, 256, 2, transpose=True),
            conv_block(256, 128, 2, transpose=True),
            conv_block(128, 64, 1, transpose=True),
        )
        self.out = nn.Conv2d(64, 1, 5, 1, padding=2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dense(z).view(-1, 512, 7, 7)
        return self.out(self.deconvs(h)).flatten(1)  # (N, 784) logits


def decoder(config: ModelConfig) -> nn.Module:
    """z (N, l) -> Bernoulli logits (N, D) of p(x|z) (2.2)."""
    if config.family == "conv":
        return ConvDecoder(config.latent_dim)
    h = config.hidden
    return mlp([config.latent_dim, h, h, config.data_dim])


class Discriminator(nn.Module):
    """T(x, z), trained by (2.14) so that T* = log q(z|x) - log p(z).

    AVB's adversary: T = <theta(x), s(z)> + Tx(x) + Tz(z) + ||z||^2 / 2. The last term is the known
    part of -log p(z), so the networks only learn log q(z|x) up to its quadratic prior part.
    theta(x) and Tx(x) are computed once per x and shared by all samples of z for that x; s and Tz are
    linear in the last features h(z), so they are folded into one vector per x (see `forward`).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        hidden, width = (config.hidden, config.hidden) if config.family == "mlp" else CONV_ADVERSARY
        depth = [hidden] * (2 if config.family == "mlp" else 3)  # AVB's adversary has 3 layers
        self.x_net = mlp([config.data_dim, *depth], nn.LeakyReLU, last_activation=True)
        self.z_net = mlp([config.latent_dim, *depth], nn.LeakyReLU, last_activation=True)
        self.theta, self.t_x = nn.Linear(hidden, width), nn.Linear(hidden, 1)
        self.s, self.t_z = nn.Linear(hidden, width), nn.Linear(hidden, 1)

    def x_part(self, x: torch.Tensor) -> XPart:
        """What T takes from x alone: u (B, H) and a constant (B,) per x, such that T = <u, h(z)> + c + ||z||^2/2.

        <theta, S h + b_s> + <t_z, h> + c_z = <S^T theta + t_z, h> + <theta, b_s> + c_z, with s = (S, b_s)
        and Tz = (t_z, c_z): the same T, but each sample of z costs H multiply-adds instead of W * H.
        """
        hx = self.x_net(x)  # (B, H)
        theta = self.theta(hx)  # (B, W)
        # (einsum, not Linear: these products belong to T's inner product, not to a layer.)
        u = torch.einsum("bw,wh->bh", theta, self.s.weight) + self.t_z.weight  # (B, H)
        return u, theta @ self.s.bias + self.t_z.bias + self.t_x(hx).squeeze(-1)

    def forward(self, x: torch.Tensor, z: torch.Tensor, x_part: XPart | None = None) -> torch.Tensor:
        """x (B, D), z (B, K, l) -> T (B, K); `x_part`: `self.x_part(x)` where it is already computed."""
        u, per_x = self.x_part(x) if x_part is None else x_part  # (B, H), (B,)
        hz = self.z_net(z)  # (B, K, H)
        return torch.einsum("bh,bkh->bk", u, hz) + per_x.unsqueeze(-1) + 0.5 * z.pow(2).sum(-1)
