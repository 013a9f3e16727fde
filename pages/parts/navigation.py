"""Moving between pages: switching to a job's page, and one workaround.

A folder named `pages/` beside app.py makes a fresh Streamlit process start in its legacy multipage mode:
until some session runs `st.navigation`, a visitor whose first request is a page's URL (a shared link to
/train) gets that page's script on its own, without app.py's navigation and sidebar. Streamlit documents
no way to turn that mode off ("as soon as any session executes st.navigation, the pages/ directory is
ignored"), so `leave_legacy_multipage_mode` does it once per process, from `pages/parts/__init__.py`,
which every page imports first. It relies on `PagesManager.uses_pages_directory`, a private flag;
tests/test_app.py fails loudly if a Streamlit upgrade removes it.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

SLOT_PAGES = {"train": "pages/train.py", "compare": "pages/compare.py"}  # where a slot's job is shown


def leave_legacy_multipage_mode() -> None:
    """If this process is still in Streamlit's legacy multipage mode, leave it and rerun this session, which
    then goes through app.py. Only the first script run of a server can be in that mode, and a first run
    carries no widget event, so the rerun loses nothing."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def open_page(slot: str) -> None:
    """Go to the page of a slot's job. An empty mapping, not None: switch_page refuses to clear URL
    parameters that are bound to the current page's widgets, but may replace them."""
    st.switch_page(SLOT_PAGES[slot], query_params={})
