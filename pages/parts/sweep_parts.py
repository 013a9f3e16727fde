"""The Checkpoints page's sweeps (`python -m iwavb sweep`): each one's results in Table 1's shape, its trials,
and any trial opened on the Train page."""

from __future__ import annotations

import streamlit as st

from iwavb.sweep.spec import SweepError
from iwavb.sweep.table import list_sweeps, load_results, table1_markdown, trial_entries
from pages.parts.navigation import open_page
from pages.parts.runs import checkpoint_spec
from pages.parts.session import start_job


def sweeps_section() -> None:
    """An expander listing the sweeps in the runs folder's `sweeps/`; nothing when there are none."""
    folders = list_sweeps()
    if not folders:
        return
    with st.expander(f"Sweeps ({len(folders)}): results in the shape of the paper's Table 1"):
        folder = st.selectbox("sweep", folders, format_func=lambda p: p.name, key="sweep")
        try:
            results = load_results(folder)
        except SweepError as err:
            st.error(str(err))
            return
        counts = results.counts
        st.caption(
            f"`{folder}` · budget per trial: {results.budget} · test NLL (nats): {results.evaluation} · "
            f"{counts['done']} of {len(results.trials)} trials done, {counts['failed']} failed · {results.written}. "
            f"`python -m iwavb sweep {results.spec}` goes on where it stopped."
        )
        st.markdown(table1_markdown(results.cells))
        st.dataframe(
            [
                {
                    "trial": t.name,
                    "state": t.state,
                    "test NLL": None if t.nll is None else round(t.nll, 2),
                    "± s.e. (images)": None if t.nll_se is None else round(t.nll_se, 2),
                    "steps": t.step,
                    "training minutes": None if t.train_seconds is None else round(t.train_seconds / 60, 1),
                    "why it failed": t.reason or "",
                }
                for t in results.trials
            ],
            hide_index=True,
            width="stretch",
        )
        entries = {e.path.stem: e for e in trial_entries(folder) if e.config is not None}
        if not entries:
            return
        name = st.selectbox("trial", list(entries), key="sweep_trial")
        if st.button("Open this trial on the Train page", help="Loads it as this session's run"):
            start_job("train", [checkpoint_spec(entries[name])])
            open_page("train")
