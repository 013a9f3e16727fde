"""The paper's splits on synthetic arrays (never skipped): disjoint, complete, in file order, and the same
whatever seed a run uses. Each synthetic image carries its own row number in its pixels and its label, so
every image of every split can be traced back to its row of the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iwavb.data.splits import OMNIGLOT_TEST_SIZE, VALID_SIZE, BatchSampler, DataSplits, Split, paper_splits

EXTRA = 300  # training images beyond the validation set (a real file has 55,000)


def numbered_images(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images of 2x2 pixels whose first two pixels spell their number (offset + row) in base 256, and that
    number as the label."""
    number = np.arange(offset, offset + n)
    images = np.zeros((n, 2, 2), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1], images[:, 1, 0] = number // 256, number % 256, 255
    return images, number


def numbers(split: Split) -> list[int]:
    """The row numbers of a split's images, read from their pixels; they must agree with the labels."""
    pixels = split.images.to(torch.int64)
    read = (pixels[:, 0] * 256 + pixels[:, 1]).tolist()
    assert read == split.labels.tolist(), "an image was separated from its label"
    assert split.images.shape[1] == 4 and split.images.dtype == torch.uint8  # flattened, grey levels kept
    assert split.labels.dtype == torch.int64
    return read


def image_file_splits() -> DataSplits:
    """MNIST's and Fashion-MNIST's layout: a training file (validation is drawn from it) and a test file."""
    train_images, train_labels = numbered_images(VALID_SIZE + EXTRA)
    test_images, test_labels = numbered_images(700, offset=50_000)
    arrays = {
        "train_images": train_images,
        "train_labels": train_labels,
        "test_images": test_images,
        "test_labels": test_labels,
    }
    return paper_splits("mnist", arrays, ("0",))


def omniglot_splits() -> DataSplits:
    """Omniglot's layout: one pool, split into test, validation and training."""
    images, labels = numbered_images(OMNIGLOT_TEST_SIZE + VALID_SIZE + EXTRA)
    return paper_splits("omniglot", {"images": images, "labels": labels}, ("a",))


def test_validation_is_drawn_from_the_training_file_and_the_test_file_is_kept_whole():
    data = image_file_splits()
    train, valid, test = numbers(data.train), numbers(data.valid), numbers(data.test)
    assert (len(train), len(valid)) == (EXTRA, VALID_SIZE)
    assert not set(train) & set(valid)  # disjoint
    assert sorted(train + valid) == list(range(VALID_SIZE + EXTRA))  # complete: every training image once
    assert test == list(range(50_000, 50_700))  # the test file, whole and in its order
    assert train == sorted(train) and valid == sorted(valid)  # in file order: the first 1,000 valid are fixed
    assert (data.name, data.label_names, data.data_dim) == ("mnist", ("0",), 4)


def test_omniglot_pool_is_split_into_disjoint_test_validation_and_training():
    data = omniglot_splits()
    train, valid, test = numbers(data.train), numbers(data.valid), numbers(data.test)
    assert (len(train), len(valid), len(test)) == (EXTRA, VALID_SIZE, OMNIGLOT_TEST_SIZE)
    assert not (set(train) & set(valid) or set(train) & set(test) or set(valid) & set(test))
    assert sorted(train + valid + test) == list(range(OMNIGLOT_TEST_SIZE + VALID_SIZE + EXTRA))
    assert all(part == sorted(part) for part in (train, valid, test))
    assert (data.name, data.label_names) == ("omniglot", ("a",))


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_the_splits_are_the_same_whatever_seed_a_run_uses(seed):
    """The split is fixed by the protocol (SPLIT_SEED), not by the run: a run's seed, which seeds torch and
    may seed numpy's global generator, does not move an image between training, validation and test."""
    reference = [numbers(s) for d in (image_file_splits(), omniglot_splits()) for s in (d.train, d.valid, d.test)]
    torch.manual_seed(seed)
    np.random.seed(seed)
    again = [numbers(s) for d in (image_file_splits(), omniglot_splits()) for s in (d.train, d.valid, d.test)]
    assert again == reference


def test_the_split_rule_is_pinned():
    """Which images are validation (and Omniglot's test images) is part of every score ever reported: a change
    of SPLIT_SEED or of the rule would silently score new runs on other images. These are its first picks
    (here the training images are the few rows left after validation)."""
    assert numbers(image_file_splits().train)[:5] == [3, 6, 9, 51, 57]
    assert numbers(omniglot_splits().test)[:5] == [1, 4, 7, 11, 12]


@pytest.mark.parametrize(("n", "batch"), [(10, 3), (6, 6)])
def test_the_batch_sampler_draws_each_image_once_per_epoch(n, batch):
    """Epochs of floor(n / batch) batches without repeats (the rest of a shuffle is dropped), each epoch a
    new shuffle; a data set as large as a batch is still shuffled, not drawn with replacement."""
    sampler = BatchSampler(n, batch, torch.Generator().manual_seed(0))
    per_epoch = n // batch
    epochs = [torch.cat([sampler.next_indices() for _ in range(per_epoch)]).tolist() for _ in range(3)]
    assert all(len(set(epoch)) == per_epoch * batch for epoch in epochs)
    assert all(0 <= i < n for epoch in epochs for i in epoch)
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # shuffled anew


def test_the_batch_sampler_draws_with_replacement_from_fewer_images_than_a_batch():
    sampler = BatchSampler(4, 64, torch.Generator().manual_seed(0))  # the toy data: 4 points, batches of 64
    indices = sampler.next_indices()
    assert indices.shape == (64,) and set(indices.tolist()) == {0, 1, 2, 3}


def test_the_sampler_continues_from_a_saved_state_and_refuses_one_that_is_not_its_own():
    """load_state_dict takes back what state_dict gave (the next batches are the same), and refuses, with
    words naming the sampler, every state that cannot be an epoch's order of its n images and a place in it."""
    sampler = BatchSampler(5, 2, torch.Generator().manual_seed(3))
    sampler.next_indices()
    saved, stream = {k: v.clone() for k, v in sampler.state_dict().items()}, sampler.generator.get_state()
    expected = [sampler.next_indices() for _ in range(4)]  # the rest of this epoch, then new ones
    again = BatchSampler(5, 2, torch.Generator())
    again.generator.set_state(stream)
    again.load_state_dict(saved)
    assert all(torch.equal(again.next_indices(), batch) for batch in expected)
    fresh = BatchSampler(5, 2, torch.Generator())
    fresh.load_state_dict({"order": torch.empty(0, dtype=torch.long), "position": torch.tensor(0)})  # not started
    bad_states = [
        (torch.tensor([0, 0, 1, 2, 3]), 0),  # not an order of the 5 images: one twice
        (torch.tensor([3]), 0),  # an order of one image of five
        (torch.arange(5.0), 0),  # not whole numbers
        (torch.arange(5).view(1, 5), 0),  # not one order
        (torch.empty(0, dtype=torch.long), torch.tensor([0, 0])),  # not one place
        (torch.arange(5), 6),  # a place past the end
        (torch.arange(5), -1),
    ]
    for order, position in bad_states:
        with pytest.raises(ValueError, match=r"^the sampler's state is not an order of 5 training images and a pl"):
            fresh.load_state_dict({"order": order, "position": torch.as_tensor(position)})
