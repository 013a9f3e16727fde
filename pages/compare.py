"""Compare: VAE, IWAE, AVB and IWAVB on the same data, latent size and K; who wins and why."""

import streamlit as st

from iwavb.config import DATASETS, FAMILIES, METHODS, TrainConfig
from iwavb.jobs import RunSpec
from pages.parts import common
from pages.parts.compare_parts import progress, results

common.leave_old_multipage_mode()  # a first visitor may land here before app.py has run


with st.sidebar:
    st.header("Settings")
    dataset = st.selectbox("data set", DATASETS, key="data", **common.URL)
    latent = st.select_slider("latent size l", [2, 4, 8, 16, 32], value=2, key="latent", **common.URL,
                              help="l = 2: exact log p(x) on a grid, so the winner is certain")
    k = st.slider("K for IWAE and IWAVB", 2, 50, 10, key="k", **common.URL)
    steps = st.number_input("steps per method", 10, 1_000_000, 600, step=100, key="steps_each", **common.URL)
    family = st.radio("network family", FAMILIES, key="family", horizontal=True, **common.URL)
    seed = st.number_input("seed", 0, 2**31 - 1, 0, key="seed", **common.URL)

st.title("Compare the four")
st.markdown("The same data, latent size and K; only the two switches differ: **K** (1 or more importance samples) "
            "and **q** (Gaussian or implicit). Lines: training value; dots: validation. Higher is better.")
common.device_notice(family)

found = common.four_checkpoints(dataset, latent, k)
train_col, load_col = st.columns(2)
if train_col.button(f"Train the four, one after another ({int(steps):,} steps each)", type="primary",
                    width="stretch"):
    try:
        configs = [TrainConfig.for_method(m, k=k if m in ("iwae", "iwavb") else None, dataset=dataset,
                                          latent_dim=latent, family=family, steps=int(steps), seed=int(seed),
                                          log_every=common.log_every(dataset, "auto")) for m in METHODS]
    except ValueError as err:
        st.error(f"These settings do not make a run: {err}")
    else:
        common.start_job("compare", [RunSpec(c) for c in configs])
load_label = ("Load the four from checkpoints" if len(found) in (0, 4)
              else f"Load {len(found)} of the four from checkpoints")
if load_col.button(load_label, width="stretch", disabled=not found,
                   help="Checkpoints in pretrained/ or your runs with this data set, latent size and K"):
    common.start_job("compare", [common.checkpoint_spec(e.path, e.config, e.config.method.upper())
                                 for e in found.values()])

job = common.job("compare")
if job is None:
    st.info("Train the four (the toy data take a few seconds each on a CPU) or load them from checkpoints.")
    st.stop()
snap = job.snapshot()
st.fragment(progress, run_every=0.5 if snap.active else None)(job, snap.active)
st.fragment(results, run_every=2.0 if snap.active else None)(job)
