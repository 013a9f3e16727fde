"""Messages in the page instead of tracebacks: a job's failure, the device, the library's expected errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from iwavb import settings
from iwavb.app.jobs import JobSnapshot
from iwavb.errors import IWAVBError
from iwavb.training.config import CONV_ON_CPU
from pages.parts.loads import gpu_name


def show_job_messages(snap: JobSnapshot) -> None:
    """The job's error or expiry as a message in the page, never a traceback."""
    if snap.status == "failed":
        st.error(snap.error or "the run failed")
    elif snap.status == "expired":
        st.warning(snap.message + ". Start it again to go on.")
    elif snap.status == "queued":
        st.info(snap.message)


def device_notice(family: str) -> None:
    """Say which device trains; without a GPU say plainly that the conv family is out of reach."""
    gpu = gpu_name()
    if gpu is not None:
        st.caption(f"Training runs on **{gpu}** (GPU).")
    elif family == "conv":
        st.warning(f"No GPU here: {CONV_ON_CPU}. Choose the mlp family for a live demo.")
    else:
        threads = settings.threads()
        st.caption(
            f"Training runs on the **CPU** ({threads} thread{'s' if threads > 1 else ''} per run). The conv "
            "family (the paper's networks) needs a GPU; the mlp family trains live here."
        )


@contextmanager
def friendly_errors(what: str) -> Iterator[None]:
    """Turn the library's expected failures (no data, bad checkpoint, bad settings) into a message."""
    try:
        yield
    except (IWAVBError, ValueError, RuntimeError, OSError) as err:
        st.error(f"{what}: {err}")
