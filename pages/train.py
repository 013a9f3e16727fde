"""Train: pick a method and settings (kept in the URL), start/pause/stop, watch it learn live."""

import streamlit as st

from iwavb.app.jobs import RunSpec
from iwavb.app.warm_up import warm_up_in_background
from iwavb.core.config import METHODS
from iwavb.training.config import TrainConfig
from pages.parts.live import run_live
from pages.parts.messages import device_notice
from pages.parts.runs import log_every, save_run
from pages.parts.session import job as session_job
from pages.parts.session import owner_name_input, start_job
from pages.parts.widgets import (
    bound,
    choice_setting,
    contrast_toggle,
    dataset_select,
    family_radio,
    k_slider,
    latent_select,
    number_setting,
    one_of,
    seed_input,
)

REFRESH_S = 0.5  # numbers and curves; the pictures follow every few seconds (pages/parts/live.py)
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
DEVICES = ("auto", "cpu", "cuda")
# The first latent size offered: the toy's plane is l = 2; images start at l = 8, whose MNIST reconstructions
# read as digits after ~200 steps (10 s on a 2-core CPU), where l = 2's are still half blurred
# (python -m benchmarks.recognisable; benchmarks/README.md, "Time to insight").
TEACHING_LATENT = {"toy": 2}

# While the settings are picked: what Start would wait for (pandas: Streamlit's check of the live charts' data).
warm_up_in_background(("pandas",))
with st.sidebar:
    st.header("Settings")
    dataset = dataset_select()
    method = choice_setting("method", "method", METHODS, index=METHODS.index("iwavb"), format_func=str.upper)
    if method in ("iwae", "iwavb"):
        k = k_slider("K (importance samples)")
    else:
        k = 1
        st.caption("K = 1 for VAE and AVB.")
    latent = latent_select(
        help="l = 2 shows the raw latent plane and the true posterior (Posteriors page). Images start at l = 8: "
        "their reconstructions read as digits within seconds, where l = 2 needs minutes",
        default=TEACHING_LATENT.get(dataset, 8),
    )
    family = family_radio(help="mlp: small, trains live on a CPU. conv: the paper's networks (AVB's); needs a GPU.")
    contrast = contrast_toggle() if method in ("avb", "iwavb") else "none"
    steps = number_setting("steps", "steps", 10, 1_000_000, 1_000, step=100)
    batch = bound(st.select_slider, "batch size", "batch", one_of(BATCH_SIZES), BATCH_SIZES, value=128)
    seed = seed_input()
    device = choice_setting("device", "device", DEVICES, help="auto: the GPU when there is one, else the CPU")
    owner_name_input()

st.title("Train")
device_notice(family)

job = session_job("train")
snap = job.snapshot() if job else None
start, pause, stop, save = st.columns(4)
if start.button("Start", type="primary", width="stretch", help="Train a new run with the settings on the left"):
    try:
        config = TrainConfig.for_method(
            method,
            k=k,
            dataset=dataset,
            latent_dim=latent,
            family=family,
            contrast=contrast,
            steps=int(steps),
            batch_size=batch,
            seed=seed,
            device=device,
            log_every=log_every(dataset, device),
        )
    except ValueError as err:
        st.error(f"These settings do not make a run: {err}")
    else:
        job = start_job("train", [RunSpec(config)])
        snap = job.snapshot()
active = snap is not None and snap.active
# After each control, the page is drawn anew, so that the buttons show the job's new state at once (Pause
# turns into Resume; Pause and Stop are disabled once the run has stopped).
if job is not None and snap is not None and snap.status == "paused":
    if pause.button("Resume", width="stretch"):
        job.resume()
        st.rerun()
elif pause.button("Pause", width="stretch", disabled=not active) and job is not None:
    job.pause()
    st.rerun()
if stop.button("Stop", width="stretch", disabled=not active) and job is not None:
    job.stop()
    job.join(5)
    st.rerun()
trainer = job.trainer() if job is not None else None
if save.button("Save checkpoint", width="stretch", disabled=trainer is None) and trainer is not None:
    save_run(trainer)

if job is None or snap is None:
    st.info(
        "Press **Start** to train with the settings on the left (the toy data train in seconds), or load a "
        "checkpoint on the **Checkpoints** page."
    )
    st.stop()

st.fragment(run_live, run_every=REFRESH_S if snap.active else None)(job, snap.active)
