"""Posteriors: for one test point, the true posterior (l = 2) beside samples of a Gaussian and an implicit q,
the importance weights of K samples with their effective sample size, and, for an implicit q, how far T
is from the log-density ratio it estimates."""

from __future__ import annotations

import streamlit as st

from iwavb.app.plots import discriminator_error_figure, image_rows_figure, posterior_figure, weights_figure
from iwavb.app.views import PosteriorView, display_points, image_shape, posterior_view
from iwavb.core.config import Q_KINDS, objective_label
from pages.parts.loads import checkpoint_model
from pages.parts.loads import dataset as load_data
from pages.parts.models import ModelChoice, checkpoint_models, session_models
from pages.parts.widgets import bound, dataset_select, number_setting, one_of, whole_number

NONE = "(none)"


@st.cache_data(max_entries=64, show_spinner=False)
def checkpoint_view(path: str, mtime: float, dataset: str, point: int, k: int, draw: int, whole: bool) -> PosteriorView:
    """A checkpoint's view of one test point, computed once per (file, point, K, draw, framing)."""
    images, _ = display_points(load_data(dataset), point + 1)
    return posterior_view(
        checkpoint_model(path, mtime)[1], (images[point] > 0.5).float(), k, seed=draw, whole_prior=whole
    )


def view_of(choice: ModelChoice, dataset: str, point: int, k: int, draw: int, whole: bool) -> PosteriorView:
    """A checkpoint's view from the cache; a run of this session is computed afresh (it trains on)."""
    if choice.path is not None:
        return checkpoint_view(str(choice.path), choice.path.stat().st_mtime, dataset, point, k, draw, whole)
    images, _ = display_points(load_data(dataset), point + 1)
    with choice.model() as model:
        return posterior_view(model, (images[point] > 0.5).float(), k, seed=draw, whole_prior=whole)


def show_t_error(view: PosteriorView, name: str, key: str) -> None:
    """An implicit q: T against log q - log p (kNN) at q's samples, with the mean error and its spread."""
    error = view.t_error
    if error is None:
        return
    st.plotly_chart(
        discriminator_error_figure(error, f"{name}: T against log q − log p at q's samples"),
        key=key,
        config={"displayModeBar": False},
    )
    a, b = st.columns(2)
    a.metric(
        "T's mean error",
        f"{error.mean:+.2f} nats",
        help="T − (log q − log p) averaged over 500 samples of q; log q by the distance to the 20th nearest of "
        "20,000 other samples. Below 0: T underestimates, and the objective reads that much too high.",
    )
    b.metric(
        "its spread (s.d.)", f"{error.spread:.2f} nats", help=f"The kNN estimate alone scatters by {error.noise:.2f}."
    )


st.title("Posteriors")
with st.sidebar:
    st.header("Settings")
    dataset = dataset_select()
choices = [
    m for m in session_models() + checkpoint_models() if m.config.latent_dim == 2 and m.config.dataset == dataset
]
by_q = {q: [m for m in choices if m.config.q == q] for q in Q_KINDS}
with st.sidebar:
    picked = {
        q: st.selectbox(
            f"{q} q model", [NONE, *[m.label for m in by_q[q]]], index=1 if by_q[q] else 0, key=f"{q}_model_{dataset}"
        )
        for q in by_q
    }  # per data set: a switch picks anew
    point = number_setting("test point", "point", 0, 3 if dataset == "toy" else 9_999, 0)
    k = bound(st.slider, "K (importance samples)", "k", whole_number(1, 100), 1, 100, 10)
    seed = number_setting("draw (seed)", "draw", 0, 10_000, 0, help="a new draw of q's samples")
    whole = bound(
        st.toggle,
        "whole prior",
        "whole",
        one_of((True, False)),
        help="Show [-4, 4]² instead of zooming onto the posterior and q's samples",
    )

models = [next(m for m in by_q[q] if m.label == label) for q, label in picked.items() if label != NONE]
if not models:
    st.info(
        f"No model with latent size 2 on the {dataset} data yet. Train one on the **Train** page (l = 2), "
        "train the four on **Compare**, or load a checkpoint on **Checkpoints**."
    )
    st.stop()

data = load_data(dataset)
images, labels = display_points(data, point + 1)
if point >= len(images):  # the widget's limit is a round number; the test sets differ (and previews are fewer)
    st.error(f"The {dataset} test points here are numbered 0 to {len(images) - 1}: choose one of those.")
    st.stop()
x_image = images[point : point + 1]
left, _ = st.columns([1, 3])
left.plotly_chart(
    image_rows_figure(
        [(f"point {point}", x_image.numpy())],
        image_shape(data.data_dim),
        f"The test point (label {data.label_names[int(labels[point])]})",
        width_px=160,
    ),
    key="point_image",
    config={"displayModeBar": False},
)

cols = st.columns(2)  # always two: one model takes half the width, so its square plane stays readable
for col, choice in zip(cols, models):
    try:
        view = view_of(choice, dataset, int(point), k, int(seed), whole)
    except Exception as err:
        col.error(f"{choice.label}: {err}")
        continue
    with col:
        name = choice.config.method.upper()
        st.plotly_chart(
            posterior_figure(view, f"{name}: true p(z|x) (grey) and q's samples (blue)"),
            key=f"posterior_{choice.config.q}",
        )
        a, b, c = st.columns(3)
        a.metric("exact log p(x)", f"{view.log_px:.3f}")
        b.metric(
            f"{objective_label(choice.config.q)}, K = {k}",
            f"{view.bound:.3f}",
            help="Of this one draw of K samples: a single draw can land above log p(x); averaged over "
            "draws, a bound stays below it.",
        )
        c.metric("effective sample size", f"{view.ess:.1f} of {k}")
        st.plotly_chart(weights_figure(view, f"{name}: the K importance weights"), key=f"weights_{choice.config.q}")
        show_t_error(view, name, f"t_error_{choice.config.q}")
        st.caption(choice.label)

st.markdown(
    "**How to read this.** The grey cloud is the true posterior of each model's own decoder, computed on a "
    "grid that zooms onto it. The blue dots are q's guesses. The red circles are K samples as one bound "
    "evaluation sees them, sized by their importance weight: IWAE and IWAVB average these weights, so samples "
    "where the true posterior is dense count most. The effective sample size (Σw)² / Σw² says how many samples "
    "really contribute: near K when q matches the posterior, near 1 when one sample dominates. For an implicit "
    "q the weights use T in place of log q − log p; the last chart sets T beside that ratio, with q's density "
    "estimated from its own samples (k nearest neighbours), so T's error can be seen.\n\n"
    "**Zoom.** A trained model's posterior is narrow (on MNIST its standard deviations reach 0.02), so each plot "
    "frames the posterior's mass and q's samples, and its title says how much closer that is than the prior's "
    "[-4, 4]²; switch on **whole prior** to see where in the prior it lies."
)
