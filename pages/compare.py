"""Compare: VAE, IWAE, AVB and IWAVB on the same data, latent size and K; who wins and why."""

import streamlit as st

from iwavb.app.jobs import RunSpec
from iwavb.core.config import METHODS
from iwavb.training.config import TrainConfig
from pages.parts.compare_parts import progress, results
from pages.parts.messages import device_notice
from pages.parts.models import four_checkpoints
from pages.parts.runs import checkpoint_spec, log_every
from pages.parts.session import job as session_job
from pages.parts.session import start_job
from pages.parts.widgets import (
    contrast_toggle,
    dataset_select,
    family_radio,
    k_slider,
    latent_select,
    number_setting,
    seed_input,
)

with st.sidebar:
    st.header("Settings")
    dataset = dataset_select()
    latent = latent_select(help="l = 2: exact log p(x) on a grid, so the winner is certain")
    k = k_slider("K for IWAE and IWAVB")
    steps = number_setting("steps per method", "steps_each", 10, 1_000_000, 600, step=100)
    family = family_radio()
    contrast = contrast_toggle("adaptive contrast for AVB and IWAVB")
    seed = seed_input()

st.title("Compare the four")
st.markdown(
    "The same data, latent size and K; only the two switches differ: **K** (1 or more importance samples) "
    "and **q** (Gaussian or implicit). Lines: training value; dots: validation. Higher is better."
)
device_notice(family)

found = four_checkpoints(dataset, latent, k)
train_col, load_col = st.columns(2)
if train_col.button(f"Train the four, one after another ({int(steps):,} steps each)", type="primary", width="stretch"):
    try:
        configs = [
            TrainConfig.for_method(
                m,
                k=k if m in ("iwae", "iwavb") else None,
                dataset=dataset,
                latent_dim=latent,
                family=family,
                contrast=contrast if m in ("avb", "iwavb") else "none",
                steps=int(steps),
                seed=seed,
                log_every=log_every(dataset, "auto"),
            )
            for m in METHODS
        ]
    except ValueError as err:
        st.error(f"These settings do not make a run: {err}")
    else:
        start_job("compare", [RunSpec(c) for c in configs])
load_label = (
    "Load the four from checkpoints" if len(found) in (0, 4) else f"Load {len(found)} of the four from checkpoints"
)
if load_col.button(
    load_label,
    width="stretch",
    disabled=not found,
    help="Checkpoints in pretrained/ or your runs with this data set, latent size and K",
):
    start_job("compare", [checkpoint_spec(e, label=method.upper()) for method, e in found.items()])

job = session_job("compare")
if job is None:
    st.info("Train the four (the toy data take a few seconds each on a CPU) or load them from checkpoints.")
    st.stop()
snap = job.snapshot()
st.fragment(progress, run_every=0.5 if snap.active else None)(job, snap.active)
st.fragment(results, run_every=2.0 if snap.active else None)(job)
