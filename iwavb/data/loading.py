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
    return _splits(name, _arrays(name, data_root, cache_dir, allow_download)).to(device)


def _arrays(
    name: str, data_root: str | Path | None, cache_dir: str | Path | None, allow_download: bool | None
) -> dict[str, np.ndarray]:
    root = Path(data_root).expanduser() if data_root is not None else settings.data_root()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else settings.cache_dir()
    download = not settings.offline() if allow_download is None else allow_download
    return _cached_arrays(name, root, cache, download)


def _splits(name: str, arrays: dict[str, np.ndarray]) -> DataSplits:
    if name == "omniglot":
        label_names = tuple(str(n) for n in arrays["label_names"])
    else:
        label_names = MNIST_LABELS if name == "mnist" else FASHION_LABELS
    return paper_splits(name, arrays, label_names)


def data_file_name(name: str) -> str:
    """The file of a data set's arrays, in the cache and wherever it is carried: mnist-v1.npz."""
    return f"{name}-v{CACHE_VERSION}.npz"


def export_dataset(name: str, folder: str | Path, data_root: str | Path | None = None) -> Path:
    """Write an image data set's arrays as one compact file (uint8 images, compressed: 11 MB for MNIST) into
    `folder`, to carry to a machine without the data sets (`load_dataset_file` reads it there)."""
    if name not in DATASETS or name == "toy":
        raise DataError(f"only an image data set can be exported ({', '.join(d for d in DATASETS if d != 'toy')})")
    path = Path(folder) / data_file_name(name)
    try:
        atomic_write_npz(path, _arrays(name, data_root, None, None))
    except WriteError as err:
        raise DataError(str(err)) from err
    return path


def load_dataset_file(path: str | Path, device: torch.device | str = "cpu") -> DataSplits:
    """The data set in a file written by `export_dataset` (or the cache), with the paper's splits; its name
    is the file's (mnist-v1.npz: mnist)."""
    path = Path(path)
    name = path.name.split("-")[0]
    if name not in DATASETS or name == "toy":
        raise DataError(f"{path}: not a data set file (expected a name like {data_file_name('mnist')})")
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{path}: could not read the data set file: {err}") from err
    try:
        return _splits(name, arrays).to(device)
    except KeyError as err:
        raise DataError(f"{path}: the file lacks the array {err} of {name}") from err


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
