"""DigitsDataModule: the embedded default data set and the base DataModule mechanics."""

import re

import numpy as np
import pytest
import torch

from lightning_cv import ConfigError, DigitsDataModule
from lightning_cv.data import channel_stats


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    data = DigitsDataModule(image_size=28, batch_size=32)
    data.setup()
    return data


def test_fixed_split_sizes(digits):
    assert (len(digits.train_set), len(digits.val_set), len(digits.test_set)) == (1293, 144, 360)
    assert digits.num_classes == 10 and digits.in_channels == 1
    assert digits.class_names == tuple("0123456789")


def test_train_and_val_never_overlap(digits):
    assert not set(digits.train_set.indices) & set(digits.val_set.indices)
    assert len(digits.train_set.indices) + len(digits.val_set.indices) == 1437


def test_validation_keeps_class_ratios_within_one_sample(digits):
    all_counts = np.bincount(digits.train_set.labels, minlength=10)
    val_counts = np.bincount(digits.val_set.labels[digits.val_set.indices], minlength=10)
    expected = all_counts * len(digits.val_set) / all_counts.sum()
    assert np.all(np.abs(val_counts - expected) <= 1)


def test_same_seed_same_split_and_test_split_never_moves(digits):
    again = DigitsDataModule(split_seed=0)
    again.setup()
    other = DigitsDataModule(split_seed=1)
    other.setup()
    np.testing.assert_array_equal(again.val_set.indices, digits.val_set.indices)
    assert again.hparams["split_fingerprint"] == digits.hparams["split_fingerprint"]
    assert other.hparams["split_fingerprint"] != digits.hparams["split_fingerprint"]
    np.testing.assert_array_equal(other.test_set.labels, digits.test_set.labels)


def test_batches_are_normalized_tensors(digits):
    # the batch path (the default for in-memory data): uint8 batches, normalised after transfer
    uint8, labels = next(iter(digits.val_dataloader()))
    assert uint8.shape == (32, 1, 28, 28) and uint8.dtype == torch.uint8
    images = digits.transform_batch(uint8, train=False)
    assert images.shape == (32, 1, 28, 28) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.max() < 10
    # the sample path gives the same normalised images straight from its loader
    per_sample = DigitsDataModule(image_size=28, batch_size=32, pipeline="sample")
    per_sample.setup("fit")
    sample_images, sample_labels = next(iter(per_sample.val_dataloader()))
    torch.testing.assert_close(sample_images, images, atol=1e-5, rtol=0)
    assert torch.equal(sample_labels, labels)
    # validation samples get the deterministic eval transform
    torch.testing.assert_close(digits.val_set[0][0], digits.val_set[0][0])


def test_statistics_are_those_of_the_training_images(digits):
    train_images = digits.train_set.images
    assert (digits.mean, digits.std) == channel_stats(train_images)
    assert 0.05 < digits.mean[0] < 0.5 and 0.1 < digits.std[0] < 0.5
    loader_images = torch.cat(
        [digits.transform_batch(images, train=False) for images, _ in digits.test_dataloader()]
    )
    assert abs(loader_images.mean().item()) < 0.1 and abs(loader_images.std().item() - 1) < 0.1


def test_image_size_upscales_the_scans():
    data = DigitsDataModule(image_size=32)
    images, labels = data.load_split("test")
    assert images.shape == (360, 32, 32, 1) and images.dtype == np.uint8
    assert images.max() > 200 and labels.shape == (360,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"num_workers": -1}, "num_workers must be >= 0, got -1"),
        ({"val_fraction": 1.5}, "val_fraction must be in [0, 1), got 1.5"),
        ({"image_size": 4}, "image_size must be >= 8 (the scans are 8x8), got 4"),
        ({"train_transform": "sharpen"}, "unknown transform 'sharpen'; expected a preset name"),
    ],
)
def test_bad_values_name_the_value(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        DigitsDataModule(**kwargs).setup("fit")


def test_no_validation_share_trains_on_the_whole_training_split():
    data = DigitsDataModule(val_fraction=0)
    data.setup("fit")
    assert len(data.train_set) == 1437 and data.val_set is None
    assert data.val_dataloader() == []


def test_augmentation_is_reproducible_from_the_seed():
    digits = DigitsDataModule(image_size=28, pipeline="sample")
    digits.setup("fit")

    def samples(seed):
        torch.manual_seed(seed)  # each sample's augmentation seed is drawn from torch
        return torch.stack([digits.train_set[i][0] for i in range(20)])

    torch.testing.assert_close(samples(7), samples(7))
    assert not torch.equal(samples(7), samples(8))
