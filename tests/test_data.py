"""Data sets: shapes, the paper's splits and value ranges; clear errors when files are missing."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, data_root, require_data
from hypothesis import given, settings
from hypothesis import strategies as st

from iwavb.data.loading import MNIST_FILES, DataError, load_dataset, read_idx
from iwavb.data.splits import BatchSampler, Split, binarize

REAL = [
    ("mnist", "MNIST", (55_000, 5_000, 10_000), 10),
    ("fashion", "FashionMNIST", (55_000, 5_000, 10_000), 10),
    ("omniglot", "omniglot-py", (22_460, 5_000, 5_000), 50),
]


@pytest.mark.parametrize("name,folder,sizes,classes", REAL, ids=[r[0] for r in REAL])
def test_real_data_sets_have_the_papers_splits(name, folder, sizes, classes):
    require_data(folder)
    data = load_dataset(name)
    assert (len(data.train), len(data.valid), len(data.test)) == sizes
    for split in (data.train, data.valid, data.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1] == 784
        assert split.labels.shape == (len(split),) and split.labels.dtype == torch.int64
    assert int(data.train.labels.max()) == classes - 1 and len(data.label_names) == classes
    assert int(data.train.images.max()) > 200 and int(data.train.images.min()) == 0
    ink = data.test.images.float().mean() / 255
    assert 0.05 < ink < 0.5  # ink on a dark background (Omniglot's white-on-black is inverted)
    again = load_dataset(name)  # from the cache, the same split
    assert torch.equal(again.valid.images, data.valid.images)


def test_omniglot_splits_are_disjoint():
    require_data("omniglot-py")
    data = load_dataset("omniglot")

    def rows(split: Split) -> set[bytes]:
        return {bytes(r) for r in split.images.numpy()}

    assert not rows(data.test) & rows(data.valid)


def test_toy_data_are_the_four_one_hot_points():
    data = load_dataset("toy")
    assert torch.equal(binarize(data.train.images), torch.eye(4))
    assert len(data.valid) == len(data.test) == 1024
    assert torch.equal(data.valid.labels[:8], torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]))


def test_binarize_is_bernoulli_of_grey_levels():
    images = torch.tensor([[0, 255, 128]], dtype=torch.uint8).repeat(20_000, 1)
    x = binarize(images, torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert x[:, 0].sum() == 0 and x[:, 1].sum() == 20_000
    assert abs(x[:, 2].mean().item() - 128 / 255) < 0.02


def test_missing_data_folder_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match="IWAVB_DATA_ROOT"):
        load_dataset("mnist", data_root=tmp_path, cache_dir=tmp_path / "cache", allow_download=False)
    with pytest.raises(DataError, match="Omniglot"):
        load_dataset("omniglot", data_root=tmp_path, cache_dir=tmp_path / "cache", allow_download=False)


def test_unknown_data_set():
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        load_dataset("cifar")


def mnist_root(folder: Path, replace: dict[str, bytes] | None = None, source: str = "MNIST") -> Path:
    """A data root whose MNIST/raw links to the real files of `source` (MNIST or FashionMNIST), with some
    files replaced by the given bytes."""
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES.values():
        if replace and name in replace:
            (raw / name).write_bytes(replace[name])
        else:
            (raw / name).symlink_to(data_root() / source / "raw" / name)
    return folder


def idx(dims: list[int], payload: bytes) -> bytes:
    return bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


@settings(max_examples=80, deadline=None)
@given(
    dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    cut=st.integers(0, 200),
    flip=st.one_of(st.none(), st.tuples(st.integers(0, 15), st.integers(1, 255))),
    extra=st.binary(max_size=3),
)
def test_an_idx_file_broken_anywhere_says_it_is_corrupt(tmp_path_factory, dims, cut, flip, extra):
    values = bytes(range(int(np.prod(dims))))
    blob = bytearray(idx(dims, values) + extra)
    if flip is not None and flip[0] < len(blob):
        blob[flip[0]] ^= flip[1]
    blob = bytes(blob[: len(blob) - cut % (len(blob) + 1)])
    path = tmp_path_factory.mktemp("idx") / "images-idx3-ubyte"
    path.write_bytes(blob)
    if blob == idx(dims, values):
        assert read_idx(path).tobytes() == values and list(read_idx(path).shape) == dims
    else:
        try:
            array = read_idx(path)  # a flipped size byte can describe another valid file: then it reads as such
        except DataError as err:
            assert path.name in str(err) and "corrupt" in str(err)
        else:
            assert array.size == len(blob) - 4 - 4 * blob[3]


@pytest.mark.parametrize("damage", ["truncated", "zero-filled"])
def test_a_damaged_mnist_file_says_it_is_corrupt_and_nothing_is_cached(tmp_path, damage):
    require_data("MNIST")
    name = MNIST_FILES["train_images"]
    real = (data_root() / "MNIST" / "raw" / name).read_bytes()
    broken = real[: len(real) // 3] if damage == "truncated" else bytes(len(real))
    root = mnist_root(tmp_path / "root", {name: broken})
    with pytest.raises(DataError, match=rf"{name} is corrupt: .*delete it and fetch it again"):
        load_dataset("mnist", data_root=root, cache_dir=tmp_path / "cache", allow_download=False)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_the_cache_belongs_to_the_files_it_came_from(tmp_path):
    """Two data roots, one cache folder: each root gets its own arrays (here MNIST, and Fashion's files in its
    place), never the other's; a broken cache file, or another's arrays under its name, are rebuilt."""
    require_data("MNIST")
    require_data("FashionMNIST")
    cache = tmp_path / "cache"
    digits = load_dataset("mnist", data_root=mnist_root(tmp_path / "a"), cache_dir=cache, allow_download=False)
    clothes = load_dataset(
        "mnist", data_root=mnist_root(tmp_path / "b", source="FashionMNIST"), cache_dir=cache, allow_download=False
    )
    assert not torch.equal(digits.test.images, clothes.test.images) and len(list(cache.iterdir())) == 2
    (cached_a,) = [p for p in cache.iterdir() if load_cached_images(p, digits)]
    for broken in (cached_a.read_bytes()[:1000], b"not a zip file", npz_bytes({"other": np.zeros(3)})):
        cached_a.write_bytes(broken)
        again = load_dataset("mnist", data_root=tmp_path / "a", cache_dir=cache, allow_download=False)
        assert torch.equal(again.test.images, digits.test.images)


def load_cached_images(path: Path, data) -> bool:
    with np.load(path) as f:
        return bool(np.array_equal(f["test_images"].reshape(len(data.test), -1), data.test.images.numpy()))


def npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["a file", "read-only", "full"])
def test_a_cache_folder_that_cannot_be_written_only_costs_speed(tmp_path, kind):
    require_data("MNIST")
    from faults import fill, read_only, tmpfs

    root = mnist_root(tmp_path / "root")
    if kind == "a file":
        (tmp_path / "cache").write_text("a file where the cache folder should be")
        data = load_dataset("mnist", data_root=root, cache_dir=tmp_path / "cache" / "arrays", allow_download=False)
        assert len(data.train) == 55_000
        return
    with tmpfs(tmp_path / "cache", "1m") as cache:
        (read_only if kind == "read-only" else fill)(cache)
        data = load_dataset("mnist", data_root=root, cache_dir=cache, allow_download=False)
        assert len(data.train) == 55_000
        assert not list(cache.glob(".*.tmp"))  # a full disk: the partial file was removed


def omniglot_root(folder: Path, images: dict[str, bytes | None]) -> Path:
    """A small Omniglot tree: {"part/alphabet/character/name.png": contents, or None for an empty folder}."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (105, 105), 255).save(buffer, format="PNG")
    for part in ("images_background", "images_evaluation"):
        (folder / "omniglot-py" / part).mkdir(parents=True, exist_ok=True)
    for where, contents in images.items():
        path = folder / "omniglot-py" / where
        if contents is None:
            path.mkdir(parents=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue() if contents == b"png" else contents)
    return folder


def test_a_non_image_file_in_omniglot_is_named(tmp_path):
    root = omniglot_root(
        tmp_path, {"images_background/Latin/c01/a.png": b"png", "images_evaluation/Greek/c01/notes.png": b"hello"}
    )
    with pytest.raises(DataError, match=r"notes\.png is not a readable image"):
        load_dataset("omniglot", data_root=root, cache_dir=tmp_path / "cache", allow_download=False)


def test_an_empty_alphabet_folder_is_reported(tmp_path):
    root = omniglot_root(tmp_path, {"images_background/Latin/c01/a.png": b"png", "images_evaluation/Greek": None})
    with pytest.raises(DataError, match=r"Greek: an alphabet folder with no images"):
        load_dataset("omniglot", data_root=root, cache_dir=tmp_path / "cache", allow_download=False)
    assert not (tmp_path / "cache").exists()


def test_too_few_omniglot_images_are_never_cached(tmp_path):
    root = omniglot_root(
        tmp_path, {"images_background/Latin/c01/a.png": b"png", "images_evaluation/Greek/c1/b.png": b"png"}
    )
    with pytest.raises(DataError, match=r"omniglot from the files under .* is corrupt: only 2 images"):
        load_dataset("omniglot", data_root=root, cache_dir=tmp_path / "cache", allow_download=False)
    assert not (tmp_path / "cache").exists()


def test_batch_sampler_covers_an_epoch_without_repeats():
    sampler = BatchSampler(10, 5, torch.Generator().manual_seed(0))
    epoch = torch.cat([sampler.next_indices(), sampler.next_indices()])
    assert sorted(epoch.tolist()) == list(range(10))


def test_the_raw_folders_are_torchvisions_and_reading_them_never_imports_it(tmp_path):
    """The folders are named as torchvision's classes (which download into them); loading MNIST from them does
    not import torchvision, whose import costs seconds before a first run in the app."""
    from torchvision import datasets

    from iwavb.data.loading import TORCHVISION_FOLDERS

    assert {"mnist": datasets.MNIST.__name__, "fashion": datasets.FashionMNIST.__name__} == TORCHVISION_FOLDERS
    require_data("MNIST")
    code = (
        "import sys; from iwavb.data.loading import load_dataset; "
        f"load_dataset('mnist', data_root={str(data_root())!r}, cache_dir={str(tmp_path)!r}, allow_download=False); "
        "print('torchvision' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "False"
