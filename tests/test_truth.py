"""The truth beside the objective: zoomed grids against full ones on the shipped models, the IS standard
error against its spread over repeated draws, and the trainer's readings of log p(x) and their schedule."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import require_data

from iwavb.app.views import display_points, posterior_view
from iwavb.artefacts.pretrained import load_manifest
from iwavb.data.loading import load_dataset
from iwavb.evaluation.grid import PosteriorGrid, Window, latent_grid, posterior_grid, zoomed_grids
from iwavb.evaluation.importance import importance_log_px_with_error
from iwavb.evaluation.truth import TRUTH_RESOLUTION, truth_images, truth_probe
from iwavb.training import trainer as trainer_module
from iwavb.training.checkpoint import load_checkpoint
from iwavb.training.config import TrainConfig
from iwavb.training.records import Truth
from iwavb.training.trainer import TRUTH_FIRST_S, Trainer

MNIST_L2 = [e for e in load_manifest() if e.config.dataset == "mnist" and e.config.latent_dim == 2]
POINTS = 8  # first test points per shipped model; all of the first 100 were measured (below)


@pytest.fixture(scope="module")
def mnist_points() -> torch.Tensor:
    require_data("MNIST")
    images, _ = display_points(load_dataset("mnist"), POINTS)
    return (images > 0.5).float()


@pytest.mark.parametrize("entry", MNIST_L2, ids=lambda e: e.name)
def test_the_zoomed_grid_gives_the_full_grids_log_px(entry, mnist_points):
    """Each point's posterior on its own zoomed 101-point grid against the evaluation's 301-point grid over
    [-5, 5]^2: within 0.02 nats per image (on the first 100 test points: within 0.0005 of a 601-point grid,
    which itself differs from the 301-point grid by up to 0.009 where posteriors are narrowest)."""
    model = load_checkpoint(entry.file).build_model()
    zoomed = torch.cat([g.log_px for g in zoomed_grids(model, mnist_points)])
    full = posterior_grid(model, mnist_points, 5.0, 301).log_px
    assert (zoomed - full).abs().max() < 0.02, zoomed - full


@pytest.mark.parametrize("entry", MNIST_L2, ids=lambda e: e.name)
def test_the_view_frames_the_posterior_at_a_third_of_its_width_at_least(entry, mnist_points):
    """The box holding 99% of the posterior's mass (each axis) spans at least a third of the plot (on the first
    100 test points of each shipped model: at least 0.345, median 0.34 to 0.65)."""
    model = load_checkpoint(entry.file).build_model()
    for x in mnist_points[:3]:
        view = posterior_view(model, x, k=10)
        assert max(view.mass_box.width, view.mass_box.height) >= view.frame.width / 3
        assert view.frame.contains(view.mass_box) and view.zoom > 3  # these posteriors are narrow


@pytest.mark.parametrize("entry", MNIST_L2[:2], ids=lambda e: e.name)
def test_the_truth_grid_is_within_0_05_nats(entry, mnist_points):
    """The live truth's one TRUTH_RESOLUTION-point grid against zoomed grids: the mean over images within 0.01
    (measured on 100 images of each shipped model: 0.001) and each image within 0.1 (measured: 0.09)."""
    model = load_checkpoint(entry.file).build_model()
    zoomed = torch.cat([g.log_px for g in zoomed_grids(model, mnist_points)])
    shared = posterior_grid(model, mnist_points, resolution=TRUTH_RESOLUTION).log_px
    assert abs((shared - zoomed).mean()) < 0.01 and (shared - zoomed).abs().max() < 0.1


def test_a_mass_window_holds_the_mass_it_says():
    """N((1, -2), diag(0.3^2, 0.1^2)) as a 'posterior': its 99% window is the normal quantiles, to a cell."""
    z, z1, z2, area = latent_grid(Window.square(4), 401)
    log_density = torch.distributions.Normal(torch.tensor([1.0, -2.0]), torch.tensor([0.3, 0.1])).log_prob(z).sum(-1)
    log_density = log_density.view(1, 401, 401)
    grid = PosteriorGrid(Window.square(4), z1, z2, log_density, torch.zeros(1), log_density.exp(), area)
    box = grid.mass_window(0, 0.99)
    half = 2.5758  # the 99.5% quantile of N(0, 1)
    cell = 8 / 400
    assert box.z1 == pytest.approx((1 - half * 0.3, 1 + half * 0.3), abs=cell)
    assert box.z2 == pytest.approx((-2 - half * 0.1, -2 + half * 0.1), abs=cell)


def test_a_mass_window_of_known_cell_masses_is_exact():
    """Cells of 0.5 x 0.5 over [-2.5, 2.5]^2: a quarter of the mass in each of the z1 columns -1.5, -1, -0.5, 0
    and half in each of the z2 rows 2 and 2.5 (the grid's edge). The central half of each marginal runs from
    the cell that reaches 25% to the cell that reaches 75%, each widened by half a cell."""
    _, z1, z2, area = latent_grid(Window.square(2.5), 11)
    mass_z1, mass_z2 = torch.zeros(11), torch.zeros(11)
    mass_z1[2:6], mass_z2[9:] = 0.25, 0.5
    posterior = (mass_z2[:, None] * mass_z1[None, :] / area).unsqueeze(0)  # [b, i, j] at (z1[j], z2[i])
    grid = PosteriorGrid(Window.square(2.5), z1, z2, posterior.log(), torch.zeros(1), posterior, area)
    assert grid.mass_window(0, 0.5) == Window((-1.75, -0.25), (1.75, 2.75))
    assert grid.mass_window(0, 0.9) == Window((-1.75, 0.25), (1.75, 2.75))


def test_windows_pad_join_square_and_contain_as_rectangles_do():
    box = Window((0.0, 1.0), (2.0, 4.0))
    assert box.padded(0.5) == Window((-0.5, 1.5), (1.5, 4.5))
    assert box.padded(0.5, 1.0) == Window((-0.5, 1.5), (1.0, 5.0))
    assert box.union(Window((-1.0, 0.5), (3.0, 5.0))) == Window((-1.0, 1.0), (2.0, 5.0))
    assert Window((-1.0, 0.5), (3.0, 5.0)).union(box) == Window((-1.0, 1.0), (2.0, 5.0))
    assert box.squared() == Window((-0.5, 1.5), (2.0, 4.0)) and Window((0.0, 3.0), (0.0, 1.0)).squared() == Window(
        (0.0, 3.0), (-1.0, 2.0)
    )
    assert box.contains(box) and box.padded(0.1).contains(box) and not box.contains(box.padded(0.1))
    for outside in [
        ((-0.1, 1.0), (2.0, 4.0)),
        ((0.0, 1.1), (2.0, 4.0)),
        ((0.0, 1.0), (1.9, 4.0)),
        ((0.0, 1.0), (2.0, 4.1)),
    ]:
        assert not box.contains(Window(*outside)), outside


def test_the_is_standard_error_is_the_spread_of_the_estimate():
    """log-weights ~ N(0, 1): over 300 repetitions of k = 1,000 draws, the s.d. of the estimate matches the
    delta-method standard error sqrt(1/ESS - 1/k) of each one (its mean), within 15%."""
    gen = torch.Generator().manual_seed(0)
    estimate, error = importance_log_px_with_error(lambda n: torch.randn(300, n, generator=gen), 1_000, 250)
    assert estimate.std().item() == pytest.approx(error.mean().item(), rel=0.15)
    assert estimate.mean().item() == pytest.approx(0.5, abs=0.02)  # log E[e^w] = 1/2 for w ~ N(0, 1)
    same, none = importance_log_px_with_error(lambda n: torch.zeros(2, n), 100, 30)
    assert same.tolist() == [0.0, 0.0] and none.tolist() == [0.0, 0.0]  # equal weights: no error


def toy_trainer(method: str = "avb", steps: int = 100, latent: int = 2) -> Trainer:
    config = TrainConfig.for_method(method, dataset="toy", latent_dim=latent, steps=steps, log_every=50)
    data = load_dataset("toy")
    return Trainer(config, data=data, truth=truth_probe(config, data))


def test_the_last_record_holds_the_exact_log_px_and_the_bound_on_the_same_points():
    trainer = toy_trainer()
    records = list(trainer.run())
    last = records[-1]
    with torch.no_grad():
        exact = posterior_grid(trainer.model.eval(), torch.eye(4), resolution=TRUTH_RESOLUTION).log_px.mean().item()
    assert last.log_px == pytest.approx(exact, abs=1e-5) and last.log_px_se is None
    assert last.log_px_bound is not None and math.isfinite(last.log_px_bound)
    assert trainer.truth_seconds > 0 and records[0].log_px is None  # the first reading waits TRUTH_FIRST_S


def test_above_latent_size_2_the_reading_is_an_estimate_with_its_standard_error():
    trainer = toy_trainer("iwae", steps=50, latent=3)
    record = list(trainer.run())[-1]
    assert record.log_px is not None and record.log_px_se is not None and 0 <= record.log_px_se < 0.5
    assert record.log_px_bound is not None


def test_the_truth_waits_ten_times_its_cost_in_training_time(monkeypatch):
    """The schedule, fed training seconds by hand, on a clock that moves 0.05 s per reading: a reading that
    costs 0.05 s is not repeated before 0.5 s more of training, and the last step always gets one."""
    calls = []
    clock = iter(0.05 * n for n in range(100))
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: next(clock))

    def probe(model) -> Truth:
        calls.append(model.training)
        return Truth(-1.0, None, -1.5)

    trainer = toy_trainer()
    trainer.truth = probe
    assert trainer._measure_truth(TRUTH_FIRST_S / 2, last=False) is None
    assert trainer._measure_truth(TRUTH_FIRST_S / 2, last=False) == Truth(-1.0, None, -1.5)
    assert trainer._measure_truth(0.45, last=False) is None  # cost >= 0.05 s: the wait is >= 0.5 s
    assert trainer._measure_truth(0.45, last=True) is not None  # the last step: always
    assert trainer._measure_truth(100.0, last=False) is not None
    assert calls == [False, False, False]  # measured in eval mode
    assert trainer.truth_seconds == pytest.approx(0.15)  # three readings of 0.05 s, counted from 0


def test_the_truth_subset_is_fixed():
    data = load_dataset("toy")
    assert torch.equal(truth_images(data, 2), torch.eye(4))
    assert truth_probe(TrainConfig(dataset="toy", latent_dim=2), data) is not None
