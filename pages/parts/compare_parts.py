"""The Compare page's live parts: the four runs' progress and curves, then scores, verdict and pictures."""

from __future__ import annotations

import streamlit as st

from iwavb.app.comparison import MethodScore, verdict
from iwavb.app.jobs import Job, JobSnapshot
from iwavb.app.plots import CurveSeries, bound_figure, image_rows_figure, latent_figure, score_figure
from iwavb.app.views import (
    IS_SAMPLES,
    IS_TEST_IMAGES,
    ModelScore,
    curves,
    display_points,
    image_shape,
    latent_projection,
    model_score,
    reconstructions,
    viewing,
)
from iwavb.data.toy import TOY_LANDMARKS
from iwavb.training.trainer import Trainer
from pages.parts.live_charts import live_charts
from pages.parts.loads import dataset
from pages.parts.messages import show_job_messages

PREVIEW_IMAGES = 6


def progress(job: Job, was_active: bool) -> None:
    snap = job.snapshot()
    if was_active and not snap.active:
        st.rerun()
    show_job_messages(snap)
    run = snap.runs[snap.current]
    done = sum(r.step for r in snap.runs)
    total = sum(r.total_steps for r in snap.runs)
    text = (
        f"{snap.message}: **{run.name}** ({snap.current + 1} of {len(snap.runs)}), step {run.step:,} of "
        f"{run.total_steps:,}"
        if snap.active
        else f"{len(snap.runs)} runs, {snap.status}"
    )
    st.progress(min(1.0, done / max(total, 1)), text=text)
    series = [CurveSeries(r.name, r.config.method, r.config.q, curves(r.history)) for r in snap.runs if r.history]
    landmarks = TOY_LANDMARKS if snap.runs[0].config.dataset == "toy" else None
    live_charts([[bound_figure(series, landmarks, "The four during training")]], key="compare_live")


def _finished(job: Job, snap: JobSnapshot) -> dict[int, Trainer]:
    """The runs done training (index -> trainer), whose models can be scored and shown."""
    done = [i for i in range(len(snap.runs)) if i < snap.current or not snap.active]
    return {i: trainer for i in done if (trainer := job.trainer(i)) is not None}


def _score(job: Job, snap: JobSnapshot, index: int, trainer: Trainer, estimate: bool) -> ModelScore | None:
    """The log p(x) of a finished run with its own bound on the same images, computed once per run, step and way."""
    run = snap.runs[index]
    key = f"score:{snap.job_id}:{index}:{run.step}:{estimate}"
    if key not in st.session_state:
        with st.spinner(f"Measuring {run.name}…"):
            st.session_state[key] = model_score(trainer, job.specs[index].checkpoint, estimate)
    return st.session_state[key]


def results(job: Job) -> None:
    snap = job.snapshot()
    finished = _finished(job, snap)
    if not finished:
        st.caption("Scores and pictures appear here as each run finishes.")
        return
    config = snap.runs[next(iter(finished))].config
    toy = config.dataset == "toy"
    estimate_key = f"estimate:{snap.job_id}"
    estimate = st.session_state.get(estimate_key, False)
    scores = {i: _score(job, snap, i, trainer, estimate) for i, trainer in finished.items()}
    measured = {i: score for i, score in scores.items() if score is not None}
    st.subheader("Who wins, and why")
    if len({score.how for score in measured.values()}) > 1:
        measured = {}  # measured in different ways: not comparable, so estimate all of them the same way
    if measured:
        estimator = next(iter(measured.values())).how
        results_ = [
            MethodScore(snap.runs[i].config.method, snap.runs[i].name, score.log_px, score.bound)
            for i, score in measured.items()
        ]
        figure = score_figure(
            results_,
            estimator,
            TOY_LANDMARKS if toy else None,
            f"{estimator} (bars) and each model's own bound on the same images (◆)",
        )
        st.plotly_chart(figure, key="compare_scores")
        winner, *reasons = verdict(results_, estimator, toy)
        st.success(winner)
        st.markdown("\n".join(f"- {line}" for line in reasons))
    if len(measured) < len(finished) and not st.session_state.get(estimate_key):
        st.warning(
            "Not every run has a log-likelihood yet (l > 2 and no evaluation file, or files from different "
            "estimators). Until then compare the validation bounds above, remembering that an implicit q's "
            "objective uses T and can read too high."
        )
        if st.button(
            f"Estimate log p(x) of all of them by importance sampling ({IS_TEST_IMAGES} test images, "
            f"k = {IS_SAMPLES}; seconds to a minute per model on a CPU)"
        ):
            st.session_state[estimate_key] = True
            st.rerun()

    data = dataset(config.dataset)
    images, _ = display_points(data, PREVIEW_IMAGES)
    cols = st.columns(len(finished))
    for col, (i, trainer) in zip(cols, finished.items()):
        run = snap.runs[i]
        with viewing(trainer) as model:
            if toy:
                figure = latent_figure(
                    latent_projection(model, data, seed=1),
                    f"{run.name}: z ~ q(z|x)",
                    limit=4.0,
                    legend=False,
                    height=330,
                )
            else:
                originals, recon = reconstructions(model, images)
                figure = image_rows_figure(
                    [("input", originals), ("recon.", recon)], image_shape(config.data_dim), run.name, width_px=300
                )
        col.plotly_chart(figure, key=f"compare_picture_{i}")
    if toy:
        st.caption(
            "Each colour is one of the four toy points (blue 1000, orange 0100, green 0010, red 0001). A "
            "Gaussian q gives each point an elliptical blob; an implicit q can bend its samples to tile the "
            "plane, as the true posteriors do."
        )
