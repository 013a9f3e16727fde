"""Checkpoints: browse pretrained/ and your runs; settings, curves, log-likelihood, a preview; load or delete.

A file that cannot be used is one row (and one message) of its own; only a run's owner can delete it."""

import streamlit as st

from iwavb import settings
from iwavb.artefacts.catalog import list_entries
from pages.parts.checkpoint_parts import checkpoint_table, delete_control, details, last_message
from pages.parts.messages import friendly_errors
from pages.parts.navigation import open_page
from pages.parts.runs import checkpoint_spec
from pages.parts.session import owner_name_input, start_job
from pages.parts.sweep_parts import sweeps_section
from pages.parts.widgets import choice_setting

st.title("Checkpoints")
st.caption(
    f"Curated models in `{settings.pretrained_dir()}` and your own runs in `{settings.runs_dir()}` (saved from the "
    "Train page or `python -m iwavb train`). Loading never executes code: checkpoints are safetensors files."
)

with st.sidebar:
    owner_name_input()
last_message()
sweeps_section()  # python -m iwavb sweep: Table-1-shaped results, any trial opened
entries = list_entries()
if not entries:
    st.info("No checkpoints yet: train a run and press **Save checkpoint** on the Train page.")
    st.stop()

st.dataframe(checkpoint_table(entries), hide_index=True, width="stretch")
by_id = {f"{e.source}/{e.path.name}": e for e in entries}
usable_first = next((i for i, e in enumerate(entries) if e.usable), 0)
chosen = choice_setting(
    "checkpoint",
    "file",
    list(by_id),
    index=usable_first,
    format_func=lambda i: f"{by_id[i].title} ({by_id[i].source})" if i in by_id else i,
)
entry = by_id[chosen]

actions = st.columns(2)
if entry.usable and actions[0].button(
    "Open on the Train page",
    type="primary",
    width="stretch",
    help="Loads it as this session's run; Compare and Posteriors can use it too",
):
    start_job("train", [checkpoint_spec(entry)])
    open_page("train")
with actions[1]:
    delete_control(entry)
if entry.usable and entry.meta is not None:
    with friendly_errors(f"Could not show {entry.path.name}"):
        details(entry, entry.meta)
else:
    st.error(entry.error or f"{entry.path}: it cannot be used")
