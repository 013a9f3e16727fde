"""The Checkpoints page's parts: the overview table, one checkpoint's details, and deleting one's own runs.

A file that cannot be used is one row that says why; nothing about it can break the page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from iwavb.app.plots import CurveSeries, bound_figure, image_rows_figure
from iwavb.app.shared_data import display_dataset
from iwavb.app.views import ModelScore, curves, exact_images, exact_log_px, image_shape, preview_rows
from iwavb.artefacts.catalog import DeleteRefused, Entry, delete_run, eval_log_px
from iwavb.errors import IWAVBError
from iwavb.files import FileSignature
from iwavb.training.checkpoint import CheckpointMeta
from iwavb.training.config import TrainConfig
from pages.parts.loads import checkpoint_model, dataset
from pages.parts.session import owner_id

MESSAGE = "checkpoints_message"  # session state: what the last delete did, shown once


def _score(entry: Entry) -> ModelScore | None:
    """From the evaluation file when there is one; exact (grid) for l = 2; else (or if unreadable) None."""
    if entry.meta is None or not entry.usable:
        return None
    saved = eval_log_px(entry.path, entry.meta.step)
    if saved is not None or entry.meta.config.latent_dim != 2:
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
                "step": e.meta.step if e.meta else None,
                "log p(x)": round(saved.log_px, 3) if saved else None,
                "measured by": saved.how if saved else "",
                "problem": _short(e.error) if e.error else "",
                "file": e.path.name,
            }
        )
    return rows


def _short(error: str, length: int = 90) -> str:
    """An error without the file's path (the row names the file), cut to `length`."""
    text = error.split(": ", 1)[1] if ": " in error else error
    return text if len(text) <= length else text[: length - 1] + "…"


def details(entry: Entry, meta: CheckpointMeta) -> None:
    """One usable checkpoint: its score, settings, curves and a preview of what it does."""
    cfg: TrainConfig = meta.config
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
            "steps": f"{meta.step:,} of {cfg.steps:,}",
            "batch size": cfg.batch_size,
            "learning rates": f"{cfg.lr:g} / {cfg.disc_lr:g}",
            "seed": cfg.seed,
            "trained on": meta.device,
            "training time": f"{meta.train_seconds:.0f} s",
            "written": meta.created or "?",
        }
        st.dataframe(
            [{"setting": k, "value": str(v)} for k, v in settings.items()],
            hide_index=True,
            width="stretch",
            height=35 * (len(settings) + 1) + 3,
        )
    series = [CurveSeries(cfg.method.upper(), cfg.method, cfg.q, curves(meta.history))]
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


def delete_control(entry: Entry) -> None:
    """Delete, for the owner of a run (README: who owns a run): the button carries the file it was shown for
    and the file's signature then, so it deletes exactly that file, or nothing if it is gone or changed."""
    if entry.deletable_by(owner_id()):
        with st.popover("Delete this run", width="stretch"):
            st.write(f"Delete `{entry.path.name}` from your runs? This cannot be undone.")
            st.button(
                "Delete",
                type="primary",
                key=f"delete:{entry.path.name}",
                on_click=_delete,
                args=(entry.path, entry.signature),
            )
    elif entry.source == "run":
        st.caption(
            "A link in the runs folder: the app does not delete links."
            if entry.link
            else "Saved by another tab or name, or outside the app: you can load it, not delete it."
        )


def _delete(path: Path, signature: FileSignature | None) -> None:
    try:
        delete_run(path, owner_id(), signature)
    except (DeleteRefused, OSError) as err:
        st.session_state[MESSAGE] = ("error", str(err))
    else:
        st.session_state[MESSAGE] = ("success", f"Deleted {path.name}.")


def last_message() -> None:
    """What the last Delete did (its callback ran before this page did)."""
    kind, text = st.session_state.pop(MESSAGE, (None, ""))
    if kind == "error":
        st.error(text)
    elif kind == "success":
        st.success(text)
