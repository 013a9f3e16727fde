"""Streamlit glue shared by the pages: this session's jobs, cached loads, model choices, messages.

Not a page itself (app.py lists the pages). Everything heavy is imported inside the functions that
need it, so the Home page renders without importing PyTorch.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from iwavb.config import CONV_ON_CPU
from iwavb.jobs import DEFAULT_TIMEOUT_S, Job, JobRegistry, JobSnapshot, RunSpec

if TYPE_CHECKING:
    from iwavb.config import TrainConfig
    from iwavb.data import DataSplits
    from iwavb.model import LatentVariableModel
    from iwavb.trainer import Trainer

# One torch thread per training job (IWAVB_THREADS overrides). Measured on the 2-core CPU with the
# server and a headless Chromium showing the live Train page, MNIST IWAVB (K = 10, l = 8, mlp): 1 thread
# 1.0-2.2 steps/s, 2 threads 0.4 steps/s; the training thread alone: 4.8 against 0.7 steps/s.
TRAIN_THREADS = int(os.environ.get("IWAVB_THREADS", "1"))
URL = dict(bind="query-params", persist_state="session")  # a widget's value lives in the page's URL
HEARTBEAT_S = 5.0  # how often every open page tells the registry that its session is alive
SLOTS = ("train", "compare")
SLOT_PAGES = {"train": "pages/train.py", "compare": "pages/compare.py"}


PAGES = [  # (script, title, icon): the app's navigation, set up by `run_app`
    ("pages/home.py", "Learn", ":material/school:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/compare.py", "Compare", ":material/balance:"),
    ("pages/posteriors.py", "Posteriors", ":material/scatter_plot:"),
    ("pages/checkpoints.py", "Checkpoints", ":material/inventory_2:"),
]


def run_app() -> None:
    """app.py: page configuration, the navigation, the sidebar shared by all pages, then the page."""
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False  # see leave_old_multipage_mode
    st.set_page_config(page_title="IWAVB Lab", page_icon=":material/science:", layout="wide")
    navigation = st.navigation([st.Page(script, title=title, icon=icon, default=script == PAGES[0][0])
                                for script, title, icon in PAGES])
    with st.sidebar:
        sidebar_status()
    navigation.run()


def leave_old_multipage_mode() -> None:
    """Call first thing in every page: make app.py's navigation serve a visitor who lands here directly.

    A folder named `pages/` beside app.py makes a fresh Streamlit process start in its old multipage
    mode, in which the first visitor's page script runs on its own (app.py, and with it `st.navigation`,
    never runs) and the sidebar lists the files of `pages/`. When that happens, run the app as app.py
    would, inside this run (no rerun: a widget event of this run must not be lost), and stop.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        run_app()
        st.stop()


@st.cache_resource
def registry() -> JobRegistry:
    """One registry for the server process: jobs of every session, with the watchdog that reaps them."""
    timeout = float(os.environ.get("IWAVB_JOB_TIMEOUT_S", DEFAULT_TIMEOUT_S))
    return JobRegistry(timeout_s=timeout, threads=TRAIN_THREADS)


def owner() -> str:
    """This browser session's token (two tabs: two tokens); calling it is the session's heartbeat."""
    token = st.session_state.setdefault("owner", uuid.uuid4().hex)
    registry().heartbeat(token)
    return token


def open_page(slot: str) -> None:
    """Go to the page of a slot's job. An empty mapping, not None: switch_page refuses to clear URL
    parameters that are bound to the current page's widgets, but may replace them."""
    st.switch_page(SLOT_PAGES[slot], query_params={})


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


def show_job_messages(snap: JobSnapshot) -> None:
    """The job's error or expiry as a message in the page, never a traceback."""
    if snap.status == "failed":
        st.error(snap.error or "the run failed")
    elif snap.status == "expired":
        st.warning(snap.message + ". Start it again to go on.")
    elif snap.status == "queued":
        st.info(snap.message)


def dataset(name: str) -> DataSplits:
    """The data set for display (its shipped previews when absent), loaded once per server process; when
    neither is there, the page (or fragment) shows why and stops."""
    from iwavb.data import DataError
    from iwavb.shared_data import display_dataset

    try:
        with st.spinner(f"Loading {name}…"):
            return display_dataset(name)
    except DataError as err:
        st.error(str(err))
        st.stop()


@st.cache_resource(max_entries=16, show_spinner="Loading the checkpoint…")
def checkpoint_model(path: str, mtime: float) -> tuple[TrainConfig, LatentVariableModel]:
    """A checkpoint's config and model on the CPU in eval mode; `mtime` makes a rewritten file reload."""
    from iwavb.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    return checkpoint.config, checkpoint.build_model("cpu")


@st.cache_resource
def gpu_name() -> str | None:
    """The GPU a run on device "auto" would use, or None on a CPU-only machine."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def device_notice(family: str) -> None:
    """Say which device trains; without a GPU say plainly that the conv family is out of reach."""
    gpu = gpu_name()
    if gpu is not None:
        st.caption(f"Training runs on **{gpu}** (GPU).")
    elif family == "conv":
        st.warning(f"No GPU here: {CONV_ON_CPU}. Choose the mlp family for a live demo.")
    else:
        st.caption(f"Training runs on the **CPU** ({TRAIN_THREADS} thread per run). The conv family (the "
                   "paper's networks) needs a GPU; the mlp family trains live here.")


@dataclass(frozen=True)
class ModelChoice:
    """A model a page can look at: a run of this session (shared with its training thread) or a checkpoint."""

    label: str
    config: TrainConfig
    trainer: Trainer | None = None
    path: Path | None = None

    @contextmanager
    def model(self) -> Iterator[LatentVariableModel]:
        if self.trainer is not None:
            from iwavb.views import viewing

            with viewing(self.trainer) as model:
                yield model
        else:
            assert self.path is not None
            yield checkpoint_model(str(self.path), self.path.stat().st_mtime)[1]


def session_models() -> list[ModelChoice]:
    """The runs of this session that have a model: the Train page's and the four of Compare."""
    choices = []
    for slot in SLOTS:
        current = job(slot)
        if current is None:
            continue
        snap = current.snapshot()
        for index, run in enumerate(snap.runs):
            trainer = current.trainer(index)
            if trainer is not None:
                choices.append(ModelChoice(f"{run.name} ({slot.title()} page, step {run.step:,})", trainer.config,
                                           trainer=trainer))
    return choices


def checkpoint_models() -> list[ModelChoice]:
    """Readable checkpoints in pretrained/ and the runs folder."""
    from iwavb.catalog import list_entries

    return [ModelChoice(f"{e.title} ({e.source})", e.config, path=e.path)
            for e in list_entries() if e.config is not None]


def log_every(dataset: str, device: str) -> int:
    """Steps between records: a few records a second for the live charts (toy ~100 steps/s, images ~5 on
    this 2-core CPU), and few host syncs on a GPU."""
    if device != "cpu" and gpu_name() is not None:
        return 25
    return 10 if dataset == "toy" else 2


def quick_toy_spec() -> RunSpec:
    """IWAVB on the toy data: reaches the landmarks of its exact log p(x) in a few hundred steps."""
    from iwavb.config import TrainConfig

    config = TrainConfig.for_method("iwavb", k=10, dataset="toy", latent_dim=2, steps=400,
                                    log_every=log_every("toy", "auto"))
    return RunSpec(config, label="IWAVB")


def checkpoint_spec(path: Path, config: TrainConfig, label: str) -> RunSpec:
    """Load a checkpoint into a job, on this machine's device."""
    from dataclasses import replace

    return RunSpec(replace(config, device="auto"), label=label, checkpoint=path)


def see_it_work() -> None:
    """Home's demo: load a pretrained model (IWAVB on the toy data when there is one) into the Train page,
    or start a quick toy run."""
    from iwavb.catalog import list_entries

    pretrained = [e for e in list_entries() if e.source == "pretrained" and e.config is not None]
    toy_first = sorted(pretrained, key=lambda e: (e.config.dataset != "toy", e.config.method != "iwavb"))
    if toy_first:
        start_job("train", [checkpoint_spec(toy_first[0].path, toy_first[0].config, toy_first[0].title)])
    else:
        start_job("train", [quick_toy_spec()])
    open_page("train")


def save_run(trainer: Trainer) -> None:
    """Save a run into the runs folder and say where, or why not."""
    from iwavb.checkpoint import CheckpointError
    from iwavb.runs import default_run_path

    try:
        path = trainer.save(default_run_path(trainer.config))
    except CheckpointError as err:
        st.error(str(err))
    else:
        st.success(f"Saved {path} (step {trainer.step:,}). It is listed on the Checkpoints page.")


def four_checkpoints(dataset: str, latent: int, k: int) -> dict:
    """method -> catalog entry of a checkpoint for Compare's "load the four"."""
    from iwavb.catalog import find_four, list_entries

    return find_four(list_entries(), dataset, latent, k)


@contextmanager
def friendly_errors(what: str) -> Iterator[None]:
    """Turn the library's expected failures (no data, bad checkpoint, bad settings) into a message."""
    from iwavb.checkpoint import CheckpointError
    from iwavb.data import DataError

    try:
        yield
    except (CheckpointError, DataError, ValueError, RuntimeError, OSError) as err:
        st.error(f"{what}: {err}")
