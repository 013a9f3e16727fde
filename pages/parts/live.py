"""The live view of a training job, drawn by fragments that refresh while it runs (Train page).

Each function reads a snapshot of the job (never blocking it for long) and draws; when the job ends
while a fragment is ticking, it asks for one full rerun so that the page's buttons catch up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from iwavb.app.jobs import Job, JobSnapshot
from iwavb.app.plots import CurveSeries, bound_figure, discriminator_figure, image_rows_figure, latent_figure
from iwavb.app.views import curves, image_shape, latent_projection, preview_rows, viewing
from iwavb.core.config import objective_label
from iwavb.training.records import last_validation
from pages.parts.live_charts import live_charts
from pages.parts.loads import dataset
from pages.parts.messages import show_job_messages

PICTURES_S = 2.0  # pictures are recomputed at most this often while a run trains
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
    cols = st.columns(5)
    cols[0].metric(f"train {label}", f"{last.train_bound:.3f}" if last else "–")
    cols[1].metric(f"validation {label}", f"{valid:.3f}" if valid is not None else "–")
    cols[2].metric("steps / s", f"{last.steps_per_s:.1f}" if last else "–")
    cols[3].metric("time left", _duration(snap.eta_s) if snap.active else "–")
    cols[4].metric(
        "T accuracy",
        f"{last.disc_accuracy:.0%}" if last and last.disc_accuracy is not None else "–",
        help="How often the discriminator tells q's samples from the prior's; 50% is chance.",
    )
    history = curves(run.history)
    rows = [[bound_figure([CurveSeries(run.name, run.config.method, run.config.q, history)])]]
    if run.config.q == "implicit" and len(history.disc_step):
        rows.append([discriminator_figure(history)])
    pictures = _pictures(job, snap)
    if pictures is not None:
        rows.append(list(pictures))
    elif snap.active:
        st.caption("Pictures of the model appear here once its networks are built.")
    live_charts(rows, key="train_live")


@dataclass(frozen=True)
class _Pictures:
    """The pictures last drawn for this session's run: which run, at which step, when."""

    run: tuple[str, int]  # (job id, run index)
    step: int
    at: float  # time.monotonic()
    figures: tuple[go.Figure, go.Figure]


def _pictures(job: Job, snap: JobSnapshot) -> tuple[go.Figure, go.Figure] | None:
    """Test images with reconstructions and prior samples, and the latent plane; redrawn at most every
    PICTURES_S seconds while training (each time they hold the model for a moment)."""
    trainer = job.trainer(snap.current)
    if trainer is None:
        return None
    run = snap.runs[snap.current]
    cached: _Pictures | None = st.session_state.get("train_pictures")
    same_run = cached is not None and cached.run == (snap.job_id, snap.current)
    if cached is not None and same_run:
        recent = snap.active and time.monotonic() - cached.at < PICTURES_S
        if cached.step == run.step or recent:
            return cached.figures
    data = dataset(run.config.dataset)
    with viewing(trainer) as model:
        rows = preview_rows(model, data, PREVIEW_IMAGES)
        projection = latent_projection(model, data, n=LATENT_POINTS)
    figures = (
        image_rows_figure(rows, image_shape(run.config.data_dim), f"What the model does at step {run.step:,}"),
        latent_figure(projection, f"Latent space: {projection.note}"),
    )
    st.session_state["train_pictures"] = _Pictures((snap.job_id, snap.current), run.step, time.monotonic(), figures)
    return figures
