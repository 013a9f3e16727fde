"""Data sets held in memory once per process, shared read-only by the app's jobs and pages.

Where an image data set is not on this machine, `display_dataset` falls back to the test images that
ship in `pretrained/previews.npz`, so that pretrained models can still be shown (not trained) offline.
"""

from __future__ import annotations

import functools

from ..artefacts.pretrained import preview_images
from ..data.loading import DataError, load_dataset
from ..data.splits import DataSplits


@functools.lru_cache(maxsize=4)
def cached_dataset(name: str) -> DataSplits:
    """The full data set (MNIST: 55 MB of uint8), loaded once."""
    return load_dataset(name)


@functools.lru_cache(maxsize=4)
def display_dataset(name: str) -> DataSplits:
    """The data set, or, when it is absent, its shipped preview images as train, validation and test."""
    try:
        return cached_dataset(name)
    except DataError:
        previews = preview_images(name)
        if previews is None:
            raise
        split, label_names = previews
        return DataSplits(name, split, split, split, label_names, previews_only=True)
