"""IWAVB Lab: `streamlit run app.py`. The navigation and the shared sidebar are set up by `run_app`.

The five pages are the top-level scripts of `pages/`; what they share lives in `pages/parts/`.
"""

from pages.parts.common import run_app

run_app()
