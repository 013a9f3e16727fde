"""The slow first uses behind Start, done in a background thread while the Train page's settings are picked.

Measured in the app on the 2-core CPU (py-spy on the server while `benchmarks/train_page_insight.py` ran):
after Start, a new MNIST run waited 2.6 s for scikit-learn's first import (the latent plane's PCA, l > 2),
holding its model so that no step was taken, and the first live chart ~1 s for pandas (Streamlit imports it to
check a component's arguments); the first memory estimate imports torch._dynamo (1-2 s) through the meta device.
"""

from __future__ import annotations

import functools
import importlib
import threading

from ..training.config import TrainConfig
from ..training.memory import training_memory

# views.latent_projection's PCA (scikit-learn), and what a page names (e.g. "pandas" for Streamlit)
LIBRARY_IMPORTS = ("sklearn.decomposition",)


def warm_up(modules: tuple[str, ...] = ()) -> None:
    """In the order Start needs them: one memory estimate (the meta device's first use imports torch._dynamo),
    the page's `modules` (its first chart), then the library's (its first pictures)."""
    training_memory(TrainConfig.for_method("vae", dataset="toy"), False)
    for name in (*modules, *LIBRARY_IMPORTS):
        importlib.import_module(name)


@functools.cache
def warm_up_in_background(modules: tuple[str, ...] = ()) -> threading.Thread:
    """`warm_up(modules)` once per process (and per `modules`), in a daemon thread."""
    thread = threading.Thread(target=warm_up, args=(modules,), daemon=True, name="warm-up")
    thread.start()
    return thread
