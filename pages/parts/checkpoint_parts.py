"""The Checkpoints page's parts: the overview table and one checkpoint's details."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from iwavb.app.plots import CurveSeries, bound_figure, image_rows_figure
from iwavb.app.shared_data import display_dataset
from iwavb.app.views import ModelScore, curves, exact_images, exact_log_px, image_shape, preview_rows
from iwavb.artefacts.catalog import Entry, eval_log_px
from iwavb.errors import IWAVBError
from iwavb.training.config import TrainConfig
from iwavb.training.records import Record
from pages.parts.loads import checkpoint_model, dataset


def _score(entry: Entry) -> ModelScore | None:
    """From the evaluation file when there is one; exact (grid) for l = 2; else (or if unreadable) None."""
    if entry.config is None:
        return None
    saved = eval_log_px(entry.path, (entry.meta or {}).get("step"))
    if saved is not None or entry.config.latent_dim != 2:
        return None if saved is None else ModelScore(saved.log_px, saved.how, None)
    try:
        return ModelScore(_exact(str(entry.path), entry.path.stat().st_mtime), "exact log p(x)", None)
    except (IWAVBError, OSError):
        return None  # the details below say what is wrong with it


@st.cache_data(show_spinner="Computing the exact log p(x) on a grid…")
def _exact(path: str, mtime: float) -> float:
    config, model = checkpoint_model(path, mtime)
    return exact_log_px(model, exact_images(display_dataset(config.dataset)))  # a DataError: _score's to catch


def checkpoint_table(entries: list[Entry]) -> list[dict]:
    rows = []
    for e in entries:
        cfg = e.config
        saved = _score(e)
        rows.append(
            {
                "name": e.title,
                "source": e.source,
                "method": cfg.title if cfg else "unreadable",
                "data": cfg.dataset if cfg else "",
                "l": cfg.latent_dim if cfg else None,
                "K": cfg.k if cfg else None,
                "family": cfg.family if cfg else "",
                "step": (e.meta or {}).get("step"),
                "log p(x)": round(saved.log_px, 3) if saved else None,
                "measured by": saved.how if saved else "",
                "file": e.path.name,
            }
        )
    return rows


def details(entry: Entry, cfg: TrainConfig) -> None:
    """One readable checkpoint: its score, settings, curves and a preview of what it does."""
    meta = entry.meta or {}
    if entry.description:
        st.markdown(entry.description)
    left, right = st.columns([1, 2])
    with left:
        score = _score(entry)
        st.metric(
            score.how if score else "log p(x)",
            f"{score.log_px:.3f}" if score else "not evaluated",
            help="exact for l = 2 (grid); otherwise from `python -m iwavb eval` when it has been run",
        )
        settings = {
            "method": cfg.title,
            "q": cfg.q,
            "K": cfg.k,
            "data": cfg.dataset,
            "latent size": cfg.latent_dim,
            "family": cfg.family,
            "steps": f"{meta.get('step', 0):,} of {cfg.steps:,}",
            "batch size": cfg.batch_size,
            "learning rates": f"{cfg.lr:g} / {cfg.disc_lr:g}",
            "seed": cfg.seed,
            "trained on": meta.get("device", "?"),
            "training time": f"{meta.get('train_seconds', 0):.0f} s",
            "written": meta.get("created", "?"),
        }
        st.dataframe(
            [{"setting": k, "value": str(v)} for k, v in settings.items()],
            hide_index=True,
            width="stretch",
            height=35 * (len(settings) + 1) + 3,
        )
    history = [Record(**r) for r in meta.get("history", [])]
    series = [CurveSeries(cfg.method.upper(), cfg.method, cfg.q, curves(history))]
    right.plotly_chart(bound_figure(series, title="Bound during training"), key="checkpoint_curves")
    try:
        _, model = checkpoint_model(str(entry.path), Path(entry.path).stat().st_mtime)
    except (IWAVBError, OSError) as err:
        st.error(str(err))
        return
    rows = preview_rows(model, dataset(cfg.dataset))
    st.plotly_chart(
        image_rows_figure(rows, image_shape(cfg.data_dim), "Preview"),
        key="checkpoint_preview",
        config={"displayModeBar": False},
    )
