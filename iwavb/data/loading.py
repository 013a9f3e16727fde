"""Loading a data set by name: the raw files in torchvision's layout, a compressed array cache, the splits.

Where the files live (iwavb.settings):
- the data root (`IWAVB_DATA_ROOT`, or `data_root=`): torchvision's layout (`MNIST/raw`,
  `FashionMNIST/raw`, `omniglot-py/images_*`);
- the array cache (`IWAVB_CACHE_DIR`), never inside the data root, which may be read-only: every load
  after the first takes well under a second.
Downloads go through torchvision unless `IWAVB_OFFLINE=1` (or `allow_download=False`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from .. import settings
from ..errors import IWAVBError
from ..files import WriteError, atomic_write_npz
from .names import DATASETS, FASHION_LABELS, MNIST_LABELS
from .splits import DataSplits, paper_splits
from .toy import toy_splits

CACHE_VERSION = 1


class DataError(IWAVBError):
    """A data set could not be loaded; the message says what to do."""


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
    root = Path(data_root).expanduser() if data_root is not None else settings.data_root()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else settings.cache_dir()
    download = not settings.offline() if allow_download is None else allow_download
    arrays = _cached_arrays(name, root, cache, download)
    if name == "omniglot":
        label_names = tuple(str(n) for n in arrays["label_names"])
    else:
        label_names = MNIST_LABELS if name == "mnist" else FASHION_LABELS
    return paper_splits(name, arrays, label_names).to(device)


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
    with contextlib.suppress(WriteError):  # a cache that cannot be written (read-only, full) only costs speed
        atomic_write_npz(path, arrays)


def _missing_message(what: str, where: Path, download: bool) -> str:
    hint = "Set IWAVB_DATA_ROOT (or --data-root) to the folder that holds it" + (
        "" if download else ", or unset IWAVB_OFFLINE to let torchvision download it"
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
