"""Adaptive contrast (AC) against known answers: (AC.1)-(AC.5) of iwavb/core/bounds.py."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from iwavb.artefacts.pretrained import ManifestEntry
from iwavb.artefacts.results import results_table
from iwavb.cli import main
from iwavb.core.bounds import (
    CONTRAST_JITTER,
    discriminator_loss,
    discriminator_samples,
    iw_bound,
    log_weights,
)
from iwavb.core.config import ModelConfig
from iwavb.core.model import LatentVariableModel, log_prior
from iwavb.core.nets import ContrastEncoder, Discriminator, ImplicitEncoder, contrast_basis_size
from iwavb.training.checkpoint import META_KEY, load_checkpoint
from iwavb.training.config import TrainConfig
from iwavb.training.runs import run_name
from iwavb.training.trainer import Trainer

DATA, LATENT = 12, 3


def ac_model(latent_dim: int = LATENT, seed: int = 0) -> LatentVariableModel:
    torch.manual_seed(seed)
    config = ModelConfig(data_dim=DATA, latent_dim=latent_dim, hidden=16, noise_dim=4, contrast="adaptive")
    model = LatentVariableModel(config)
    with torch.no_grad():  # coefficients a_i(x) of order 1 (AVB's start, about e^-5, makes q nearly a point)
        model.encoder.coefficients.bias.fill_(5.0)
        model.encoder.z0.weight.normal_(0, 0.5)
    return model


def images(n: int) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, DATA), 0.4), generator=torch.Generator().manual_seed(n))


class FirstCoordinates(nn.Module):
    """v_i(e_i) = the first l coordinates of e_i: then z = z0 + sum_i a_i v_i is exactly Gaussian,
    N(z0, diag sum_i a_i^2), and its log-density is known."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return e[..., : self.latent_dim]  # (N, n, l)


def gaussian_ac_model() -> LatentVariableModel:
    model = ac_model()
    model.encoder.basis = FirstCoordinates(LATENT)
    return model


def exact_gaussian_q(encoder: ContrastEncoder, x: torch.Tensor) -> torch.distributions.Normal:
    """The true q(z|x) of `gaussian_ac_model`: N(z0(x), sum_i a_i(x)^2), per coordinate."""
    feats = encoder.features(x)
    a = torch.nn.functional.elu(encoder.coefficients(feats).view(x.shape[0], -1, LATENT) - 5.0) + 1.0
    return torch.distributions.Normal(encoder.z0(feats), a.pow(2).sum(1).sqrt())


class ExactT(nn.Module):
    """The optimal T of (AC.3) for the Gaussian q above: log q_u(u|x) - log N(u; 0, I), where u = (z - m)/s
    and z ~ N(mu, sigma^2), so u ~ N((mu - m)/s, sigma^2/s^2). Same call signature as Discriminator."""

    def __init__(self, q: torch.distributions.Normal, mean: torch.Tensor, var: torch.Tensor):
        super().__init__()
        s = torch.sqrt(var + CONTRAST_JITTER)
        self.q_u = torch.distributions.Normal(((q.mean - mean) / s).unsqueeze(1), (q.stddev / s).unsqueeze(1))

    def x_part(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(x.shape[0], 1), torch.zeros(x.shape[0])

    def forward(self, x: torch.Tensor, u: torch.Tensor, x_part: object = None) -> torch.Tensor:
        return self.q_u.log_prob(u).sum(-1) - log_prior(u)  # (B, K)


def test_closed_form_moments_match_the_sample_moments_of_q():
    """E[z|x] = z0 + sum a_i E[v_i], Var[z|x] = sum a_i^2 Var[v_i] (nets.ContrastEncoder), against the mean
    and variance of independent draws of q for the same images."""
    model = ac_model()
    x = images(4)
    with torch.no_grad():
        moments = model.sample_q(x, 2_000, torch.Generator().manual_seed(1)).moments
        z = model.sample_q(x, 20_000, torch.Generator().manual_seed(2)).z  # (B, K, l), other draws
    assert moments is not None
    sample_mean, sample_var = z.mean(1), z.var(1)
    se = (sample_var / z.shape[1]).sqrt() + (moments.var / 8_000).sqrt()  # both means are estimates
    assert ((moments.mean - sample_mean).abs() < 4 * se).all(), (moments.mean, sample_mean)
    assert torch.allclose(moments.var, sample_var, rtol=0.06), (moments.var, sample_var)
    assert (sample_var > 0.01).all()  # a q of real width, not a point


def test_moments_are_fixed_and_z_carries_the_gradient():
    model = ac_model()
    sample = model.sample_q(images(2), 3)
    assert sample.moments is not None and sample.log_q is None
    assert not sample.moments.mean.requires_grad and not sample.moments.var.requires_grad  # stop-gradient
    assert sample.z.requires_grad


def test_a_single_image_still_gets_moments_from_many_draws():
    """One image and K = 1 (the Posteriors page, a reconstruction): the moments of v_i come from at least
    MOMENT_DRAWS draws, so the variance is not that of one draw (zero)."""
    model = ac_model()
    moments = model.sample_q(images(1), 1).moments
    assert moments is not None and (moments.var > 0.01).all()


def test_the_basis_follows_avb():
    model = LatentVariableModel(ModelConfig(latent_dim=8, contrast="adaptive", family="mlp"))
    assert isinstance(model.encoder, ContrastEncoder)
    assert model.encoder.n_basis == contrast_basis_size(8) == 16  # AVB: 16 basis vectors for l = 8
    assert contrast_basis_size(32) == 32
    assert [tuple(w.shape) for w in model.encoder.basis.weights] == [
        (16, 32, 128),
        (16, 128, 128),
        (16, 128, 128),
        (16, 128, 8),
    ]


def test_for_a_gaussian_q_the_optimal_t_is_nearly_zero_and_the_weight_is_exact():
    """q Gaussian: the AC weight (AC.5) with the optimal T of (AC.3) equals the exact importance weight
    log p(x|z) + log p(z) - log q(z|x), and that T is zero up to the error of the moments' estimate,
    while without AC the optimal T, log q - log p, is several nats."""
    model = gaussian_ac_model()
    x = images(5)
    with torch.no_grad():
        moments = model.sample_q(x, 4_000, torch.Generator().manual_seed(3)).moments
        assert moments is not None
        q = exact_gaussian_q(model.encoder, x)
        model.discriminator = ExactT(q, moments.mean, moments.var)  # type: ignore[assignment]
        w = log_weights(model, x, 4_000, torch.Generator().manual_seed(3))  # the same draws, the same moments
        exact = w.log_px_given_z + log_prior(w.z) - q.log_prob(w.z.transpose(0, 1)).sum(-1).T
        t_star = model.discriminator(x, w.t_input)
    assert torch.allclose(w.log_w, exact, atol=1e-4)
    assert t_star.abs().mean() < 0.02, t_star.abs().mean()
    no_contrast = (q.log_prob(w.z.transpose(0, 1)).sum(-1).T - log_prior(w.z)).abs().mean()
    assert no_contrast > 1.0, no_contrast


def test_k1_is_avbs_objective_with_adaptive_contrast():
    """K = 1: the bound is AVB+AC's ELBO as AVB's code writes it, log p(x|z) - KL with KL = Td + log r - log p,
    Td = T(x, (z - m)/s) and r = N(m, s^2): written here independently of bounds.py."""
    model = ac_model()
    x = images(6)
    with torch.no_grad():
        w = log_weights(model, x, 1, torch.Generator().manual_seed(4))
        sample = model.sample_q(x, 1, torch.Generator().manual_seed(4))  # the same draws
        assert sample.moments is not None and torch.equal(sample.z, w.z)
        std = torch.sqrt(sample.moments.var + 1e-4)
        z = sample.z[:, 0]  # (B, l)
        z_norm = (z - sample.moments.mean) / std
        t_d = model.discriminator(x, z_norm.unsqueeze(1))[:, 0]
        log_r = torch.distributions.Normal(sample.moments.mean, std).log_prob(z).sum(-1)
        log_z = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        elbo = w.log_px_given_z[:, 0] - (t_d + log_r - log_z)
    assert torch.allclose(iw_bound(w.log_w), elbo, atol=1e-4)
    assert torch.allclose(w.t_input[:, 0], z_norm, atol=1e-6)


def train_discriminator(model: LatentVariableModel, steps: int) -> tuple[float, float]:
    """(2.14) on the samples T sees; returns (loss, mean T over fresh samples of q) at the end."""
    disc = model.discriminator
    assert disc is not None
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(5)
    for _ in range(steps):
        x = images(64)
        loss = discriminator_loss(disc, x, discriminator_samples(model, x, 4, generator), generator).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = images(256)
    with torch.no_grad():
        return loss.item(), disc(x, discriminator_samples(model, x, 8, generator)).mean().item()


@pytest.mark.slow
def test_trained_t_under_ac_finds_nothing_to_tell_apart_for_a_gaussian_q():
    """(2.14) trained on a Gaussian q with AC: q's normalised samples are N(0, I) like the contrast's, so T
    is left at chance (loss 2 log 2) and its mean on q's samples, the KL estimate of (AC.3), is near zero;
    the same q and T without AC learn log q - log p, several nats."""
    model = gaussian_ac_model()
    model.discriminator = Discriminator(ModelConfig(data_dim=DATA, latent_dim=LATENT, hidden=32))
    loss, mean_t = train_discriminator(model, 400)
    assert abs(loss - 2 * math.log(2)) < 0.05, loss
    assert abs(mean_t) < 0.15, mean_t


def test_the_trainer_gives_t_the_normalised_samples():
    """In training, (2.14) sees u = (z - m)/s: about zero mean and unit variance per image under AC."""
    config = TrainConfig.for_method("iwavb", k=50, dataset="toy", latent_dim=2, contrast="adaptive", device="cpu")
    model = LatentVariableModel(config.model_config())
    with torch.no_grad():
        model.encoder.coefficients.bias.fill_(5.0)
        w = log_weights(model, torch.eye(4), config.k)
    u = w.t_input  # (4, 50, 2)
    assert u.mean(1).abs().max() < 0.6 and (u.var(1) - 1).abs().max() < 0.6
    assert (w.z.var(1) - 1).abs().max() > 0.5 or w.z.mean(1).abs().max() > 0.6  # z itself is not normalised


def test_fresh_samples_for_t_are_what_the_bound_gives_t_under_the_same_draws():
    """The trainer's second and later T updates draw fresh samples (`discriminator_samples`): with the same
    random stream they are exactly the bound's `t_input`, u under AC and z without it, detached."""
    for contrast in ("adaptive", "none"):
        plain = ModelConfig(data_dim=DATA, latent_dim=LATENT, hidden=16, noise_dim=4)  # implicit q, no AC
        model = ac_model() if contrast == "adaptive" else LatentVariableModel(plain)
        x = images(5)
        fresh = discriminator_samples(model, x, 3, torch.Generator().manual_seed(7))
        with torch.no_grad():
            w = log_weights(model, x, 3, torch.Generator().manual_seed(7))
        assert fresh.shape == (5, 3, LATENT) and not fresh.requires_grad
        assert torch.equal(fresh, w.t_input), contrast
        assert torch.equal(fresh, w.z) == (contrast == "none")


def test_adaptive_contrast_is_for_an_implicit_q():
    with pytest.raises(ValueError, match="implicit q"):
        TrainConfig.for_method("iwae", contrast="adaptive")
    with pytest.raises(ValueError, match="contrast"):
        ModelConfig(contrast="sometimes")  # type: ignore[arg-type]
    assert TrainConfig.for_method("avb", contrast="adaptive").title == "AVB + AC"


def test_an_ac_run_trains_from_the_cli_and_its_checkpoint_says_so(tmp_path, capsys):
    out = tmp_path / "ac.safetensors"
    args = ["train", "--data", "toy", "--method", "iwavb", "--k", "3", "--latent", "2", "--contrast", "adaptive"]
    assert main([*args, "--steps", "20", "--eval-every", "10", "--threads", "1", "--out", str(out)]) == 0
    assert "IWAVB + AC on toy" in capsys.readouterr().out
    loaded = load_checkpoint(out)
    assert loaded.config.contrast == "adaptive"
    assert isinstance(loaded.build_model().encoder, ContrastEncoder)
    assert run_name(loaded.config) == "toy-iwavb-ac-k3-l2-mlp-s0"


def test_a_checkpoint_from_before_adaptive_contrast_loads_as_none(tmp_path):
    """Files written before the contrast and accelerate settings existed have neither in their config."""
    trainer = Trainer(TrainConfig.for_method("avb", dataset="toy", latent_dim=2, steps=2, device="cpu"))
    path = trainer.save(tmp_path / "new.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = json.loads(f.metadata()[META_KEY]), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- safe_open is not iterable
    for name in ("contrast", "accelerate"):
        del meta["config"][name]
    old = tmp_path / "old.safetensors"
    old.write_bytes(save(tensors, metadata={META_KEY: json.dumps(meta)}))
    loaded = load_checkpoint(old)
    assert loaded.config.contrast == "none" and loaded.config.accelerate == "auto"
    assert isinstance(loaded.build_model().encoder, ImplicitEncoder)


def test_results_rows_name_the_contrast():
    entry = ManifestEntry("mnist-iwavb-ac", "IWAVB with AC", TrainConfig.for_method("iwavb", contrast="adaptive"))
    assert "| IWAVB + AC | 8 | 10 |" in results_table([entry])
