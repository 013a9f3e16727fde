"""Splits held in memory as uint8 tensors, the paper's split rule, dynamic binarisation and minibatches.

Images are kept as (N, D) uint8 grey levels on the training device and binarised dynamically, one
Bernoulli draw per pixel and per batch (`binarize`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

# The paper's splits (section 5): 55k/5k/10k for MNIST and Fashion, 5k validation and 5k test for Omniglot.
VALID_SIZE = 5_000
OMNIGLOT_TEST_SIZE = 5_000
SPLIT_SEED = 0  # fixes which images are validation (and Omniglot's test set) for every run
FIXED_SEED = 1234  # fixes the binarisation of the images a run is scored on between steps, and q's draws there


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, D) uint8 grey levels, 0..255
    labels: torch.Tensor  # (N,) int64 class (digit, garment, alphabet or toy point)

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class DataSplits:
    name: str
    train: Split
    valid: Split
    test: Split
    label_names: tuple[str, ...]
    previews_only: bool = False  # the shipped preview images stand in for every split (iwavb.app.shared_data)

    @property
    def data_dim(self) -> int:
        return self.train.images.shape[1]

    def to(self, device: torch.device | str) -> DataSplits:
        return replace(self, train=self.train.to(device), valid=self.valid.to(device), test=self.test.to(device))


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarisation: pixel ~ Bernoulli(grey level / 255), as float 0/1."""
    return torch.bernoulli(images.float().div_(255.0), generator=generator)


def _take(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> Split:
    flat = images[idx].reshape(len(idx), -1)
    return Split(torch.from_numpy(np.ascontiguousarray(flat)), torch.from_numpy(labels[idx].astype(np.int64)))


def paper_splits(name: str, arrays: dict[str, np.ndarray], label_names: tuple[str, ...]) -> DataSplits:
    """The paper's splits of a data set's arrays: validation drawn from the training file with SPLIT_SEED
    (MNIST, Fashion); Omniglot's one pool split into test, validation and training the same way."""
    rng = np.random.default_rng(SPLIT_SEED)
    if name == "omniglot":
        images, labels = arrays["images"], arrays["labels"]
        order = rng.permutation(len(images))
        test_idx, valid_idx = order[:OMNIGLOT_TEST_SIZE], order[OMNIGLOT_TEST_SIZE : OMNIGLOT_TEST_SIZE + VALID_SIZE]
        train_idx = order[OMNIGLOT_TEST_SIZE + VALID_SIZE :]
        return DataSplits(
            name,
            _take(images, labels, np.sort(train_idx)),
            _take(images, labels, np.sort(valid_idx)),
            _take(images, labels, np.sort(test_idx)),
            label_names,
        )
    order = rng.permutation(len(arrays["train_images"]))
    train_idx, valid_idx = np.sort(order[VALID_SIZE:]), np.sort(order[:VALID_SIZE])
    tr_x, tr_y = arrays["train_images"], arrays["train_labels"]
    test = _take(arrays["test_images"], arrays["test_labels"], np.arange(len(arrays["test_images"])))
    return DataSplits(name, _take(tr_x, tr_y, train_idx), _take(tr_x, tr_y, valid_idx), test, label_names)


class BatchSampler:
    """Shuffled minibatches of a split's indices, epoch by epoch, drawn on the data's device."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self._order = torch.empty(0, dtype=torch.long, device=generator.device)
        self._pos = 0

    def next_indices(self) -> torch.Tensor:
        if self.n < self.batch_size:  # the toy set: draw with replacement
            return torch.randint(self.n, (self.batch_size,), generator=self.generator, device=self.generator.device)
        if self._pos + self.batch_size > len(self._order):
            self._order = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
            self._pos = 0
        idx = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Where the sampler is in its epoch: the epoch's order and the position in it, as tensors."""
        return {"order": self._order, "position": torch.tensor(self._pos)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue where `state_dict` stood; a ValueError if it cannot be this sampler's (a corrupt file)."""
        order, position = state["order"], state["position"]
        started = order.numel() > 0  # the order stays empty until the first epoch (and for the toy set)
        fits = (
            order.dtype == torch.long
            and order.dim() == 1
            and position.numel() == 1
            and (not started or torch.equal(order.sort().values.cpu(), torch.arange(self.n)))
            and 0 <= int(position) <= order.numel()
        )
        if not fits:
            raise ValueError(f"the sampler's state is not an order of {self.n} training images and a place in it")
        self._order = order.to(self.generator.device)
        self._pos = int(position)
