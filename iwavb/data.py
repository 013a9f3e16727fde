"""Data sets of the paper (section 5) and AVB's toy problem, held in memory as uint8 tensors.

Images are kept as (N, 784) uint8 grey levels on the training device and binarised dynamically,
one Bernoulli draw per pixel and per batch (`binarize`). A compressed cache of the 28x28 arrays makes
every load after the first take well under a second.

Where the files live:
- the data root (`IWAVB_DATA_ROOT`, or `data_root=`): torchvision's layout (`MNIST/raw`,
  `FashionMNIST/raw`, `omniglot-py/images_*`); default `~/.cache/iwavb/datasets`;
- the array cache (`IWAVB_CACHE_DIR`): default `~/.cache/iwavb/arrays`, never inside the data root,
  which may be read-only.
Downloads go through torchvision unless `IWAVB_OFFLINE=1` (or `allow_download=False`).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, atomic_write_bytes
from .config import DATASETS

# The paper's splits: 55k/5k/10k for MNIST and Fashion, 5k validation and 5k test for Omniglot.
VALID_SIZE = 5_000
OMNIGLOT_TEST_SIZE = 5_000
SPLIT_SEED = 0  # fixes which images are validation (and Omniglot's test set) for every run
CACHE_VERSION = 1

MNIST_LABELS = tuple(str(d) for d in range(10))
FASHION_LABELS = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")
TOY_LABELS = ("1000", "0100", "0010", "0001")


class DataError(RuntimeError):
    """A data set could not be loaded; the message says what to do."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, D) uint8 grey levels, 0..255
    labels: torch.Tensor  # (N,) int64 class (digit, garment, alphabet or toy point)

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class DataSplits:
    name: str
    train: Split
    valid: Split
    test: Split
    label_names: tuple[str, ...]
    previews_only: bool = False  # the shipped preview images stand in for every split (iwavb.shared_data)

    @property
    def data_dim(self) -> int:
        return self.train.images.shape[1]

    def to(self, device: torch.device | str) -> "DataSplits":
        move = lambda s: Split(s.images.to(device), s.labels.to(device))  # noqa: E731
        return replace(self, train=move(self.train), valid=move(self.valid), test=move(self.test))


def default_data_root() -> Path:
    return Path(os.environ.get("IWAVB_DATA_ROOT", Path.home() / ".cache" / "iwavb" / "datasets")).expanduser()


def default_cache_dir() -> Path:
    return Path(os.environ.get("IWAVB_CACHE_DIR", Path.home() / ".cache" / "iwavb" / "arrays")).expanduser()


def downloads_allowed() -> bool:
    return os.environ.get("IWAVB_OFFLINE", "0").lower() in ("0", "", "false", "no")


def binarize(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarisation: pixel ~ Bernoulli(grey level / 255), as float 0/1."""
    return torch.bernoulli(images.float().div_(255.0), generator=generator)


TOY_EVAL_REPEATS = 256  # validation and test sets hold each toy point this often, for low-noise scores


def toy_splits() -> DataSplits:
    """AVB's toy problem: the four one-hot vectors of length 4, drawn uniformly (REFERENCE.md)."""
    points = Split((torch.eye(4) * 255).to(torch.uint8), torch.arange(4))
    repeated = Split(points.images.repeat(TOY_EVAL_REPEATS, 1), points.labels.repeat(TOY_EVAL_REPEATS))
    return DataSplits("toy", points, repeated, repeated, TOY_LABELS)


def load_dataset(
    name: str,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    allow_download: bool | None = None,
    device: torch.device | str = "cpu",
) -> DataSplits:
    """Load a data set by name ("toy", "mnist", "fashion", "omniglot") with the paper's splits."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "toy":
        return toy_splits().to(device)
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    download = downloads_allowed() if allow_download is None else allow_download
    arrays = _cached_arrays(name, root, cache, download)
    return _split(name, arrays).to(device)


def _split(name: str, arrays: dict[str, np.ndarray]) -> DataSplits:
    rng = np.random.default_rng(SPLIT_SEED)
    flat = lambda a: torch.from_numpy(a.reshape(a.shape[0], -1).copy())  # noqa: E731

    def take(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> Split:
        return Split(flat(images[idx]), torch.from_numpy(labels[idx].astype(np.int64)))

    if name == "omniglot":
        images, labels = arrays["images"], arrays["labels"]
        order = rng.permutation(len(images))
        test_idx, valid_idx = order[:OMNIGLOT_TEST_SIZE], order[OMNIGLOT_TEST_SIZE : OMNIGLOT_TEST_SIZE + VALID_SIZE]
        train_idx = np.sort(order[OMNIGLOT_TEST_SIZE + VALID_SIZE :])
        names = tuple(str(n) for n in arrays["label_names"])
        return DataSplits(name, take(images, labels, train_idx), take(images, labels, np.sort(valid_idx)),
                          take(images, labels, np.sort(test_idx)), names)
    order = rng.permutation(len(arrays["train_images"]))
    train_idx, valid_idx = np.sort(order[VALID_SIZE:]), np.sort(order[:VALID_SIZE])
    tr_x, tr_y = arrays["train_images"], arrays["train_labels"]
    test = take(arrays["test_images"], arrays["test_labels"], np.arange(len(arrays["test_images"])))
    names = MNIST_LABELS if name == "mnist" else FASHION_LABELS
    return DataSplits(name, take(tr_x, tr_y, train_idx), take(tr_x, tr_y, valid_idx), test, names)


def _cached_arrays(name: str, root: Path, cache: Path, download: bool) -> dict[str, np.ndarray]:
    path = cache / f"{name}-v{CACHE_VERSION}.npz"
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError):
            path.unlink(missing_ok=True)  # a cache is disposable: rebuild it from the raw files
    arrays = _read_omniglot(root, download) if name == "omniglot" else _read_torchvision(name, root, download)
    _write_cache(path, arrays)
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except CheckpointError:
        pass  # a cache that cannot be written (read-only home, full disk) only costs speed next time


def _missing_message(what: str, where: Path, download: bool) -> str:
    hint = (
        "Set IWAVB_DATA_ROOT (or --data-root) to the folder that holds it"
        + ("" if download else ", or unset IWAVB_OFFLINE to let torchvision download it")
    )
    return f"{what} not found under {where}. {hint}."


def _read_torchvision(name: str, root: Path, download: bool) -> dict[str, np.ndarray]:
    from torchvision import datasets  # imported here: torchvision is slow to import

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    folder = root / cls.__name__ / "raw"
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except RuntimeError as err:  # torchvision: "Dataset not found. You can use download=True ..."
        raise DataError(_missing_message(f"{cls.__name__} ({name})", folder, download)) from err
    except OSError as err:  # no network, or a read-only root that a download would write to
        raise DataError(f"{cls.__name__} could not be read or downloaded into {root}: {err}") from err
    return {
        "train_images": train.data.numpy().astype(np.uint8),
        "train_labels": train.targets.numpy().astype(np.int16),
        "test_images": test.data.numpy().astype(np.uint8),
        "test_labels": test.targets.numpy().astype(np.int16),
    }


def _read_omniglot(root: Path, download: bool) -> dict[str, np.ndarray]:
    """Read Omniglot's 105x105 PNGs folder by folder (torchvision's class wants the zips) -> 28x28."""
    from PIL import Image

    base = root / "omniglot-py"
    parts = [base / "images_background", base / "images_evaluation"]
    if not all(p.is_dir() for p in parts) and download:
        from torchvision import datasets

        for background in (True, False):
            datasets.Omniglot(str(root), background=background, download=True)
    if not all(p.is_dir() for p in parts):
        raise DataError(_missing_message("Omniglot (images_background and images_evaluation)", base, download))
    alphabets = sorted({a.name for p in parts for a in p.iterdir() if a.is_dir()})
    images, labels = [], []
    for part in parts:
        for png in sorted(part.glob("*/*/*.png")):
            with Image.open(png) as im:
                # Strokes are black on white: invert so that ink is 1, then average 105 -> 28 (BOX).
                small = im.convert("L").resize((28, 28), Image.Resampling.BOX)
            images.append(255 - np.asarray(small, dtype=np.uint8))
            labels.append(alphabets.index(png.parent.parent.name))
    if not images:
        raise DataError(f"no PNG files found under {base}; is the Omniglot folder complete?")
    return {
        "images": np.stack(images),
        "labels": np.asarray(labels, dtype=np.int16),
        "label_names": np.asarray([a.replace("_", " ") for a in alphabets]),
    }


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
