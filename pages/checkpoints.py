"""Checkpoints: browse pretrained/ and your runs; settings, curves, log-likelihood, a preview; load or delete."""

import streamlit as st

from iwavb import settings
from iwavb.artefacts.catalog import delete_run, list_entries
from pages.parts.checkpoint_parts import checkpoint_table, details
from pages.parts.messages import friendly_errors
from pages.parts.navigation import open_page
from pages.parts.runs import checkpoint_spec
from pages.parts.session import start_job
from pages.parts.sweep_parts import sweeps_section

st.title("Checkpoints")
st.caption(
    f"Curated models in `{settings.pretrained_dir()}` and your own runs in `{settings.runs_dir()}` (saved from the "
    "Train page or `python -m iwavb train`). Loading never executes code: checkpoints are safetensors files."
)

sweeps_section()  # python -m iwavb sweep: Table-1-shaped results, any trial opened
entries = list_entries()
if not entries:
    st.info("No checkpoints yet: train a run and press **Save checkpoint** on the Train page.")
    st.stop()

st.dataframe(checkpoint_table(entries), hide_index=True, width="stretch")
by_id = {f"{e.source}/{e.path.name}": e for e in entries}
readable_first = next((i for i, e in enumerate(entries) if e.error is None), 0)
chosen = st.selectbox(
    "checkpoint",
    list(by_id),
    index=readable_first,
    key="file",
    bind="query-params",
    format_func=lambda i: f"{by_id[i].title} ({by_id[i].source})",
)
entry = by_id[chosen]

actions = st.columns(2)
config = entry.config  # None when the file cannot be read
if config is not None and actions[0].button(
    "Open on the Train page",
    type="primary",
    width="stretch",
    help="Loads it as this session's run; Compare and Posteriors can use it too",
):
    start_job("train", [checkpoint_spec(entry)])
    open_page("train")
if entry.deletable:
    with actions[1].popover("Delete this run", width="stretch"):
        st.write(f"Delete `{entry.path.name}` from your runs? This cannot be undone.")
        if st.button("Delete", type="primary"):
            delete_run(entry.path)
            st.rerun()
if config is not None:
    with friendly_errors(f"Could not show {entry.path.name}"):
        details(entry, config)
else:
    st.error(entry.error or f"{entry.path}: its configuration is missing or invalid")
