"""Plotly charts that update in place while a run trains (a small Streamlit component).

`st.plotly_chart` gives a chart a new identity whenever its figure changes, so a chart refreshed a few
times a second is torn down and redrawn each time and blinks. This component keeps one iframe (by its
key) and redraws changed figures with Plotly.react. It needs no network: the page loads the
plotly.js that ships with the plotly Python package, copied beside it on first use.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

import plotly
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components

SOURCE = Path(__file__).resolve().parent / "live_charts"


@cache
def _component():
    """Declare the component from a folder holding its page and a copy of plotly.min.js."""
    folder = Path(tempfile.gettempdir()) / f"iwavb-live-charts-{plotly.__version__}"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(SOURCE / "index.html", folder / "index.html")
    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    target = folder / "plotly.min.js"
    if not target.exists() or target.stat().st_size != bundled.stat().st_size:
        shutil.copyfile(bundled, target)
    return components.declare_component("iwavb_live_charts", path=str(folder))


def live_charts(rows: list[list[go.Figure]], key: str) -> None:
    """Rows of figures, side by side within a row, redrawn in place when they change."""
    height = sum(max(int(fig.layout.height or 340) for fig in row) for row in rows)
    specs = [[fig.to_json() for fig in row] for row in rows]
    _component()(rows=specs, key=key, default=None, height=height)
