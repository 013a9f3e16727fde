"""The 2x2 grid of methods and the validation of settings."""

from __future__ import annotations

import pytest

from iwavb.core.config import method_grid_point, method_name
from iwavb.training.config import PAPER_DISC_LR, PAPER_LR, TrainConfig


@pytest.mark.parametrize(
    "q,k,name", [("gaussian", 1, "vae"), ("gaussian", 5, "iwae"), ("implicit", 1, "avb"), ("implicit", 10, "iwavb")]
)
def test_the_four_methods_are_a_grid(q, k, name):
    assert method_name(q, k) == name
    assert method_grid_point(name, k) == (q, k)


def test_k_must_fit_the_method():
    with pytest.raises(ValueError, match="VAE uses K = 1"):
        method_grid_point("vae", 5)
    with pytest.raises(ValueError, match="IWAVB needs K >= 2"):
        TrainConfig.for_method("iwavb", k=1)
    assert TrainConfig.for_method("iwae").k == 10


def test_defaults_resolve_by_data_set_and_family():
    toy = TrainConfig.for_method("avb", dataset="toy")
    assert (toy.hidden, toy.noise_dim) == (64, 64)
    conv = TrainConfig.for_method("iwavb", family="conv")
    assert (conv.lr, conv.disc_lr) == (PAPER_LR, PAPER_DISC_LR)  # the paper's rates, section 5
    assert TrainConfig(lr=0.01).lr == 0.01


def test_bad_settings_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="conv family needs 28x28"):
        TrainConfig.for_method("vae", dataset="toy", family="conv")
    with pytest.raises(ValueError, match="unknown data set"):
        TrainConfig(dataset="cifar")
    with pytest.raises(ValueError, match="steps must be a whole number at least 1, got 0"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="training settings: unknown field colour"):
        TrainConfig.from_dict({"colour": "red"})


def test_round_trip_through_a_dict():
    config = TrainConfig.for_method("iwae", k=5, dataset="fashion", latent_dim=32)
    assert TrainConfig.from_dict(config.to_dict()) == config
