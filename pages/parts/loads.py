"""Loads shared by the pages and cached for the server process: data sets, checkpoints, the GPU's name.

Heavy modules are imported inside these functions, so that a page that does not call them (Home)
renders without importing PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from iwavb.errors import IWAVBError

if TYPE_CHECKING:
    from iwavb.core.model import LatentVariableModel
    from iwavb.data.splits import DataSplits
    from iwavb.training.config import TrainConfig


def dataset(name: str) -> DataSplits:
    """The data set for display (its shipped previews when absent), loaded once per server process; when
    neither is there, the page (or fragment) shows why and stops."""
    from iwavb.app.shared_data import display_dataset

    try:
        with st.spinner(f"Loading {name}…"):
            return display_dataset(name)
    except IWAVBError as err:  # no data set and no previews of it
        st.error(str(err))
        st.stop()


@st.cache_resource(max_entries=16, show_spinner="Loading the checkpoint…")
def checkpoint_model(path: str, mtime: float) -> tuple[TrainConfig, LatentVariableModel]:
    """A checkpoint's config and model on the CPU in eval mode; `mtime` makes a rewritten file reload."""
    from iwavb.training.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    return checkpoint.config, checkpoint.build_model("cpu")


@st.cache_resource
def gpu_name() -> str | None:
    """The GPU a run on device "auto" would use, or None on a CPU-only machine."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
