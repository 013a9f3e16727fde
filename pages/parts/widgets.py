"""The settings widgets the pages share, each bound to the page's URL so that a link shares a view."""

from __future__ import annotations

from typing import Literal, TypedDict

import streamlit as st

from iwavb.core.config import DEFAULT_MULTI_SAMPLE_K, FAMILIES, Contrast, Family
from iwavb.data.names import DATASETS, DatasetName

LATENT_SIZES = (2, 4, 8, 16, 32)  # l = 2 draws true posteriors; the paper uses 8 and 32
SEEDS = (0, 2**31 - 1)  # the range of a seed a run accepts


class UrlBinding(TypedDict):
    bind: Literal["query-params"]
    persist_state: Literal["session"]


URL: UrlBinding = {"bind": "query-params", "persist_state": "session"}  # a widget's value lives in the page's URL


def dataset_select() -> DatasetName:
    return st.selectbox("data set", DATASETS, key="data", **URL)


def latent_select(help: str) -> int:
    return st.select_slider("latent size l", LATENT_SIZES, value=2, key="latent", **URL, help=help)


def k_slider(label: str, low: int = 2, high: int = 50) -> int:
    """K, importance samples per x: IWAE's and IWAVB's default, 10, to begin with."""
    return st.slider(label, low, high, DEFAULT_MULTI_SAMPLE_K, key="k", **URL)


def family_radio(help: str | None = None) -> Family:
    return st.radio("network family", FAMILIES, key="family", horizontal=True, **URL, help=help)


def contrast_toggle(label: str = "adaptive contrast (AC)") -> Contrast:
    """AVB's adaptive contrast for an implicit q (AVB, IWAVB): the paper's setting."""
    on = st.toggle(
        label,
        key="contrast",
        **URL,
        help="T compares q's normalised samples with a Gaussian of q's own mean and variance, so it only has "
        "to learn how q differs from a Gaussian (the paper trains with it)",
    )
    return "adaptive" if on else "none"


def seed_input() -> int:
    return int(st.number_input("seed", *SEEDS, 0, key="seed", **URL))
