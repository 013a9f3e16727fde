"""The one formula against cases with known answers (docs/background.md)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from iwavb.core.bounds import discriminator_loss, effective_sample_size, frozen_discriminator, iw_bound, log_weights
from iwavb.core.config import ModelConfig
from iwavb.core.model import LatentVariableModel, log_prior
from iwavb.core.nets import Discriminator


def gaussian_model(latent_dim: int = 4, data_dim: int = 20, hidden: int = 32) -> LatentVariableModel:
    return LatentVariableModel(ModelConfig(data_dim=data_dim, latent_dim=latent_dim, q="gaussian", hidden=hidden))


def binary_batch(n: int, d: int = 20) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, d), 0.3))


def test_iw_bound_is_log_mean_exp():
    log_w = torch.tensor([[0.0, math.log(3.0)], [1000.0, 1000.0]])  # (B=2, K=2), one huge: must not overflow
    assert torch.allclose(iw_bound(log_w), torch.tensor([math.log(2.0), 1000.0]))
    single = torch.randn(5, 1)
    assert torch.equal(iw_bound(single), single[:, 0])  # K = 1: the bound is the single log-weight


def test_gaussian_log_q_matches_torch_distributions():
    model = gaussian_model()
    x = binary_batch(8)
    torch.manual_seed(1)
    z, log_q, _ = model.sample_q(x, 3)
    mean, log_var = model.encoder(x)
    reference = torch.distributions.Normal(mean.unsqueeze(1), torch.exp(0.5 * log_var).unsqueeze(1)).log_prob(z).sum(-1)
    assert torch.allclose(log_q, reference, atol=1e-5)
    assert torch.allclose(log_prior(z), torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-5)


def test_k1_gaussian_bound_is_the_elbo_with_analytic_kl():
    """K = 1: bound = log p(x|z) + log p(z) - log q(z|x), whose mean is log p(x|z) - KL(q||p) (2.7)."""
    model = gaussian_model()
    x = binary_batch(4).repeat_interleave(5000, dim=0)  # many draws of the same 4 images
    with torch.no_grad():
        w = log_weights(model, x, 1)
        bound = iw_bound(w.log_w)
        assert torch.equal(bound, w.log_w[:, 0])
        assert torch.allclose(w.log_w, w.log_px_given_z - w.log_ratio)
        mean, log_var = model.encoder(x)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(-1)  # analytic KL(N(m, v) || N(0, I))
        elbo = w.log_px_given_z[:, 0] - kl  # the same samples of z
        diff = (bound - elbo).view(4, -1)  # per image: log p(z) - log q(z|x) + KL, mean zero
    se = diff.std(1) / math.sqrt(diff.shape[1])
    assert (diff.mean(1).abs() < 4 * se + 1e-4).all(), (diff.mean(1), se)


def test_bound_does_not_decrease_with_k():
    torch.manual_seed(3)
    model = gaussian_model(latent_dim=2)
    with torch.no_grad():
        model.decoder[0].weight.mul_(8)  # make p(x|z) depend strongly on z: q is then a poor proposal
    x = binary_batch(16)
    reps = 400
    means, ses = [], []
    with torch.no_grad():
        for k in (1, 5, 50):
            b = torch.stack([iw_bound(log_weights(model, x, k).log_w).mean() for _ in range(reps)])
            means.append(b.mean().item())
            ses.append(b.std().item() / math.sqrt(reps))
    for (m1, s1), (m2, s2) in zip(zip(means, ses), zip(means[1:], ses[1:])):
        assert m2 > m1 - 3 * math.hypot(s1, s2), (means, ses)
    assert means[2] > means[0] + 0.1  # a random q is poor: K = 50 must be clearly tighter than K = 1


def test_effective_sample_size_bounds():
    assert torch.allclose(effective_sample_size(torch.zeros(1, 10)), torch.tensor([10.0]))
    assert torch.allclose(effective_sample_size(torch.tensor([[0.0, -1e4, -1e4]])), torch.tensor([1.0]))
    weights = torch.tensor([[1.0, 2.0, 3.0]])  # (1 + 2 + 3)^2 / (1 + 4 + 9) = 36 / 14
    assert torch.allclose(effective_sample_size(weights.log()), torch.tensor([36 / 14]))


def test_discriminator_loss_is_2_14_with_the_priors_draws_of_the_same_generator():
    """With T(x, z) = z_1 (a stand-in), the loss is mean softplus(-T) over q's samples plus mean softplus(T)
    over the prior's, and the accuracy counts T > 0 for q and T < 0 for p; the prior's z are the generator's
    next draws, in q's dtype (here float64)."""

    class FirstCoordinate(nn.Module):
        def forward(self, x, z, x_part=None):
            return z[..., 0]

    t_q = torch.tensor([[0.5, -2.0, 3.0, 1.5, -0.2, 0.7, 2.0, -1.0]], dtype=torch.float64)  # (B=1, K=8)
    z_q = torch.stack([t_q, torch.zeros_like(t_q)], dim=-1)  # (1, 8, 2): 16 draws, so float32 and float64 draws differ
    result = discriminator_loss(FirstCoordinate(), torch.zeros(1, 4), z_q, torch.Generator().manual_seed(2))
    t_p = torch.randn(1, 8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))[..., 0]
    expected = nn.functional.softplus(-t_q).mean() + nn.functional.softplus(t_p).mean()
    assert torch.allclose(result.loss, expected)
    assert torch.allclose(result.accuracy.double(), 0.5 * ((t_q > 0).double().mean() + (t_p < 0).double().mean()))
    assert ((t_q > 0) & (t_q < 1)).any() and ((t_p > 0) & (t_p < 1)).any()  # a threshold moved to 1 would show


def test_precomputed_x_features_are_the_ones_used():
    """T's x-features, where passed, are used as given (they are computed once per step and shared): the
    features of another x give T of that x."""
    config = ModelConfig(data_dim=5, latent_dim=2, q="implicit", hidden=8, noise_dim=3)
    model = LatentVariableModel(config)
    disc = model.discriminator
    x, other = binary_batch(4, 5), 1 - binary_batch(4, 5)
    z = torch.randn(4, 3, 2)
    assert torch.allclose(frozen_discriminator(disc, x, z, disc.x_part(other)), disc(other, z))
    generator = torch.Generator().manual_seed(0)
    weights = log_weights(model, x, 3, generator, disc.x_part(other))
    assert torch.allclose(weights.log_ratio, disc(other, weights.z))
    loss = discriminator_loss(disc, x, z, torch.Generator().manual_seed(1), disc.x_part(other))
    assert torch.allclose(loss.loss, discriminator_loss(disc, other, z, torch.Generator().manual_seed(1)).loss)


class FixedGaussianQ(nn.Module):
    """q(z|x) = N(A x + b, diag s(x)^2) with fixed parameters: its log q - log p is known exactly."""

    def __init__(self, data_dim: int, latent_dim: int):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.a = torch.randn(latent_dim, data_dim, generator=g) * 0.8
        self.b = torch.randn(latent_dim, generator=g) * 0.3
        self.c = torch.randn(latent_dim, data_dim, generator=g) * 0.4

    def params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x @ self.a.T + self.b, 0.6 * torch.sigmoid(x @ self.c.T) + 0.2  # mean, std

    def sample(self, x: torch.Tensor, k: int) -> torch.Tensor:
        mean, std = self.params(x)
        return mean.unsqueeze(1) + std.unsqueeze(1) * torch.randn(x.shape[0], k, mean.shape[1])

    def log_ratio(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean, std = self.params(x)
        log_q = torch.distributions.Normal(mean.unsqueeze(1), std.unsqueeze(1)).log_prob(z).sum(-1)
        return log_q - log_prior(z)


@pytest.mark.slow
def test_discriminator_trained_by_2_14_approaches_the_true_log_ratio():
    torch.manual_seed(0)
    data_dim, latent_dim = 6, 2
    q = FixedGaussianQ(data_dim, latent_dim)
    disc = Discriminator(ModelConfig(data_dim=data_dim, latent_dim=latent_dim, hidden=64))
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3)
    for _ in range(3000):
        x = torch.bernoulli(torch.full((256, data_dim), 0.5))
        loss = discriminator_loss(disc, x, q.sample(x, 4)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.bernoulli(torch.full((512, data_dim), 0.5))
    z = q.sample(x, 8)
    with torch.no_grad():
        t, truth = disc(x, z).flatten(), q.log_ratio(x, z).flatten()
    corr = torch.corrcoef(torch.stack([t, truth]))[0, 1].item()
    assert corr > 0.95, corr
    assert (t - truth).mean().abs().item() < 0.25  # the KL estimate E_q[T] is nearly unbiased
    assert (t - truth).abs().mean().item() < 0.5


def test_bound_step_does_not_touch_discriminator_weights():
    model = LatentVariableModel(ModelConfig(data_dim=20, latent_dim=3, q="implicit", hidden=16, noise_dim=4))
    x = binary_batch(8)
    (-iw_bound(log_weights(model, x, 5).log_w).mean()).backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())  # gradients reach q through z


def test_frozen_discriminator_equals_the_discriminator():
    disc = Discriminator(ModelConfig(data_dim=5, latent_dim=2, hidden=8))
    x, z = binary_batch(4, 5), torch.randn(4, 3, 2)
    assert torch.allclose(frozen_discriminator(disc, x, z), disc(x, z))
