"""Train: pick a method and settings (kept in the URL), start/pause/stop, watch it learn live."""

import streamlit as st

from iwavb.config import DATASETS, FAMILIES, METHODS, TrainConfig
from iwavb.jobs import RunSpec
from pages.parts import common
from pages.parts.live import run_live

common.leave_old_multipage_mode()  # a first visitor may land here before app.py has run

REFRESH_S = 0.5  # numbers and curves; the pictures follow every few seconds (pages/parts/live.py)

with st.sidebar:
    st.header("Settings")
    dataset = st.selectbox("data set", DATASETS, key="data", **common.URL)
    method = st.selectbox("method", METHODS, index=METHODS.index("iwavb"), key="method",
                          format_func=str.upper, **common.URL)
    if method in ("iwae", "iwavb"):
        k = st.slider("K (importance samples)", 2, 50, 10, key="k", **common.URL)
    else:
        k = 1
        st.caption("K = 1 for VAE and AVB.")
    latent = st.select_slider("latent size l", [2, 4, 8, 16, 32], value=2, key="latent", **common.URL,
                              help="l = 2 shows the raw latent plane and the true posterior (Posteriors page)")
    family = st.radio("network family", FAMILIES, key="family", horizontal=True, **common.URL,
                      help="mlp: small, trains live on a CPU. conv: the paper's networks (AVB's); needs a GPU.")
    steps = st.number_input("steps", 10, 1_000_000, 1_000, step=100, key="steps", **common.URL)
    batch = st.select_slider("batch size", [16, 32, 64, 128, 256, 512], value=128, key="batch", **common.URL)
    seed = st.number_input("seed", 0, 2**31 - 1, 0, key="seed", **common.URL)
    device = st.selectbox("device", ["auto", "cpu", "cuda"], key="device", **common.URL,
                          help="auto: the GPU when there is one, else the CPU")

st.title("Train")
common.device_notice(family)

job = common.job("train")
snap = job.snapshot() if job else None
start, pause, stop, save = st.columns(4)
if start.button("Start", type="primary", width="stretch", help="Train a new run with the settings on the left"):
    try:
        config = TrainConfig.for_method(method, k=k, dataset=dataset, latent_dim=latent, family=family,
                                        steps=int(steps), batch_size=batch, seed=int(seed), device=device,
                                        log_every=common.log_every(dataset, device))
    except ValueError as err:
        st.error(f"These settings do not make a run: {err}")
    else:
        job = common.start_job("train", [RunSpec(config)])
        snap = job.snapshot()
if snap is not None and snap.status == "paused":
    if pause.button("Resume", width="stretch"):
        job.resume()
        snap = job.snapshot()
elif pause.button("Pause", width="stretch", disabled=snap is None or not snap.active):
    job.pause()
    snap = job.snapshot()
if stop.button("Stop", width="stretch", disabled=snap is None or not snap.active):
    job.stop()
    job.join(5)
    snap = job.snapshot()
if save.button("Save checkpoint", width="stretch", disabled=job is None or job.trainer() is None):
    common.save_run(job.trainer())

if job is None:
    st.info("Press **Start** to train with the settings on the left (the toy data train in seconds), or load a "
            "checkpoint on the **Checkpoints** page.")
    st.stop()

st.fragment(run_live, run_every=REFRESH_S if snap.active else None)(job, snap.active)
