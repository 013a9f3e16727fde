"""The Checkpoints page's parts: the overview table and one checkpoint's details."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from iwavb.catalog import Entry, eval_log_px
from pages.parts import common


def _score(entry: Entry) -> tuple[float, str] | None:
    """From the evaluation file when there is one; exact (grid) for l = 2; else (or if unreadable) None."""
    from iwavb.checkpoint import CheckpointError
    from iwavb.data import DataError

    if entry.config is None:
        return None
    saved = eval_log_px(entry.path, (entry.meta or {}).get("step"))
    if saved is not None or entry.config.latent_dim != 2:
        return None if saved is None else (saved.log_px, saved.how)
    try:
        return _exact(str(entry.path), entry.path.stat().st_mtime), "exact log p(x)"
    except (CheckpointError, DataError, OSError):
        return None  # the details below say what is wrong with it


@st.cache_data(show_spinner="Computing the exact log p(x) on a grid…")
def _exact(path: str, mtime: float) -> float:
    from iwavb.shared_data import display_dataset
    from iwavb.views import exact_images, exact_log_px

    config, model = common.checkpoint_model(path, mtime)
    return exact_log_px(model, exact_images(display_dataset(config.dataset)))  # a DataError: _score's to catch


def checkpoint_table(entries: list[Entry]) -> list[dict]:
    rows = []
    for e in entries:
        cfg = e.config
        saved = _score(e)
        rows.append({
            "name": e.title, "source": e.source,
            "method": cfg.method.upper() if cfg else "unreadable", "data": cfg.dataset if cfg else "",
            "l": cfg.latent_dim if cfg else None, "K": cfg.k if cfg else None, "family": cfg.family if cfg else "",
            "step": (e.meta or {}).get("step"), "log p(x)": round(saved[0], 3) if saved else None, "measured by": saved[1] if saved else "",
            "file": e.path.name,
        })
    return rows


def details(entry: Entry) -> None:
    from iwavb.checkpoint import CheckpointError
    from iwavb.plots import CurveSeries, bound_figure, image_rows_figure
    from iwavb.trainer import Record
    from iwavb.views import curves, image_shape, preview_rows

    cfg, meta = entry.config, entry.meta or {}
    if entry.description:
        st.markdown(entry.description)
    left, right = st.columns([1, 2])
    with left:
        score = _score(entry)
        st.metric(score[1] if score else "log p(x)", f"{score[0]:.3f}" if score else "not evaluated",
                  help="exact for l = 2 (grid); otherwise from `python -m iwavb eval` when it has been run")
        settings = {"method": cfg.method.upper(), "q": cfg.q, "K": cfg.k, "data": cfg.dataset, "latent size": cfg.latent_dim,
                    "family": cfg.family, "steps": f"{meta.get('step', 0):,} of {cfg.steps:,}",
                    "batch size": cfg.batch_size, "learning rates": f"{cfg.lr:g} / {cfg.disc_lr:g}", "seed": cfg.seed,
                    "trained on": meta.get("device", "?"), "training time": f"{meta.get('train_seconds', 0):.0f} s",
                    "written": meta.get("created", "?")}
        st.dataframe([{"setting": k, "value": str(v)} for k, v in settings.items()], hide_index=True, width="stretch",
                     height=35 * (len(settings) + 1) + 3)
    history = [Record(**r) for r in meta.get("history", [])]
    series = [CurveSeries(cfg.method.upper(), cfg.method, cfg.q, curves(history))]
    right.plotly_chart(bound_figure(series, title="Bound during training"), key="checkpoint_curves")
    try:
        _, model = common.checkpoint_model(str(entry.path), Path(entry.path).stat().st_mtime)
    except (CheckpointError, OSError) as err:
        st.error(str(err))
        return
    rows = preview_rows(model, common.dataset(cfg.dataset))
    st.plotly_chart(image_rows_figure(rows, image_shape(cfg.data_dim), "Preview"), key="checkpoint_preview",
                    config={"displayModeBar": False})
