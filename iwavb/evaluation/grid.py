"""Latent size 2: exact log p(x) (2.1) by quadrature on a grid over z, and the true posterior p(z|x).

    log p(x) = log sum_g p(x|z_g) p(z_g) dA        (a Riemann sum over a square grid of cell area dA)
    p(z_g|x) = p(x|z_g) p(z_g) / p(x)

The decoder runs once on the G*G grid points; log p(x|z_g) for a batch of binary x is then two
matrix products with log sigmoid(+-logits), so a batch of images costs little more than one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..core.model import LatentVariableModel, log_prior


@dataclass(frozen=True)
class PosteriorGrid:
    axis: torch.Tensor  # (G,) grid coordinates, the same on both latent axes
    log_joint: torch.Tensor  # (B, G, G) log p(x|z) + log p(z); [b, i, j] is at z = (axis[j], axis[i])
    log_px: torch.Tensor  # (B,) log p(x) by quadrature
    posterior: torch.Tensor  # (B, G, G) density p(z|x) on the grid (sums to 1 / cell_area)
    cell_area: float


def latent_grid(extent: float, resolution: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Grid points z (G*G, 2) over [-extent, extent]^2, row-major in z2 then z1; its axis and cell area."""
    axis = torch.linspace(-extent, extent, resolution)
    z2, z1 = torch.meshgrid(axis, axis, indexing="ij")
    step = (2 * extent) / (resolution - 1)
    return torch.stack([z1.flatten(), z2.flatten()], dim=-1), axis, step * step


def posterior_grid(
    model: LatentVariableModel, x: torch.Tensor, extent: float = 5.0, resolution: int = 301, chunk: int = 16_384
) -> PosteriorGrid:
    """Exact log p(x) and p(z|x) of binary images x (B, D) under a model with latent size 2."""
    if model.config.latent_dim != 2:
        raise ValueError(f"the grid needs latent size 2, this model has {model.config.latent_dim}")
    device = next(model.parameters()).device
    z, axis, cell_area = latent_grid(extent, resolution)
    x = x.to(device)
    log_lik = []
    with torch.no_grad():  # not a decorator: mutmut leaves decorated functions unmutated (docs/mutation.md)
        for z_chunk in z.to(device).split(chunk):
            logits = model.decoder(z_chunk)  # (G', D)
            # log p(x|z) = sum_d x_d log s(l_d) + (1 - x_d) log s(-l_d)   (2.2), for every pair (x, z)
            log_lik.append(x @ F.logsigmoid(logits).T + (1 - x) @ F.logsigmoid(-logits).T)  # (B, G')
    log_joint = torch.cat(log_lik, dim=1) + log_prior(z.to(device))  # (B, G*G)
    log_px = torch.logsumexp(log_joint, dim=1) + math.log(cell_area)
    posterior = torch.exp(log_joint - log_px.unsqueeze(1))
    g = resolution
    return PosteriorGrid(axis, log_joint.view(-1, g, g).cpu(), log_px.cpu(), posterior.view(-1, g, g).cpu(), cell_area)
