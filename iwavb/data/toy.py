"""AVB's toy problem (docs/background.md): four equiprobable one-hot points of length 4, latent size 2.

Its exact log p(x) has two landmarks a class can watch a model reach: the data distribution itself,
and a decoder that ignores z (posterior collapse), which can do no better than independent pixels.
"""

from __future__ import annotations

import math

import torch

from .splits import DataSplits, Split

TOY_LABELS = ("1000", "0100", "0010", "0001")
TOY_BEST_LOG_PX = math.log(1 / 4)  # -1.386: the data distribution itself
TOY_COLLAPSE_LOG_PX = math.log(1 / 4) + 3 * math.log(3 / 4)  # -2.249: independent pixels, z ignored
TOY_LANDMARKS = {"best possible −1.386": TOY_BEST_LOG_PX, "posterior collapse −2.249": TOY_COLLAPSE_LOG_PX}
TOY_EVAL_REPEATS = 256  # validation and test sets hold each toy point this often, for low-noise scores


def toy_points() -> torch.Tensor:
    """The four points as float 0/1 (4, 4): their mean log p(x) is the model's exact score."""
    return torch.eye(4)


def toy_splits() -> DataSplits:
    """Training set: the four points once each (batches draw with replacement); validation and test repeat them."""
    points = Split((toy_points() * 255).to(torch.uint8), torch.arange(4))
    repeated = Split(points.images.repeat(TOY_EVAL_REPEATS, 1), points.labels.repeat(TOY_EVAL_REPEATS))
    return DataSplits("toy", points, repeated, repeated, TOY_LABELS)
