"""IWAVB Lab: `streamlit run app.py`. Sets up the pages and the sidebar shared by all of them.

The pages live in `app_pages/`, not `pages/`: Streamlit treats a folder named `pages/` as an
old-style multipage app until the first `st.navigation` call, and the first visitor of a fresh
server would then see every module of that folder listed as a page."""

import streamlit as st

from app_pages.common import sidebar_status

st.set_page_config(page_title="IWAVB Lab", page_icon=":material/science:", layout="wide")
navigation = st.navigation([
    st.Page("app_pages/home.py", title="Learn", icon=":material/school:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/balance:"),
    st.Page("app_pages/posteriors.py", title="Posteriors", icon=":material/scatter_plot:"),
    st.Page("app_pages/checkpoints.py", title="Checkpoints", icon=":material/inventory_2:"),
])
with st.sidebar:
    sidebar_status()
navigation.run()
