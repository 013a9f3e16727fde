"""Data sets: shapes, the paper's splits and value ranges; clear errors when files are missing."""

from __future__ import annotations

import pytest
import torch
from conftest import require_data

from iwavb.data.loading import DataError, load_dataset
from iwavb.data.splits import BatchSampler, binarize

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
    rows = lambda s: {bytes(r) for r in s.images.numpy()}  # noqa: E731
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


def test_corrupt_cache_is_rebuilt(tmp_path):
    require_data("MNIST")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "mnist-v1.npz").write_bytes(b"not a zip file")
    data = load_dataset("mnist", cache_dir=cache)
    assert len(data.train) == 55_000


def test_batch_sampler_covers_an_epoch_without_repeats():
    sampler = BatchSampler(10, 5, torch.Generator().manual_seed(0))
    epoch = torch.cat([sampler.next_indices(), sampler.next_indices()])
    assert sorted(epoch.tolist()) == list(range(10))
