"""The data sets by name: the paper's three image sets (section 5) and AVB's toy problem."""

from __future__ import annotations

from typing import Literal, get_args

from ..core.config import IMAGE_DIM

DatasetName = Literal["toy", "mnist", "fashion", "omniglot"]
DATASETS: tuple[DatasetName, ...] = get_args(DatasetName)
IMAGE_DATASETS = ("mnist", "fashion", "omniglot")
TOY_DIM = 4  # the four one-hot vectors of length 4
IMAGES = {"toy": 4, "mnist": 70_000, "fashion": 70_000, "omniglot": 32_460}  # all splits (section 5)

MNIST_LABELS = tuple(str(d) for d in range(10))
FASHION_LABELS = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


def data_dim(name: str) -> int:
    """Pixels (or toy cells) per data point."""
    return TOY_DIM if name == "toy" else IMAGE_DIM
