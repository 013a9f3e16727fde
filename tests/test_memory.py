"""Memory read from the networks on the meta device, the sizes of evaluation calls it sets, and AIS's
extrapolated time (iwavb/core/footprint.py, iwavb/training/memory.py, iwavb/evaluation/ais_timing.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from iwavb.core.bounds import discriminator_loss, iw_bound, log_weights
from iwavb.core.config import ModelConfig
from iwavb.core.footprint import PeakTensorMemory, log_joint_bytes_per_latent, step_peak_bytes
from iwavb.core.model import LatentVariableModel, log_prior
from iwavb.evaluation.ais import AISConfig, ais_images_per_call
from iwavb.evaluation.ais_timing import AISTiming, time_ais
from iwavb.evaluation.evaluate import DEFAULT_BATCH, EvalSettings, images_per_batch
from iwavb.evaluation.importance import CPU_POINTS, points_per_call
from iwavb.training.config import TrainConfig
from iwavb.training.memory import training_bytes

CPU = torch.device("cpu")


@pytest.mark.parametrize("q, contrast", [("gaussian", "none"), ("implicit", "none"), ("implicit", "adaptive")])
def test_the_meta_estimate_is_the_peak_of_a_real_step(q, contrast):
    """The same objectives on real tensors (CPU) and on meta tensors hold the same bytes at their peak."""
    config = ModelConfig(data_dim=40, latent_dim=3, q=q, hidden=24, noise_dim=5, contrast=contrast)
    model = LatentVariableModel(config)
    x = torch.bernoulli(torch.full((16, 40), 0.5))
    with PeakTensorMemory() as real:
        weights = log_weights(model, x, 4)
        iw_bound(weights.log_w).mean().backward()
        if model.discriminator is not None:
            discriminator_loss(model.discriminator, x, weights.t_input.detach()).loss.backward()
    estimate = step_peak_bytes(config, 16, 4)
    assert real.peak * 0.95 <= estimate <= real.peak * 1.05, (estimate, real.peak)


def test_the_log_joint_estimate_is_the_peak_of_a_real_gradient():
    config = ModelConfig(data_dim=40, latent_dim=3, q="gaussian", hidden=24)
    model = LatentVariableModel(config).eval()
    z = torch.zeros(1, 64, 3, requires_grad=True)
    with PeakTensorMemory() as real:
        log_p = model.log_px_given_z(torch.zeros(1, 40), z) + log_prior(z)
        torch.autograd.grad(log_p.sum(), z)
    assert log_joint_bytes_per_latent(config) == pytest.approx(real.peak / 64, rel=0.05)


def test_a_runs_memory_grows_with_its_work():
    small = training_bytes(TrainConfig.for_method("iwavb", k=2, batch_size=32))
    assert training_bytes(TrainConfig.for_method("iwavb", k=10, batch_size=32)) > small
    assert training_bytes(TrainConfig.for_method("iwavb", k=2, batch_size=128)) > small
    conv = training_bytes(TrainConfig.for_method("iwavb", k=10, family="conv"))
    assert conv > 10 * training_bytes(TrainConfig.for_method("iwavb", k=10))  # AVB's networks: gigabytes
    assert 2**30 < conv < 40 * 2**30


def test_evaluation_calls_are_sized_by_the_models_memory():
    """An mlp model meets the CPU's cap of latents per call; a conv one (megabytes per latent) is held below."""
    mlp, conv = ModelConfig(), ModelConfig(family="conv")
    assert points_per_call(CPU, mlp) == CPU_POINTS
    assert 16 < points_per_call(CPU, conv) < 2_000
    model = LatentVariableModel(mlp)
    ais = EvalSettings(estimator="ais", chains=8)
    assert images_per_batch(model, ais, CPU) == ais_images_per_call(model, CPU, ais.ais_config()) == CPU_POINTS // 8
    assert images_per_batch(model, EvalSettings(estimator="is"), CPU) == DEFAULT_BATCH
    assert images_per_batch(model, EvalSettings(estimator="ais", batch_size=7), CPU) == 7


def test_ais_time_is_extrapolated_linearly_in_distributions_and_chunks():
    """seconds(T) = a + b T per chunk, from two measured T; the full run is ceil(images / chunk) chunks."""
    timing = AISTiming(chunk_images=100, chains=8, steps=(10, 30), seconds=(2.0, 4.0))
    assert timing.per_distribution_s == pytest.approx(0.1) and timing.start_s == pytest.approx(1.0)
    assert timing.chunk_seconds(1000) == pytest.approx(101.0)
    assert timing.seconds_for(10_000, 1000) == pytest.approx(100 * 101.0)
    assert timing.seconds_for(10_001, 1000) == pytest.approx(101 * 101.0)  # the last, partial chunk counts whole
    assert timing.images_per_s(1000) == pytest.approx(100 / 101.0)


def test_time_ais_measures_one_chunk():
    model = LatentVariableModel(ModelConfig(data_dim=20, latent_dim=2, q="gaussian", hidden=8))
    x = torch.bernoulli(torch.full((5, 20), 0.5))
    timing = time_ais(model, x, AISConfig(chains=2, leapfrog=2), steps=(2, 4))
    assert timing.chunk_images == 5 and timing.chains == 2 and timing.steps == (2, 4)
    assert all(s > 0 for s in timing.seconds)
    with pytest.raises(ValueError, match="two numbers"):
        time_ais(model, x, AISConfig(), steps=(4, 4))


def test_the_warm_up_imports_what_start_would_wait_for():
    """In a fresh interpreter, the app's warm-up thread imports torch._dynamo (the meta estimate's), the page's
    modules and scikit-learn's PCA (the latent plane's), none of which `import iwavb.app.warm_up` imports."""
    script = (
        "import sys\n"
        "from iwavb.app.warm_up import warm_up_in_background\n"
        "wanted = ('torch._dynamo', 'sklearn.decomposition', 'colorsys')\n"
        "before = [m for m in wanted if m in sys.modules]\n"
        "warm_up_in_background(('colorsys',)).join()\n"
        "print(before, [m for m in wanted if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["[]", "['torch._dynamo',", "'sklearn.decomposition',", "'colorsys']"], done.stderr
