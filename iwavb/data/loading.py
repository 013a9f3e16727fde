"""Loading a data set by name: the raw files in torchvision's layout, a compressed array cache, the splits.

Where the files live (iwavb.settings):
- the data root (`IWAVB_DATA_ROOT`, or `data_root=`): torchvision's layout (`MNIST/raw`,
  `FashionMNIST/raw`, `omniglot-py/images_*`);
- the array cache (`IWAVB_CACHE_DIR`), never inside the data root, which may be read-only: every load
  after the first takes well under a second.
Downloads go through torchvision unless `IWAVB_OFFLINE=1` (or `allow_download=False`).

Nothing broken is used or kept: the raw files are read by this module and checked (an idx file's header
against its size and contents, every Omniglot image opened), a problem is a DataError that names the file,
and arrays are checked before they are cached and again when a cache is read, so a truncated or foreign
cache file is rebuilt. A cache file is named by a key of the raw files it came from (their folder, names,
sizes and times), so pointing the data root elsewhere never serves another folder's arrays. A cache folder
that cannot be written (read-only, full, or a file) only costs speed.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from .. import settings
from ..errors import IWAVBError
from ..files import WriteError, atomic_write_npz, remove_stale_temporaries
from .names import DATASETS, FASHION_LABELS, MNIST_LABELS
from .splits import OMNIGLOT_TEST_SIZE, VALID_SIZE, DataSplits, paper_splits
from .toy import toy_splits

CACHE_VERSION = 2  # 2: named by the raw files' key, checked when read
SIDE = 28
IDX_UBYTE = 0x08  # the idx type code of unsigned bytes
MNIST_FILES = {  # array -> raw file, torchvision's names (a .gz beside it is read too)
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion": "FashionMNIST"}  # torchvision's class and folder names
MNIST_SIZES = {"train": 60_000, "test": 10_000}  # the same for Fashion-MNIST
OMNIGLOT_PARTS = ("images_background", "images_evaluation")


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
    """The file of a data set's arrays wherever it is carried: mnist-v2.npz (the cache adds the raw files' key)."""
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
    is the file's (mnist-v2.npz: mnist)."""
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


# -- the cache ---------------------------------------------------------------------------------------
def _cached_arrays(name: str, root: Path, cache: Path, download: bool) -> dict[str, np.ndarray]:
    raw = _omniglot_folders(root, download) if name == "omniglot" else _mnist_files(name, root, download)
    path = cache / f"{data_file_name(name).removesuffix('.npz')}-{_key(root, raw)}.npz"
    arrays = _read_cache(name, path)
    if arrays is not None:
        return arrays
    arrays = _read_omniglot(root, raw) if name == "omniglot" else _read_mnist(name, raw)
    _check_arrays(name, arrays, f"the files under {root}")  # never cache what is broken
    _write_cache(path, arrays)
    return arrays


def _key(root: Path, files: Iterable[Path]) -> str:
    """Which raw files the arrays come from: the data root, and each file's (or folder's) name, size and time."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    for path in files:
        try:
            info = path.stat()
        except OSError as err:
            raise DataError(f"{path} could not be read: {err.strerror}") from err
        digest.update(f"\0{path.relative_to(root)}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _read_cache(name: str, path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, checked; None (and the file removed where possible) when absent or unusable."""
    try:
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        _check_arrays(name, arrays, str(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, DataError):
        with contextlib.suppress(OSError):  # a cache is disposable: it is rebuilt from the raw files
            path.unlink()
        return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Cache the arrays if the folder can be written (read-only, full, or a file: it only costs speed)."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.parent.is_dir() and os.access(path.parent, os.W_OK)):
        return  # not even worth compressing them
    remove_stale_temporaries(path.parent)
    with contextlib.suppress(WriteError):
        atomic_write_npz(path, arrays)


def _check_arrays(name: str, arrays: dict[str, np.ndarray], source: str) -> None:
    """Shapes, types and values that the splits rely on; a DataError naming `source` otherwise."""

    def need(condition: bool, problem: str) -> None:
        if not condition:
            raise DataError(f"{name} from {source} is corrupt: {problem}")

    if name == "omniglot":
        need({"images", "labels", "label_names"} <= set(arrays), "arrays are missing")
        images, labels, names = arrays["images"], arrays["labels"], arrays["label_names"]
        need(images.dtype == np.uint8 and images.ndim == 3 and images.shape[1:] == (SIDE, SIDE), "images not 28x28")
        need(len(images) > OMNIGLOT_TEST_SIZE + VALID_SIZE, f"only {len(images)} images")
        need(names.ndim == 1 and names.dtype.kind == "U" and len(names) > 0, "no alphabet names")
        need(labels.shape == (len(images),) and labels.dtype.kind == "i", "labels do not match the images")
        need(int(labels.min()) >= 0 and int(labels.max()) < len(names), "labels outside the alphabets")
    else:
        need(set(MNIST_FILES) <= set(arrays), "arrays are missing")
        for split, count in MNIST_SIZES.items():
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            need(images.dtype == np.uint8 and images.shape == (count, SIDE, SIDE), f"{split} images not {count}x28x28")
            need(labels.shape == (count,) and labels.dtype.kind in "iu", f"{split} labels not {count} numbers")
            need(int(labels.min()) >= 0 and int(labels.max()) <= 9, f"{split} labels outside 0..9")
            need(int(images.max()) > 0, f"every {split} image is blank")


# -- MNIST and Fashion-MNIST: idx files -----------------------------------------------------------------
def _missing_message(what: str, where: Path, download: bool) -> str:
    hint = "Set IWAVB_DATA_ROOT (or --data-root) to the folder that holds it" + (
        "" if download else ", or unset IWAVB_OFFLINE to let torchvision download it"
    )
    return f"{what} not found under {where}. {hint}."


def _mnist_files(name: str, root: Path, download: bool) -> list[Path]:
    """The four raw files (each as it is, or gzipped), downloaded by torchvision first if missing and allowed."""
    title = TORCHVISION_FOLDERS[name]
    folder = root / title / "raw"

    def find() -> list[Path | None]:
        return [next((p for p in (folder / f, folder / f"{f}.gz") if p.is_file()), None) for f in MNIST_FILES.values()]

    found = find()
    if None in found and download:
        from torchvision import datasets  # imported only to download: it takes seconds to import

        try:
            getattr(datasets, title)(str(root), train=True, download=True)
        except (RuntimeError, OSError) as err:  # no network, or a read-only root that a download would write to
            raise DataError(f"{title} could not be downloaded into {root}: {err}") from err
        found = find()
    if None in found:
        absent = ", ".join(f for f, p in zip(MNIST_FILES.values(), found) if p is None)
        raise DataError(_missing_message(f"{title} ({name}: {absent})", folder, download))
    return [p for p in found if p is not None]


def read_idx(path: Path) -> np.ndarray:
    """An idx file of unsigned bytes (MNIST's format), plain or gzipped, checked against its own header."""
    try:
        blob = path.read_bytes()
        if path.suffix == ".gz":
            blob = gzip.decompress(blob)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path} could not be read: {err}") from err
    magic = blob[:4]
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] != IDX_UBYTE or not 1 <= magic[3] <= 3:
        raise DataError(
            f"{path} is corrupt: not an idx file of bytes (it starts {magic.hex(' ') or 'empty'}); "
            "delete it and fetch it again"
        )
    header = 4 + 4 * magic[3]
    if len(blob) < header:
        raise DataError(f"{path} is corrupt: truncated inside its header; delete it and fetch it again")
    dims = struct.unpack(f">{magic[3]}I", blob[4:header])
    expected = header + int(np.prod(dims))
    if len(blob) != expected:
        raise DataError(
            f"{path} is corrupt: its header promises {expected:,} bytes, it has {len(blob):,} "
            f"({'truncated' if len(blob) < expected else 'too long'}); delete it and fetch it again"
        )
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)


def _read_mnist(name: str, files: list[Path]) -> dict[str, np.ndarray]:
    arrays = {}
    for (array, _), path in zip(MNIST_FILES.items(), files):
        values = read_idx(path)
        arrays[array] = values.astype(np.int16) if array.endswith("labels") else values
    return arrays


# -- Omniglot: folders of PNG files -----------------------------------------------------------------------
def _omniglot_folders(root: Path, download: bool) -> list[Path]:
    """The alphabet and character folders of both parts, sorted (downloaded by torchvision first if missing and
    allowed). They key the cache: a folder's time changes when a file in it is added, removed or renamed."""
    base = root / "omniglot-py"
    parts = [base / p for p in OMNIGLOT_PARTS]
    if not all(p.is_dir() for p in parts) and download:
        from torchvision import datasets

        try:
            for background in (True, False):
                datasets.Omniglot(str(root), background=background, download=True)
        except (RuntimeError, OSError) as err:
            raise DataError(f"Omniglot could not be downloaded into {root}: {err}") from err
    if not all(p.is_dir() for p in parts):
        raise DataError(_missing_message("Omniglot (images_background and images_evaluation)", base, download))
    alphabets = [a for part in parts for a in sorted(part.iterdir()) if a.is_dir()]
    return alphabets + [c for a in alphabets for c in sorted(a.iterdir()) if c.is_dir()]


def _read_omniglot(root: Path, folders: list[Path]) -> dict[str, np.ndarray]:
    """Omniglot's 105x105 images -> 28x28 (torchvision's class wants the zips, so the folders are read here)."""
    from PIL import Image, UnidentifiedImageError

    files = []
    for alphabet in (f for f in folders if f.parent.name in OMNIGLOT_PARTS):
        pngs = sorted(alphabet.glob("*/*.png"))
        if not pngs:
            raise DataError(f"{alphabet}: an alphabet folder with no images; is the Omniglot folder complete?")
        files += pngs
    alphabets = sorted({png.parent.parent.name for png in files})
    images, labels = [], []
    for png in files:
        try:
            with Image.open(png) as im:
                # Strokes are black on white: invert so that ink is 1, then average 105 -> 28 (BOX).
                small = im.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX)
        except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as err:
            raise DataError(f"{png} is not a readable image ({err}); remove it or fetch Omniglot again") from err
        images.append(255 - np.asarray(small, dtype=np.uint8))
        labels.append(alphabets.index(png.parent.parent.name))
    if not images:
        raise DataError(f"no PNG files found under {root / 'omniglot-py'}; is the Omniglot folder complete?")
    return {
        "images": np.stack(images),
        "labels": np.asarray(labels, dtype=np.int16),
        "label_names": np.asarray([a.replace("_", " ") for a in alphabets]),
    }
