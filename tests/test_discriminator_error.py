"""T's error made visible: the kNN log-density against Gaussians' exact ones, and T's error at q's samples
against a q whose density is known (a Gaussian, drawn as if implicit) with T optimal or off by a known amount."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from iwavb.core.bounds import CONTRAST_JITTER, contrast
from iwavb.core.model import LatentVariableModel, log_prior
from iwavb.core.nets import ContrastMoments, QSample
from iwavb.data.toy import toy_points
from iwavb.evaluation.discriminator import discriminator_error
from iwavb.evaluation.knn import knn_log_density, knn_noise
from iwavb.training.config import TrainConfig

SCALE = torch.tensor([[0.05, 0.0], [0.03, 0.02]])  # narrow and tilted: MNIST posteriors are this narrow


def gaussian(mean: tuple[float, float]) -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(torch.tensor(mean), scale_tril=SCALE)


def test_knn_noise_is_the_trigamma_of_k():
    assert knn_noise(1) == pytest.approx(math.pi / math.sqrt(6))  # psi'(1) = pi^2 / 6
    assert knn_noise(20) == pytest.approx(0.2263, abs=1e-3)


def test_knn_log_density_of_a_narrow_gaussian_far_from_the_origin():
    """At held-out points: unbiased (measured +0.007) with the scatter sqrt(psi'(k)) the estimator predicts."""
    q = gaussian((2.0, -1.0))
    torch.manual_seed(0)
    samples, points = q.sample((20_000,)), q.sample((2_000,))
    error = knn_log_density(samples, points, k=20) - q.log_prob(points).double()
    assert abs(error.mean().item()) < 0.03
    assert error.std().item() == pytest.approx(knn_noise(20), rel=0.15)  # measured 0.238 against 0.226


def test_knn_log_density_at_the_samples_themselves_leaves_each_out():
    q = gaussian((-0.5, 0.5))
    torch.manual_seed(1)
    samples = q.sample((5_000,))
    error = knn_log_density(samples, k=20) - q.log_prob(samples).double()
    assert abs(error.mean().item()) < 0.06  # measured +0.03; counting a sample as its own neighbour gives -inf


def test_knn_needs_enough_samples():
    with pytest.raises(ValueError, match="reference samples"):
        knn_log_density(torch.zeros(5, 2), k=5)


class GaussianAsImplicit(nn.Module):
    """q(z|x) = N(m(x), S S^T) sampled as an implicit q would be (z = f(x, e)), and its exact log density; with
    `contrast`, its exact moments too, as the adaptive-contrast q gives them (AC.1)."""

    def __init__(self, contrast: bool = False):
        super().__init__()
        self.contrast = contrast

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x[:, :2] - x[:, 2:]  # each toy point its own mean: (2, 0), (0, 2), (-1, 0), (0, -1)

    def moments(self, x: torch.Tensor) -> ContrastMoments:
        return ContrastMoments(self.mean(x), (SCALE @ SCALE.T).diagonal().expand(x.shape[0], 2))

    def sample(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> QSample:
        e = torch.randn(x.shape[0], k, 2, generator=generator)
        z = self.mean(x).unsqueeze(1) + e @ SCALE.T
        return QSample(z, None, self.moments(x) if self.contrast else None)

    def log_density(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.distributions.MultivariateNormal(self.mean(x).unsqueeze(1), scale_tril=SCALE).log_prob(z)


class OptimalT(nn.Module):
    """T*(x, z) = log q(z|x) - log p(z) (2.13), exactly, plus a known `offset`; under adaptive contrast T sees
    u = (z - m) / s and T*(x, u) = log q(z|x) - log r(z|x) (AC.3)."""

    def __init__(self, q: GaussianAsImplicit, offset: float = 0.0):
        super().__init__()
        self.q, self.offset = q, offset

    def forward(self, x: torch.Tensor, t_input: torch.Tensor, x_part: object = None) -> torch.Tensor:
        if not self.q.contrast:
            return self.q.log_density(x, t_input) - log_prior(t_input) + self.offset
        moments = self.q.moments(x)
        std = torch.sqrt(moments.var + CONTRAST_JITTER).unsqueeze(1)
        z = moments.mean.unsqueeze(1) + t_input * std
        _, log_r = contrast(z, moments)
        return self.q.log_density(x, z) - log_r + self.offset


def gaussian_implicit_model(offset: float, contrast: bool = False) -> LatentVariableModel:
    model = LatentVariableModel(TrainConfig(dataset="toy", q="implicit", k=1, latent_dim=2).model_config())
    q = GaussianAsImplicit(contrast)
    model.encoder = q  # type: ignore[assignment]
    model.discriminator = OptimalT(q, offset)  # type: ignore[assignment]
    return model


@pytest.mark.parametrize("contrast", [False, True])
@pytest.mark.parametrize("offset", [0.0, -3.0])
def test_t_error_of_an_optimal_t_is_zero_and_of_a_shifted_one_is_the_shift(offset, contrast):
    """Also under adaptive contrast, where T's estimate of log q - log p is T(x, u) + log r - log p (AC.4)."""
    errors = discriminator_error(
        gaussian_implicit_model(offset, contrast), toy_points(), generator=torch.Generator().manual_seed(0)
    )
    assert len(errors) == 4
    for e in errors:
        assert e.mean == pytest.approx(offset, abs=0.05)  # measured within 0.02
        assert e.spread == pytest.approx(e.noise, rel=0.2)  # a constant error: only the kNN's own scatter
        assert e.z.shape == (500, 2) and e.t.shape == e.truth.shape == (500,)


def test_t_error_needs_an_implicit_q_with_latent_size_2():
    gaussian_q = LatentVariableModel(TrainConfig(dataset="toy", q="gaussian", k=1, latent_dim=2).model_config())
    with pytest.raises(ValueError, match="only an implicit q"):
        discriminator_error(gaussian_q, toy_points())
    wide = LatentVariableModel(TrainConfig(dataset="toy", q="implicit", k=1, latent_dim=3).model_config())
    with pytest.raises(ValueError, match="latent size 2"):
        discriminator_error(wide, toy_points())
