"""IWAVB Lab: `streamlit run app.py`. The app's map: its pages by section, then the page that is asked for.

Each page is a thin script in `pages/` over the library (`iwavb/`, which never imports Streamlit); what the
pages share lives in `pages/parts/`.
"""

import streamlit as st

from pages.parts.session import sidebar_status

st.set_page_config(page_title="IWAVB Lab", page_icon=":material/science:", layout="wide")
pages = {
    "Learn": [st.Page("pages/home.py", title="Learn", icon=":material/school:", default=True)],
    "Experiment": [
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/balance:"),
        st.Page("pages/posteriors.py", title="Posteriors", icon=":material/scatter_plot:"),
    ],
    "Models": [st.Page("pages/checkpoints.py", title="Checkpoints", icon=":material/inventory_2:")],
}
page = st.navigation(pages)
with st.sidebar:
    sidebar_status()  # this session's heartbeat and its runs' progress, on every page
page.run()
