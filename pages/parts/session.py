"""This browser session's training jobs: the server's one registry, the session's token, its slots.

Imports no PyTorch (the Home page renders without it): jobs import torch in their own threads.
"""

from __future__ import annotations

import uuid

import streamlit as st

from iwavb import settings
from iwavb.app.jobs import Job, JobRegistry, RunSpec

HEARTBEAT_S = 5.0  # how often every open page tells the registry that its session is alive
SLOTS = ("train", "compare")
OWNER_NAME = "owner_name"  # session state: the name this session's runs are saved under, if it chose one


@st.cache_resource
def registry() -> JobRegistry:
    """One registry for the server process: jobs of every session, with the watchdog that reaps them.

    One torch thread per training job unless IWAVB_THREADS says otherwise: measured on the 2-core CPU with
    the server and a headless Chromium showing the live Train page, MNIST IWAVB (K = 10, l = 8, mlp) trained
    at 1.0-2.2 steps/s with 1 thread and 0.4 with 2; the training thread alone: 4.8 against 0.7 steps/s."""
    return JobRegistry(timeout_s=settings.job_timeout_s(), threads=settings.threads())


def owner() -> str:
    """This browser session's token (two tabs: two tokens); calling it is the session's heartbeat."""
    token = st.session_state.setdefault("owner", uuid.uuid4().hex)
    registry().heartbeat(token)
    return token


def owner_name_input() -> None:
    """In the sidebar of the pages that save and delete runs (Train, Checkpoints): an optional name that the runs
    this tab saves belong to; kept for the session across pages, never put in the URL."""
    st.text_input(
        "your name (optional)",
        key=OWNER_NAME,
        max_chars=64,
        persist_state="session",
        help="The runs you save belong to this browser tab, or to this name if you give one, so that you can "
        "delete them later from another tab. Not a password: anyone who types the same name can delete them.",
    )


def owner_id() -> str:
    """Who this session is to the runs folder: its name if it chose one, else its browser tab (README)."""
    from iwavb.training.runs import owner_tag  # imported here: it imports torch, which the Home page does without

    name = str(st.session_state.get(OWNER_NAME) or "").strip()
    return owner_tag("name", name) if name else owner_tag("session", owner())


def job(slot: str) -> Job | None:
    return st.session_state.get(f"job:{slot}")


def start_job(slot: str, specs: list[RunSpec]) -> Job:
    """Start this session's job in `slot`, replacing (and freeing) the one that was there."""
    started = registry().submit(owner(), slot, specs)
    st.session_state[f"job:{slot}"] = started
    return started


@st.fragment(run_every=HEARTBEAT_S)
def sidebar_status() -> None:
    """In the sidebar of every page: the session's heartbeat and its runs' progress."""
    owner()
    for slot in SLOTS:
        current = job(slot)
        if current is None:
            continue
        snap = current.snapshot()
        run = snap.runs[snap.current]
        if snap.active:
            st.caption(f"**{slot.title()}**: {run.name} {snap.status}, step {run.step:,} of {run.total_steps:,}")
            st.progress(min(1.0, run.step / max(run.total_steps, 1)))
        elif snap.status in ("failed", "expired"):
            st.caption(f"**{slot.title()}**: {snap.message}")
