"""The settings widgets the pages share, each bound to the page's URL so that a link shares a view.

A value in a link is read once per session, before its widget first appears (`bound`): a value that fits
is taken (names case-insensitively: `method=vae` and `method=VAE` alike); one that does not is left out
and a small notice under the widget says so ("ignored k=abc from the link: K is 2 to 50") until the
setting is changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypedDict, TypeVar

import streamlit as st

from iwavb.core.config import DEFAULT_MULTI_SAMPLE_K, FAMILIES, Contrast, Family
from iwavb.data.names import DATASETS, DatasetName

LATENT_SIZES = (2, 4, 8, 16, 32)  # l = 2 draws true posteriors; the paper uses 8 and 32
SEEDS = (0, 2**31 - 1)  # the range of a seed a run accepts
LATENT_DEFAULT = "latent_default"  # session state: the default the latent size was last shown with
NOTICES = "link_notices"  # session state: key -> (notice, the widget's value when it was given)
T = TypeVar("T")


class UrlBinding(TypedDict):
    bind: Literal["query-params"]
    persist_state: Literal["session"]


URL: UrlBinding = {"bind": "query-params", "persist_state": "session"}  # a widget's value lives in the page's URL


def one_of(options: Sequence[Any], format_func: Callable[[Any], str] = str) -> Callable[[str], Any]:
    """A link's text -> the option it names (by value or by label, in any case)."""

    def parse(text: str) -> Any:
        wanted = text.strip().casefold()
        for option in options:
            if wanted in (str(option).casefold(), format_func(option).casefold()):
                return option
        shown = ", ".join(format_func(o) for o in options[:8]) + (", ..." if len(options) > 8 else "")
        raise ValueError(f"it is one of {shown}")

    return parse


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """A link's text -> a whole number from low to high."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ValueError(f"it is a whole number from {low:,} to {high:,}")
        return value

    return parse


def bound(
    widget: Callable[..., Any], label: str, key: str, parse: Callable[[str], Any], *args: Any, **kwargs: Any
) -> Any:
    """`widget(label, *args, key=key, **kwargs)` bound to the URL, its value taken from a link when it fits."""
    notices: dict[str, tuple[str, Any]] = st.session_state.setdefault(NOTICES, {})
    raw = st.query_params.get(key)
    fresh = key not in st.session_state and raw is not None  # the session's own value wins after its first run
    if raw is not None and fresh:
        try:
            st.session_state[key] = parse(raw)
        except ValueError as err:
            notices[key] = (f"ignored {key}={raw} from the link: {label} {err.args[0].removeprefix('it ')}", None)
    value = widget(label, *args, key=key, **URL, **kwargs)
    if key in notices:
        notice, shown_with = notices[key]
        if fresh:
            notices[key] = (notice, value)
        elif shown_with != value:  # changed since: the notice has been read
            del notices[key]
            return value
        st.caption(f":material/link_off: {notice}")
    return value


def dataset_select() -> DatasetName:
    return bound(st.selectbox, "data set", "data", one_of(DATASETS), DATASETS)


def latent_select(help: str, default: int = 2) -> int:
    """The latent size, from `default` (the Train page's depends on the data set). While l still holds the default
    it was last shown with, it follows a new one (MNIST after the toy: 8 after 2); a size chosen or linked stays."""
    shown_default = st.session_state.get(LATENT_DEFAULT)
    if shown_default not in (None, default) and st.session_state.get("latent") == shown_default:
        st.session_state["latent"] = default
    st.session_state[LATENT_DEFAULT] = default
    return bound(
        st.select_slider, "latent size l", "latent", one_of(LATENT_SIZES), LATENT_SIZES, value=default, help=help
    )


def k_slider(label: str, low: int = 2, high: int = 50) -> int:
    """K, importance samples per x: IWAE's and IWAVB's default, 10, to begin with."""
    return bound(st.slider, label, "k", whole_number(low, high), low, high, DEFAULT_MULTI_SAMPLE_K)


def family_radio(help: str | None = None) -> Family:
    return bound(st.radio, "network family", "family", one_of(FAMILIES), FAMILIES, horizontal=True, help=help)


def contrast_toggle(label: str = "adaptive contrast (AC)") -> Contrast:
    """AVB's adaptive contrast for an implicit q (AVB, IWAVB): the paper's setting."""
    on = bound(
        st.toggle,
        label,
        "contrast",
        one_of((True, False)),
        help="T compares q's normalised samples with a Gaussian of q's own mean and variance, so it only has "
        "to learn how q differs from a Gaussian (the paper trains with it)",
    )
    return "adaptive" if on else "none"


def seed_input() -> int:
    return int(bound(st.number_input, "seed", "seed", whole_number(*SEEDS), *SEEDS, 0))


def number_setting(label: str, key: str, low: int, high: int, default: int, **kwargs: Any) -> int:
    """A whole-number setting in the URL (steps, a test point, a draw)."""
    return int(bound(st.number_input, label, key, whole_number(low, high), low, high, default, **kwargs))


def choice_setting(label: str, key: str, options: Sequence[T], index: int = 0, **kwargs: Any) -> T:
    """One of `options` in the URL (a selectbox)."""
    format_func = kwargs.get("format_func", str)
    return bound(st.selectbox, label, key, one_of(options, format_func), options, index=index, **kwargs)
