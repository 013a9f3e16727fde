"""The deep latent-variable model (2.1)-(2.2) with its q (2.6 or 2.12) and, for an implicit q, T (2.14)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from .config import ModelConfig
from .nets import ContrastEncoder, Discriminator, GaussianEncoder, ImplicitEncoder, QSample, decoder

Module = TypeVar("Module", bound=nn.Module)


@contextmanager
def eval_mode(model: Module) -> Iterator[Module]:
    """The model in evaluation mode (batch norm uses its running statistics) for the block, then as it was."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def log_prior(z: torch.Tensor) -> torch.Tensor:
    """log N(z | 0, I) summed over the last dimension: (..., l) -> (...)."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) of (2.2) from logits, summed over pixels: (..., D), (..., D) -> (...)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


class LatentVariableModel(nn.Module):
    """p(z) = N(0, I), p(x|z) Bernoulli(decoder(z)); q(z|x) Gaussian or implicit; T for an implicit q."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.decoder = decoder(config)
        if config.q == "gaussian":
            self.encoder: GaussianEncoder | ImplicitEncoder | ContrastEncoder = GaussianEncoder(config)
            self.discriminator: Discriminator | None = None
        else:
            self.encoder = ContrastEncoder(config) if config.contrast == "adaptive" else ImplicitEncoder(config)
            self.discriminator = Discriminator(config)

    def generative_parameters(self) -> list[nn.Parameter]:
        """Parameters of p(x|z) and q(z|x): the ones the bound (2.9)/(3.2) trains."""
        return [*self.decoder.parameters(), *self.encoder.parameters()]

    def sample_q(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> QSample:
        """z (B, K, l) ~ q(z|x); log q(z|x) (B, K), or None for an implicit q; the adaptive-contrast moments."""
        return self.encoder.sample(x, k, generator)

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x (B, D), z (B, K, l) -> log p(x|z) (B, K); one decoder call on B*K latents."""
        b, k, l = z.shape
        logits = self.decoder(z.reshape(b * k, l)).view(b, k, -1)  # (B, K, D)
        return bernoulli_log_likelihood(logits, x.unsqueeze(1).expand_as(logits))

    @torch.no_grad()
    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities sigmoid(decoder(z)): (N, l) -> (N, D)."""
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def sample_images(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean images of n draws z ~ p(z): (n, D) probabilities."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, device=device, generator=generator)
        return self.decode_mean(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean image of one z ~ q(z|x) per x: (B, D) -> (B, D) probabilities."""
        return self.decode_mean(self.sample_q(x, 1, generator).z[:, 0])
