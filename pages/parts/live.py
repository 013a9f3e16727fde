"""The live view of a training job, drawn by fragments that refresh while it runs (Train page).

Each function reads a snapshot of the job (never blocking it for long) and draws; when the job ends
while a fragment is ticking, it asks for one full rerun so that the page's buttons catch up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from iwavb.app.comparison import named_gap
from iwavb.app.jobs import Job, JobSnapshot, RunSnapshot
from iwavb.app.plots import (
    CurveSeries,
    bound_figure,
    discriminator_errors_figure,
    discriminator_figure,
    image_rows_figure,
    latent_figure,
)
from iwavb.app.views import curves, image_shape, latent_projection, preview_rows, toy_discriminator_errors, viewing
from iwavb.core.config import objective_label
from iwavb.data.toy import TOY_LABELS, TOY_LANDMARKS
from iwavb.training.records import last_validation
from pages.parts.live_charts import live_charts
from pages.parts.loads import dataset
from pages.parts.messages import show_job_messages

PICTURES_S = 1.0  # pictures are recomputed at most this often while a run trains (a few ms for mlp models)
PREVIEW_IMAGES = 8  # test images (and reconstructions, and prior samples) in the picture rows
LATENT_POINTS = 500  # SVG dots redrawn at each refresh: enough to see the clusters, light for the browser


def _ended(snap: JobSnapshot, was_active: bool) -> None:
    if was_active and not snap.active:
        st.rerun()  # the whole page: buttons and refresh rates follow the job's new state


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def run_live(job: Job, was_active: bool) -> None:
    """Progress, numbers, curves and pictures: one fragment, so one script run per refresh."""
    snap = job.snapshot()
    _ended(snap, was_active)
    show_job_messages(snap)
    run = snap.runs[snap.current]
    st.progress(
        min(1.0, run.step / max(run.total_steps, 1)),
        text=f"**{run.name}** on {run.config.dataset} · {snap.message} · step {run.step:,} of "
        f"{run.total_steps:,}" + (f" · {snap.device}" if snap.device else ""),
    )
    last = run.last
    valid = last_validation(run.history)
    label = objective_label(run.config.q)
    cols = st.columns(6)
    cols[0].metric(f"train {label}", f"{last.train_bound:.3f}" if last else "–")
    cols[1].metric(f"validation {label}", f"{valid:.3f}" if valid is not None else "–")
    _truth_metrics(run, cols[2], cols[3])
    cols[4].metric("steps / s", f"{last.steps_per_s:.1f}" if last else "–")
    cols[5].metric("time left", _duration(snap.eta_s) if snap.active else "–")
    history = curves(run.history)
    landmarks = TOY_LANDMARKS if run.config.dataset == "toy" else None
    rows = [[bound_figure([CurveSeries(run.name, run.config.method, run.config.q, history)], landmarks)]]
    pictures = _pictures(job, snap)
    if run.config.q == "implicit" and len(history.disc_step):
        rows.append([discriminator_figure(history), *([pictures.t_error] if pictures and pictures.t_error else [])])
    if pictures is not None:
        rows.append(list(pictures.figures))
    elif snap.active:
        st.caption("Pictures of the model appear here once its networks are built.")
    live_charts(rows, key="train_live")
    if pictures is not None and run.config.dataset != "toy":
        st.caption(RECONSTRUCTIONS_NOTE)
    if pictures is not None and pictures.t_error is not None:
        st.caption(T_ERROR_NOTE)


# What a class sees in the first seconds on MNIST (benchmarks/README.md, "Time to insight"): after 200-300 steps
# the eight test digits are drawn as clear digits, six or seven labelled as their own by a classifier (as for
# the shipped model), the others as a look-alike.
RECONSTRUCTIONS_NOTE = (
    "**Reconstructions** decode the mean of q(z|x). In the first few hundred steps the decoder knows only the "
    "common shapes, so similar images come out alike (on MNIST a 4 as a 9, a 2 as a 3); they part as it trains."
)


T_ERROR_NOTE = (
    "**T's error** (right of the discriminator's chart): at each toy point, T(x, z) minus log q(z|x) − log p(z) "
    "at 300 of q's samples, q's density estimated from 5,000 others by k nearest neighbours; bars: the mean, "
    "whiskers: the spread. Below 0, T underestimates, and the objective reads that much above log p(x). T "
    "chases a q that keeps moving: with the default settings AVB's T lags by nats for thousands of steps. "
    "T needs more updates per model step and a slower q to stay optimal: the shipped toy AVB and IWAVB, trained "
    "with 3 discriminator steps per model step, q's rate 1e-3 (T's 3e-3) and 6,000 steps, stay within the green "
    "band (±0.3 nats) on every point (Checkpoints page)."
)


def _truth_metrics(run: RunSnapshot, value_col: DeltaGenerator, gap_col: DeltaGenerator) -> None:
    """The latest log p(x) of the fixed validation subset (measured without T) and the named gap to the run's own
    bound on the same images."""
    reading = next((r for r in reversed(run.history) if r.log_px is not None), None)
    subset = "the four toy points" if run.config.dataset == "toy" else "a fixed subset of validation images"
    if reading is None or reading.log_px is None:
        value_col.metric(
            "log p(x)", "–", help=f"Measured on {subset} without T, within 10% of the training time: soon."
        )
        gap_col.metric("gap", "–")
        return
    exact = reading.log_px_se is None
    value = f"{reading.log_px:.3f}" if exact else f"{reading.log_px:.2f} ± {reading.log_px_se:.2f}"
    value_col.metric(
        "exact log p(x)" if exact else "log p(x), IS estimate",
        value,
        help=f"Mean over {subset} at step {reading.step:,}, measured without T"
        + (" on a grid (latent size 2)." if exact else " by importance sampling, ± its standard error."),
    )
    if reading.log_px_bound is not None:
        gap = named_gap(run.config.q, reading.log_px, reading.log_px_bound)
        gap_col.metric(gap.name, f"{gap.nats:.2f} nats", help=gap.meaning + " (the same images, same step).")


@dataclass(frozen=True)
class _Pictures:
    """The pictures last drawn for this session's run: which run, at which step, when."""

    run: tuple[str, int]  # (job id, run index)
    step: int
    at: float  # time.monotonic()
    figures: tuple[go.Figure, go.Figure]  # images with reconstructions and samples; the latent plane
    t_error: go.Figure | None  # the toy with an implicit q: T's error at each point


def _pictures(job: Job, snap: JobSnapshot) -> _Pictures | None:
    """Test images with reconstructions and prior samples, the latent plane and (toy, implicit q) T's error;
    redrawn at most every PICTURES_S seconds while training (each time they hold the model for a moment)."""
    trainer = job.trainer(snap.current)
    if trainer is None:
        return None
    run = snap.runs[snap.current]
    cached: _Pictures | None = st.session_state.get("train_pictures")
    same_run = cached is not None and cached.run == (snap.job_id, snap.current)
    if cached is not None and same_run:
        recent = snap.active and time.monotonic() - cached.at < PICTURES_S
        if cached.step == run.step or recent:
            return cached
    data = dataset(run.config.dataset)
    toy_t = run.config.dataset == "toy" and run.config.q == "implicit" and run.config.latent_dim == 2
    with viewing(trainer) as model:
        rows = preview_rows(model, data, PREVIEW_IMAGES)
        projection = latent_projection(model, data, n=LATENT_POINTS)
        errors = toy_discriminator_errors(model) if toy_t else None
    pictures = _Pictures(
        (snap.job_id, snap.current),
        run.step,
        time.monotonic(),
        (
            image_rows_figure(rows, image_shape(run.config.data_dim), f"What the model does at step {run.step:,}"),
            latent_figure(projection, f"Latent space: {projection.note}"),
        ),
        discriminator_errors_figure(errors, TOY_LABELS, "T's error at q's samples") if errors else None,
    )
    st.session_state["train_pictures"] = pictures
    return pictures
