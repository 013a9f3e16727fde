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
import streamlit.components.v1 as components

SOURCE = Path(__file__).resolve().parent / "live_charts"


def _fill(folder: Path) -> Path:
    """Put the component's page and plotly.js (the plotly package's own copy) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOURCE / "index.html", folder / "index.html")
    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    target = folder / "plotly.min.js"
    if not target.exists() or target.stat().st_size != bundled.stat().st_size:
        shutil.copyfile(bundled, target)
    return folder


@cache
def _component():
    """Declare the component from ~/.cache/iwavb (or, if that cannot be written, a fresh temporary folder)."""
    try:
        folder = _fill(Path.home() / ".cache" / "iwavb" / f"live-charts-{plotly.__version__}")
    except OSError:
        folder = _fill(Path(tempfile.mkdtemp(prefix="iwavb-live-charts-")))
    return components.declare_component("iwavb_live_charts", path=str(folder))


def live_charts(rows: list[list[go.Figure]], key: str) -> None:
    """Rows of figures, side by side within a row, redrawn in place when they change."""
    height = sum(max(int(fig.layout.height or 340) for fig in row) for row in rows)
    specs = [[fig.to_json() for fig in row] for row in rows]
    _component()(rows=specs, key=key, default=None, height=height)
