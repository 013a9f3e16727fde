"""Small measurements of a trained model that need no estimator of log p(x)."""

from __future__ import annotations

import torch

from .model import LatentVariableModel


@torch.no_grad()
def toy_posterior_separation(model: LatentVariableModel, n_samples: int = 500, seed: int = 0) -> float:
    """How clearly q separates the four toy points: the fraction of samples z ~ q(z|x_i) for which the
    decoder gives x_i the highest likelihood among the four points. 0.25 is chance, 1.0 is separated."""
    points = torch.eye(4, device=next(model.parameters()).device)
    generator = torch.Generator(points.device).manual_seed(seed)
    z, _ = model.sample_q(points, n_samples, generator)  # (4, n, l)
    source = torch.arange(4, device=points.device).repeat_interleave(n_samples)
    log_lik = model.log_px_given_z(points, z.reshape(1, 4 * n_samples, -1).expand(4, -1, -1))  # (4 points, 4n)
    return (log_lik.argmax(0) == source).float().mean().item()
