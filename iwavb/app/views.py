"""What the app's pages show, computed from a model as plain numpy arrays (no Streamlit, no plotting).

Every function takes the model as it is; to look at a model that a job is training, wrap the calls
in `viewing(trainer)`, which holds the trainer's lock and evaluation mode for that time only.
Draws use their own seeded generator, so a view never disturbs a run's random stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..artefacts.catalog import eval_log_px
from ..core.bounds import effective_sample_size, iw_bound, log_weights, mean_bound
from ..core.model import LatentVariableModel, eval_mode
from ..data.splits import FIXED_SEED, DataSplits, binarize
from ..data.toy import toy_points
from ..evaluation.discriminator import DiscriminatorError, discriminator_error
from ..evaluation.evaluate import EvalSettings, estimate_log_px, evaluation_images
from ..evaluation.grid import Window, posterior_grid, zoomed_grids
from ..training.records import Record

if TYPE_CHECKING:
    from pathlib import Path

    from ..training.trainer import Trainer

MAX_EXTENT = 8.0  # the whole-prior view never reaches beyond |z| = 8, 8 prior standard deviations


@contextmanager
def viewing(trainer: Trainer) -> Iterator[LatentVariableModel]:
    """The trainer's model in eval mode, with training held off until the block ends."""
    with trainer.lock, eval_mode(trainer.model) as model:
        yield model


def image_shape(data_dim: int) -> tuple[int, int]:
    """How one data point is drawn: 28x28 for the image sets, a row of 4 cells for the toy."""
    side = math.isqrt(data_dim)
    return (side, side) if side * side == data_dim and side > 2 else (1, data_dim)


def _device(model: LatentVariableModel) -> torch.device:
    return next(model.parameters()).device


def _generator(model: LatentVariableModel, seed: int) -> torch.Generator:
    return torch.Generator(_device(model)).manual_seed(seed)


def display_points(data: DataSplits, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n distinct test points (grey levels 0..1 (n, D)) and their labels: fixed across views."""
    images, labels = data.test.images, data.test.labels
    if data.name == "toy":  # the test set repeats the four points
        images, labels = data.train.images, data.train.labels
    return images[:n].float().cpu() / 255.0, labels[:n].cpu()


@torch.no_grad()
def reconstructions(model: LatentVariableModel, images: torch.Tensor, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grey-level inputs (n, D) and the mean image of one z ~ q(z|x) each, for a binarised copy of the input."""
    gen = _generator(model, seed)
    x = binarize(images.to(_device(model)) * 255, gen)  # (n, D) a binary draw, as in training
    return images.numpy(), model.reconstruct(x, gen).cpu().numpy()


@torch.no_grad()
def prior_samples(model: LatentVariableModel, n: int, seed: int = 0) -> np.ndarray:
    """Mean images (n, D) of z ~ p(z): what the decoder has learnt to generate."""
    return model.sample_images(n, _generator(model, seed)).cpu().numpy()


def preview_rows(model: LatentVariableModel, data: DataSplits, n: int = 8) -> list[tuple[str, np.ndarray]]:
    """What a model does, as labelled rows of images: n test images, their reconstructions, n prior samples."""
    originals, recon = reconstructions(model, display_points(data, n)[0])
    return [("test images", originals), ("reconstructions", recon), ("samples from p(z)", prior_samples(model, n))]


@dataclass(frozen=True)
class LatentProjection:
    points: np.ndarray  # (N, 2)
    labels: np.ndarray  # (N,)
    label_names: tuple[str, ...]
    axis_titles: tuple[str, str]
    note: str  # how the points were made, in words


@torch.no_grad()
def latent_projection(model: LatentVariableModel, data: DataSplits, n: int = 1_000, seed: int = 0) -> LatentProjection:
    """Test points in the latent space: one z ~ q(z|x) each; for l > 2 their first two principal components."""
    gen = _generator(model, seed)
    images, labels = data.test.images[:n], data.test.labels[:n]
    x = binarize(images.to(_device(model)), gen)  # (N, D)
    z = model.sample_q(x, 1, gen)[0][:, 0].cpu().numpy()  # (N, l)
    l = z.shape[1]
    if l <= 2:
        points = z if l == 2 else np.column_stack([z[:, 0], np.zeros(len(z))])
        return LatentProjection(
            points, labels.cpu().numpy(), data.label_names, ("z1", "z2"), "z ~ q(z|x), one per test point"
        )
    from sklearn.decomposition import PCA  # imported here: scikit-learn takes seconds to import

    pca = PCA(n_components=2).fit(z)
    share = pca.explained_variance_ratio_
    return LatentProjection(
        pca.transform(z),
        labels.cpu().numpy(),
        data.label_names,
        (f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%})"),
        f"z ~ q(z|x) in {l} dimensions, projected on their first two principal components",
    )


PRIOR_EXTENT = 4.0  # the whole-prior view shows [-4, 4]^2, 4 prior standard deviations each way
VIEW_MASS = 0.999  # a zoomed view frames this much of the true posterior's mass (each axis)...
Q_QUANTILES = (0.01, 0.99)  # ...and q's samples between these quantiles (each axis): stray ones do not zoom out
VIEW_MARGIN = 0.1  # of the framed width, added on each side
MASS_SHOWN = 0.99  # the mass box a figure records (layout.meta), so a test can check the framing
MAX_FRAME = 2.9  # a zoomed frame is at most this many times the MASS_SHOWN box's longer side: a q much wider
# than the posterior (IWAE's often is) reaches beyond the frame rather than shrink the posterior to a dot


@dataclass(frozen=True)
class PosteriorView:
    z1: np.ndarray  # (G,) grid coordinates along z1 of the (zoomed) grid
    z2: np.ndarray  # (G,) along z2
    posterior: np.ndarray  # (G, G) true p(z|x) of this model's decoder; [i, j] at z = (z1[j], z2[i])
    log_px: float  # exact log p(x) by the grid
    frame: Window  # the part of the plane the plot shows
    mass_box: Window  # the box holding MASS_SHOWN of the true posterior's mass on each axis
    zoom: float  # how much closer than the whole prior's view [-4, 4]^2: 8 / the frame's width
    q_samples: np.ndarray  # (S, 2) draws from q(z|x): the cloud
    q_outside: float  # the share of them outside the frame
    iw_samples: np.ndarray  # (K, 2) the K importance samples of one bound evaluation
    log_w: np.ndarray  # (K,) their log-weights (with T for an implicit q)
    weights: np.ndarray  # (K,) normalised weights, summing to 1
    ess: float  # effective sample size of the K weights, in [1, K]
    bound: float  # log (1/K) sum w: the bound (or objective) of this draw
    t_error: DiscriminatorError | None  # an implicit q: T against log q - log p (kNN) at q's samples


def _sample_box(z: torch.Tensor) -> Window:
    """The box between Q_QUANTILES of samples z (S, 2) on each axis."""
    low, high = torch.quantile(z.double(), torch.tensor(Q_QUANTILES, dtype=torch.float64), dim=0).tolist()
    return Window((low[0], high[0]), (low[1], high[1]))


def _within(frame: Window, keep: Window, side: float) -> Window:
    """A square of `side` as near the centre of `frame` as it can be while it holds `keep`."""
    centre = [min(max(c, high - side / 2), low + side / 2) for c, (low, high) in zip(frame.center, (keep.z1, keep.z2))]
    return Window.square(side / 2, (centre[0], centre[1]))


def _frame(mass: Window, core: Window, cloud: torch.Tensor, whole_prior: bool) -> Window:
    """What the plot shows: the posterior's mass and q's samples, at most MAX_FRAME times the posterior's `core`
    box; or the whole prior's square (widened, up to MAX_EXTENT, to hold all of q's samples with a margin of 1)."""
    if whole_prior:
        return Window.square(min(max(PRIOR_EXTENT, math.ceil(float(cloud.abs().max()) + 1)), MAX_EXTENT))
    box = mass.union(_sample_box(cloud))
    frame = box.padded(VIEW_MARGIN * box.width, VIEW_MARGIN * box.height).squared()
    side = MAX_FRAME * max(core.width, core.height)
    return frame if frame.width <= side else _within(frame, mass, side)


def _share_outside(frame: Window, z: torch.Tensor) -> float:
    inside = (z[:, 0] >= frame.z1[0]) & (z[:, 0] <= frame.z1[1]) & (z[:, 1] >= frame.z2[0]) & (z[:, 1] <= frame.z2[1])
    return 1.0 - float(inside.float().mean())


@torch.no_grad()
def posterior_view(
    model: LatentVariableModel,
    x: torch.Tensor,
    k: int,
    n_samples: int = 300,
    seed: int = 0,
    whole_prior: bool = False,
    resolution: int = 101,
) -> PosteriorView:
    """For one binary x (D,) and a model with l = 2: true posterior beside q's samples and K importance weights.

    The posterior is computed on a grid of its own that a coarse grid has zoomed onto its mass
    (`grid.zoomed_grids`), and the plot frames that mass and q's samples (`_frame`), or the whole prior."""
    gen = _generator(model, seed)
    x = x.to(_device(model)).reshape(1, -1)  # (1, D)
    cloud = model.sample_q(x, n_samples, gen)[0][0].cpu()  # (S, 2)
    grid = zoomed_grids(model, x, resolution)[0]
    core = grid.mass_window(0, MASS_SHOWN)
    frame = _frame(grid.mass_window(0, VIEW_MASS), core, cloud, whole_prior)
    lw = log_weights(model, x, k, gen)  # (1, K)
    log_w = lw.log_w[0]  # (K,)
    t_error = discriminator_error(model, x, generator=gen)[0] if model.discriminator is not None else None
    return PosteriorView(
        z1=grid.z1.numpy(),
        z2=grid.z2.numpy(),
        posterior=grid.posterior[0].numpy(),
        log_px=float(grid.log_px[0]),
        frame=frame,
        mass_box=core,
        zoom=2 * PRIOR_EXTENT / frame.width,
        q_samples=cloud.numpy(),
        q_outside=_share_outside(frame, cloud),
        iw_samples=lw.z[0].cpu().numpy(),
        log_w=log_w.cpu().numpy(),
        weights=torch.softmax(log_w, 0).cpu().numpy(),
        ess=float(effective_sample_size(lw.log_w)[0]),
        bound=float(iw_bound(lw.log_w)[0]),  # (2.9) / (3.1)
        t_error=t_error,
    )


LIVE_REFERENCE, LIVE_QUERIES = 5_000, 300  # samples of q behind T's error while a run trains: ~0.1 s per point


def toy_discriminator_errors(model: LatentVariableModel, seed: int = 0) -> list[DiscriminatorError]:
    """T's error at q's samples for each of the toy's four points, sized to be redrawn while a run trains."""
    x = toy_points().to(_device(model))
    return discriminator_error(model, x, LIVE_REFERENCE, LIVE_QUERIES, generator=_generator(model, seed))


def exact_images(data: DataSplits, n: int = 200) -> torch.Tensor:
    """The points exact_log_px averages over: the toy's four, or n fixed binarised test images."""
    if data.name == "toy":
        return toy_points()  # the four equiprobable points: their mean is log p(x) under the data distribution
    return binarize(data.test.images[:n].cpu(), torch.Generator().manual_seed(FIXED_SEED))


def exact_log_px(model: LatentVariableModel, x: torch.Tensor, resolution: int = 201) -> float:
    """Mean exact log p(x) (l = 2, by the grid) over images x, e.g. exact_images(data)."""
    return float(posterior_grid(model, x, resolution=resolution).log_px.mean())


IS_TEST_IMAGES, IS_SAMPLES = 200, 500  # a quick estimate for the Compare page, seconds per model on a CPU


@torch.no_grad()
def estimated_log_px(model: LatentVariableModel, x: torch.Tensor, k: int = IS_SAMPLES) -> tuple[float, str]:
    """Mean log p(x) of images x by importance sampling (iwavb.evaluation.evaluate: q as proposal for a Gaussian q, a
    fitted Student-t for an implicit q; never T); and how it was measured, in words."""
    settings = EvalSettings(estimator="is", n_test=x.shape[0], k=k, device=str(_device(model)))
    log_px, _ = estimate_log_px(model, x, settings)
    return float(log_px.mean()), f"log p(x), IS (k = {k}) on {log_px.shape[0]} test images"


def own_bound(model: LatentVariableModel, x: torch.Tensor, k: int, draws: int = 1, seed: int = 0) -> float:
    """Mean over images x, and `draws` draws of K samples each, of the bound the model trains on with its
    training K: (2.9) for a Gaussian q, (3.1) with T in place of log q - log p for an implicit q. Set beside
    a log p(x) of the same images, the gap is what the bound gives away (a Gaussian q) or how far T is off
    (an implicit q can read above log p(x)). One draw is noisy: on the toy's 4 points, ask for hundreds."""
    return mean_bound(model, x.to(_device(model)).repeat(draws, 1), k, _generator(model, seed))


BOUND_DRAWS = 1_000  # images x draws of K samples behind the bound set beside a log p(x): s.e. ~0.05 nats
BOUND_MAX_IMAGES = 1_000  # a saved estimate on more images gets no bound beside it (minutes on a CPU)


@dataclass(frozen=True)
class ModelScore:
    """How good a trained model is, for the Compare and Checkpoints pages."""

    log_px: float  # mean log p(x) (higher is better): exact, or an estimate
    how: str  # how it was measured, in words: "exact log p(x)", "log p(x), ais on 100 test images"
    bound: float | None  # the model's own bound (objective) on the same images; None where they are not here


def model_score(trainer: Trainer, checkpoint: Path | None, estimate: bool = False) -> ModelScore | None:
    """The log p(x) of a trained model with its own bound on the same images: exact for l = 2; else a quick
    importance-sampling estimate if asked, or its evaluation file; None if none."""
    saved = None
    if trainer.config.latent_dim != 2 and not estimate:
        saved = eval_log_px(checkpoint, trainer.step) if checkpoint is not None else None
        if saved is None:
            return None
    with viewing(trainer) as model:
        x: torch.Tensor | None
        if trainer.config.latent_dim == 2:
            x = exact_images(trainer.data)
            log_px, how = exact_log_px(model, x), "exact log p(x)"
        elif estimate:
            x = evaluation_images(trainer.data, IS_TEST_IMAGES, EvalSettings().seed)
            log_px, how = estimated_log_px(model, x)
        else:
            assert saved is not None
            # The saved estimate's own images; without the data set (previews only) they cannot be rebuilt.
            same_images = not trainer.data.previews_only and saved.n_images <= BOUND_MAX_IMAGES
            x = evaluation_images(trainer.data, saved.n_images, saved.seed) if same_images else None
            log_px, how = saved.log_px, saved.how
        bound = None if x is None else own_bound(model, x, trainer.config.k, draws=max(1, BOUND_DRAWS // len(x)))
        return ModelScore(log_px, how, bound)


@dataclass(frozen=True)
class Curves:
    """A run's history as columns, for plotting."""

    step: np.ndarray
    train_bound: np.ndarray
    valid_step: np.ndarray
    valid_bound: np.ndarray
    disc_step: np.ndarray  # empty for a Gaussian q, like the two below
    disc_loss: np.ndarray
    disc_accuracy: np.ndarray
    truth_step: np.ndarray  # where log p(x) of the fixed validation subset was measured (iwavb.evaluation.truth)
    log_px: np.ndarray  # that log p(x)
    log_px_se: np.ndarray  # its standard error; NaN where exact
    log_px_bound: np.ndarray  # the model's own bound (objective) on the same images

    @property
    def exact(self) -> bool:
        """Whether the log p(x) readings are exact (l = 2), not estimates."""
        return bool(np.isnan(self.log_px_se).all())


def curves(history: Sequence[Record]) -> Curves:
    valid = [r for r in history if r.valid_bound is not None]
    disc = [r for r in history if r.disc_loss is not None]
    truth = [r for r in history if r.log_px is not None]

    def column(rows: Sequence[Record], name: str) -> np.ndarray:
        return np.array([getattr(r, name) for r in rows], dtype=float)  # None -> NaN

    return Curves(
        column(history, "step"),
        column(history, "train_bound"),
        column(valid, "step"),
        column(valid, "valid_bound"),
        column(disc, "step"),
        column(disc, "disc_loss"),
        column(disc, "disc_accuracy"),
        column(truth, "step"),
        column(truth, "log_px"),
        column(truth, "log_px_se"),
        column(truth, "log_px_bound"),
    )
