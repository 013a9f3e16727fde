"""Starting, loading and saving this session's runs from the pages."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import streamlit as st

from iwavb.app.jobs import RunSpec
from iwavb.errors import IWAVBError
from iwavb.training.config import TrainConfig
from pages.parts.loads import gpu_name
from pages.parts.navigation import open_page
from pages.parts.session import owner_id, start_job

if TYPE_CHECKING:  # these import torch, which the Home page does without
    from iwavb.artefacts.catalog import Entry
    from iwavb.training.trainer import Trainer


def log_every(dataset: str, device: str) -> int:
    """Steps between records: a few records a second for the live charts (toy ~100 steps/s, images ~5 on
    this 2-core CPU), and few host syncs on a GPU."""
    if device != "cpu" and gpu_name() is not None:
        return 25
    return 10 if dataset == "toy" else 2


def quick_toy_spec() -> RunSpec:
    """IWAVB on the toy data: reaches the landmarks of its exact log p(x) in a few hundred steps."""
    config = TrainConfig.for_method(
        "iwavb", k=10, dataset="toy", latent_dim=2, steps=400, log_every=log_every("toy", "auto")
    )
    return RunSpec(config, label="IWAVB")


def checkpoint_spec(entry: Entry, label: str | None = None) -> RunSpec:
    """Load a listed checkpoint into a job, on this machine's device; its title is the run's label."""
    if entry.config is None or not entry.usable:
        raise ValueError(f"{entry.path.name} cannot be loaded: {entry.error}")
    return RunSpec(replace(entry.config, device="auto"), label=label or entry.title, checkpoint=entry.path)


def see_it_work() -> None:
    """Home's demo: load a pretrained model (IWAVB on the toy data when there is one) into the Train page,
    or start a quick toy run."""
    from iwavb.artefacts.catalog import list_entries  # imported here: the Home page renders without torch

    pretrained = [(e, c) for e in list_entries() if e.source == "pretrained" and e.usable and (c := e.config)]
    toy_first = sorted(pretrained, key=lambda pair: (pair[1].dataset != "toy", pair[1].method != "iwavb"))
    if toy_first:
        start_job("train", [checkpoint_spec(toy_first[0][0])])
    else:
        start_job("train", [quick_toy_spec()])
    open_page("train")


def save_run(trainer: Trainer) -> None:
    """Save a run into the runs folder, as this session's (or its name's), and say where, or why not. Another
    run's file is never replaced (a taken name gets -2, -3, ...), and a run that trained nothing is not saved."""
    from iwavb.training import runs

    if not trainer.trained:
        st.warning("Nothing has been trained since this run began (or was loaded): there is nothing new to save.")
        return
    try:
        path = runs.save_run(trainer, runs.default_run_path(trainer.config), owner_id())
    except IWAVBError as err:
        st.error(str(err))
    else:
        st.success(f"Saved {path} (step {trainer.step:,}). It is listed on the Checkpoints page.")
