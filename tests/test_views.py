"""What the pages show: views against known answers, figures that draw crisp and honest, the verdict."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

from iwavb.app.comparison import MethodScore, axis_effects, bound_note, named_gap, verdict
from iwavb.app.plots import (
    CurveSeries,
    bound_figure,
    image_rows_figure,
    latent_figure,
    posterior_figure,
    score_figure,
)
from iwavb.app.views import (
    BOUND_DRAWS,
    ModelScore,
    curves,
    exact_images,
    exact_log_px,
    image_shape,
    latent_projection,
    model_score,
    own_bound,
    posterior_view,
    viewing,
)
from iwavb.core.model import LatentVariableModel
from iwavb.data.splits import DataSplits, Split
from iwavb.data.toy import TOY_COLLAPSE_LOG_PX, toy_splits
from iwavb.evaluation.evaluate import EvalResult, evaluation_images, write_eval_result
from iwavb.training.config import TrainConfig
from iwavb.training.records import Record
from iwavb.training.trainer import Trainer


def toy_model(q: str = "gaussian", latent_dim: int = 2) -> LatentVariableModel:
    config = TrainConfig(dataset="toy", q=q, k=1, latent_dim=latent_dim)
    return LatentVariableModel(config.model_config()).eval()


def test_image_shape_draws_images_square_and_toy_points_as_a_row():
    assert image_shape(784) == (28, 28)
    assert image_shape(4) == (1, 4)


def collapsed_toy_model() -> LatentVariableModel:
    """A decoder that ignores z with p(x_d = 1 | z) = 1/4: independent pixels, log p(x) = TOY_COLLAPSE_LOG_PX."""
    model = toy_model()
    with torch.no_grad():
        for layer in model.decoder:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
        model.decoder[-1].bias.fill_(math.log(1 / 3))  # sigmoid(log(1/3)) = 1/4
    return model


def test_a_decoder_that_ignores_z_has_the_collapse_log_likelihood():
    x = exact_images(toy_splits())
    assert exact_log_px(collapsed_toy_model(), x) == pytest.approx(TOY_COLLAPSE_LOG_PX, abs=1e-3)


@pytest.mark.parametrize("k", [1, 10])
def test_own_bound_is_log_px_when_q_is_the_posterior(k):
    """z ignored: the posterior is the prior; with q = N(0, I) too, every weight is p(x), so the bound (2.9) is
    log p(x) exactly at any K. Moving q's mean off the posterior makes it a strict lower bound."""
    model = collapsed_toy_model()
    x = exact_images(toy_splits())
    with torch.no_grad():
        model.encoder.head.weight.zero_()
        model.encoder.head.bias.zero_()  # mean 0, log variance 0: q(z|x) = p(z) = p(z|x)
    assert own_bound(model, x, k) == pytest.approx(TOY_COLLAPSE_LOG_PX, abs=1e-5)
    with torch.no_grad():
        model.encoder.head.bias[:2].fill_(1.0)  # q's mean at (1, 1): KL(q || posterior) = |m|^2 / 2 = 1 nat
    # K = 1: the ELBO, log p(x) - KL; one draw's log w has s.d. |m| = 1.41, so 4,000 draws give s.e. 0.02
    assert own_bound(model, x, 1, draws=1000) == pytest.approx(TOY_COLLAPSE_LOG_PX - 1.0, abs=0.1)
    assert TOY_COLLAPSE_LOG_PX - 1.0 < own_bound(model, x, 10, draws=1000) < TOY_COLLAPSE_LOG_PX  # (2.9) tighter


@pytest.mark.parametrize("q", ["gaussian", "implicit"])
def test_posterior_view_weights_ess_and_bound_agree(q):
    view = posterior_view(toy_model(q), torch.tensor([1.0, 0, 0, 0]), k=16, n_samples=50, resolution=81)
    assert view.weights.shape == (16,) and view.weights.sum() == pytest.approx(1.0, abs=1e-5)
    assert 1.0 <= view.ess <= 16.0
    assert view.ess == pytest.approx(1 / np.sum(view.weights**2), rel=1e-4)  # Kish's ESS
    assert view.bound == pytest.approx(np.logaddexp.reduce(view.log_w) - math.log(16), abs=1e-4)
    cell = (view.z1[1] - view.z1[0]) * (view.z2[1] - view.z2[0])
    assert view.posterior.sum() * cell == pytest.approx(1.0, abs=1e-4)  # a density on the grid
    assert view.q_samples.shape == (50, 2) and view.iw_samples.shape == (16, 2)
    assert (view.t_error is None) == (q == "gaussian")  # T's error is shown for an implicit q


def test_latent_projection_is_the_raw_plane_for_l2_and_pca_above():
    data = toy_splits()
    raw = latent_projection(toy_model(latent_dim=2), data, n=40)
    assert raw.axis_titles == ("z1", "z2") and raw.points.shape == (40, 2) and len(raw.labels) == 40
    pca = latent_projection(toy_model(latent_dim=6), data, n=40)
    assert pca.points.shape == (40, 2) and pca.axis_titles[0].startswith("PC 1")
    assert np.abs(pca.points.mean(0)).max() < 1e-4  # principal components are centred


def test_viewing_holds_the_lock_and_restores_training_mode():
    from iwavb.training.trainer import Trainer

    trainer = Trainer(TrainConfig.for_method("vae", dataset="toy", latent_dim=2, steps=1, device="cpu"))
    trainer.model.train()
    with viewing(trainer) as model:
        assert trainer.lock.locked() and not model.training
    assert not trainer.lock.locked() and trainer.model.training


def test_curves_split_records_into_columns():
    history = [Record(10, -2.0, None, 1.2, 0.6, 5.0, 1.0), Record(20, -1.5, -1.6, 1.1, 0.7, 5.0, 2.0)]
    c = curves(history)
    assert c.step.tolist() == [10, 20] and c.valid_step.tolist() == [20] and c.valid_bound.tolist() == [-1.6]
    assert c.disc_accuracy.tolist() == [0.6, 0.7]


def test_images_are_upscaled_nearest_neighbour_into_crisp_blocks():
    rng = np.random.default_rng(0)
    images = rng.random((3, 784))
    fig = image_rows_figure([("a", images)], (28, 28), "t", width_px=400)
    png = base64.b64decode(fig.data[0].source.split(",", 1)[1])
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    scale = 400 // (3 * 29 + 1)
    assert pixels.shape == ((28 + 2) * scale, (3 * 29 + 1) * scale)
    block = pixels[scale : 2 * scale, scale : 2 * scale]  # the first image's top-left pixel
    assert block.min() == block.max() == round(images[0, 0] * 255)


def test_the_implicit_q_curve_is_labelled_as_an_objective_that_uses_t():
    c = curves([Record(10, -2.0, -2.1, None, None, 5.0, 1.0)])
    fig = bound_figure([CurveSeries("VAE", "vae", "gaussian", c), CurveSeries("AVB", "avb", "implicit", c)])
    names = [t.name for t in fig.data]
    assert "VAE: train bound" in names and "AVB: train objective (uses T)" in names


def test_the_truth_is_drawn_beside_the_objective_and_the_gap_named():
    """Records with log p(x) readings (exact here): a dashed log p(x) line, and at the last reading the gap to
    the run's own bound on the same images, named for the kind of q."""
    history = [
        Record(10, -2.0, -2.1, None, None, 5.0, 1.0),
        Record(20, -1.5, None, None, None, 5.0, 2.0, -1.4, None, -1.2),
    ]
    c = curves(history)
    assert c.truth_step.tolist() == [20] and c.exact and c.log_px_bound.tolist() == [-1.2]
    avb = bound_figure([CurveSeries("AVB", "avb", "implicit", c)])
    truth = next(t for t in avb.data if "exact log p(x)" in t.name)
    assert truth.y.tolist() == [-1.4] and truth.line.dash == "dash"
    assert any(a.text == "T's error: 0.20 nats" for a in avb.layout.annotations)  # objective 0.2 above log p(x)
    vae = bound_figure(
        [CurveSeries("VAE", "vae", "gaussian", curves([history[0], replace(history[1], log_px_bound=-1.7)]))]
    )
    assert any(a.text == "bound gap: 0.30 nats" for a in vae.layout.annotations)
    estimate = curves([replace(history[1], log_px_se=0.05)])
    assert not estimate.exact
    trace = next(t for t in bound_figure([CurveSeries("IWAE", "iwae", "gaussian", estimate)]).data if "IS" in t.name)
    assert trace.error_y.array.tolist() == [0.05]


def test_a_history_written_before_the_truth_fields_loads():
    old = {"step": 10, "train_bound": -2.0, "valid_bound": None, "disc_loss": None, "disc_accuracy": None}
    record = Record(**old, steps_per_s=5.0, elapsed_s=1.0)
    assert record.log_px is None and record.log_px_se is None and record.log_px_bound is None
    assert len(curves([record]).truth_step) == 0


def test_the_gap_is_named_for_the_kind_of_q():
    assert named_gap("gaussian", -1.4, -1.6).name == "bound gap" and named_gap(
        "gaussian", -1.4, -1.6
    ).nats == pytest.approx(0.2)
    assert named_gap("implicit", -1.4, -1.1).name == "T's error" and named_gap(
        "implicit", -1.4, -1.1
    ).nats == pytest.approx(0.3)
    assert named_gap("implicit", -1.4, -1.6).name == "gap"  # below log p(x): bound gap and T's error mixed


def test_latent_scatter_draws_without_webgl():
    projection = latent_projection(toy_model(), toy_splits(), n=20)
    assert all(isinstance(t, go.Scatter) for t in latent_figure(projection).data)


def test_a_better_score_gets_a_longer_bar_even_when_negative():
    fig = score_figure([MethodScore("vae", "A", -2.0), MethodScore("iwae", "B", -1.5)], "log p(x)")
    bar = fig.data[0]
    lengths = dict(zip(bar.y, bar.x))
    assert lengths["B"] > lengths["A"] > 0
    assert all(
        base + length == pytest.approx(v)
        for base, length, v in zip([bar.base] * 2, [lengths["A"], lengths["B"]], [-2.0, -1.5])
    )


def four_results() -> list[MethodScore]:
    return [
        MethodScore("vae", "VAE", -1.60, -1.70),
        MethodScore("iwae", "IWAE", -1.45, -1.50),
        MethodScore("avb", "AVB", -1.55, -1.20),
        MethodScore("iwavb", "IWAVB", -1.40, -1.45),
    ]


def test_axis_effects_are_differences_of_scores():
    effects = axis_effects(four_results())
    assert effects[0] == "**more samples K**: +0.150 nats (VAE → IWAE), +0.150 nats (AVB → IWAVB)"
    assert effects[1] == "**an implicit q**: +0.050 nats (VAE → AVB), +0.050 nats (IWAE → IWAVB)"


def test_verdict_names_the_winner_and_flags_an_objective_above_log_px():
    lines = verdict(four_results(), "exact log p(x)", toy=True)
    assert lines[0].startswith(":material/emoji_events: **IWAVB wins**") and "0.050 ahead of IWAE" in lines[0]
    assert "-1.386" in lines[1] and "IWAVB 98%" in lines[1]
    assert "no true bound can do that" in bound_note(four_results()[2])  # AVB's objective reads 0.35 too high
    assert "below log p(x)" in bound_note(four_results()[0])


def far_q_model(at: float = 6.0) -> LatentVariableModel:
    model = toy_model("gaussian")
    with torch.no_grad():  # q(z|x) = N((at, 0), 0.01 I) whatever x
        model.encoder.head.weight.zero_()
        model.encoder.head.bias.copy_(torch.tensor([at, 0.0, math.log(0.01), math.log(0.01)]))
    return model


def test_the_whole_prior_view_widens_to_hold_q_samples_far_out():
    view = posterior_view(
        far_q_model(), torch.tensor([0.0, 1, 0, 0]), k=4, n_samples=50, resolution=41, whole_prior=True
    )
    farthest = np.abs(view.q_samples).max()
    assert farthest > 5.5 and view.frame.z1[1] == math.ceil(farthest + 1)  # every sample inside, with a margin
    assert view.q_outside == 0 and view.zoom == pytest.approx(8 / view.frame.width)


def test_the_zoomed_view_keeps_the_posterior_large_when_q_is_far_off():
    """q sits at (30, 0), the posterior (as wide as the prior) at the origin: the frame keeps the posterior's 99%
    box at least a third of its width, and says how many of q's samples it leaves out."""
    view = posterior_view(far_q_model(30.0), torch.tensor([0.0, 1, 0, 0]), k=4, n_samples=50, resolution=41)
    assert max(view.mass_box.width, view.mass_box.height) >= view.frame.width / 3
    assert view.frame.contains(view.mass_box) and view.q_outside > 0.5
    figure = posterior_figure(view, "far q")
    assert "beyond this frame" in figure.layout.title.text
    assert list(figure.layout.xaxis.range) == list(view.frame.z1) and figure.layout.meta["posterior_mass_99"] == (
        view.mass_box.as_list()
    )


def test_the_posterior_image_sits_on_its_grid_top_row_first():
    """The posterior is a PNG laid on the axes: its corners are the grid's outer cell edges, and its first pixel
    row is the grid's largest z2 (a density that grows with z2 is dark at the top)."""
    view = posterior_view(toy_model(), torch.tensor([1.0, 0, 0, 0]), k=4, n_samples=20, resolution=21)
    view = replace(view, posterior=np.tile(np.linspace(0, 1, 21)[:, None], (1, 21)))  # grows with z2 (rows)
    image = posterior_figure(view, "t").layout.images[0]
    h1 = view.z1[1] - view.z1[0]
    assert image.x == pytest.approx(view.z1[0] - h1 / 2) and image.sizex == pytest.approx(21 * h1)
    assert image.y == pytest.approx(view.z2[-1] + (view.z2[1] - view.z2[0]) / 2) and image.yanchor == "top"
    pixels = np.array(Image.open(io.BytesIO(base64.b64decode(image.source.split(",", 1)[1]))))
    assert pixels.shape == (21, 21) and pixels[0, 0] < pixels[-1, 0] == 255  # dark top, white bottom


def test_a_saved_estimate_gets_the_bound_on_its_own_images_and_none_on_previews(tmp_path):
    """Compare sets each model's own bound beside its saved log p(x): on the estimate's seeded test images,
    which the shipped previews cannot stand in for."""
    images = Split((torch.rand(300, 784) * 255).to(torch.uint8), torch.zeros(300, dtype=torch.long))
    data = DataSplits("mnist", images, images, images, ("0",))
    config = TrainConfig.for_method("iwae", k=3, dataset="mnist", latent_dim=8, hidden=32, steps=1, device="cpu")
    trainer = Trainer(config, data=data)
    path = trainer.save(tmp_path / "run.safetensors")
    write_eval_result(
        path,
        EvalResult(
            estimator="is",
            nll=99.0,
            nll_se=1.0,
            n_images=50,
            seconds=1.0,
            seconds_per_1000=20.0,
            device="CPU",
            settings={"seed": 5},
            method="iwae",
            dataset="mnist",
            latent_dim=8,
            checkpoint=path.name,
            checkpoint_step=trainer.step,
            created="",
            library_version="",
            diagnostics={},
            log_px=(-99.0,) * 50,
        ),
    )

    score = model_score(trainer, path)
    assert (score.log_px, score.how) == (-99.0, "log p(x), is on 50 test images (seed 5)")
    with viewing(trainer) as model:
        expected = own_bound(model, evaluation_images(data, 50, 5), 3, draws=BOUND_DRAWS // 50)
    assert score.bound == pytest.approx(expected)

    trainer.data = replace(data, previews_only=True)
    assert model_score(trainer, path) == ModelScore(-99.0, "log p(x), is on 50 test images (seed 5)", None)
