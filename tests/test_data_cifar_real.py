"""CIFAR10DataModule on the real CIFAR-10 image-folder export in shared/datasets (60,000 JPEGs).

Decoding every file takes about 10-20 s on two busy cores; the cache goes to a fresh
LIGHTNING_CV_HOME so the test never depends on an earlier run.
"""

import os

import numpy as np
import pytest

from lightning_cv.data.cifar import CIFAR10_CLASSES, CIFAR10DataModule

from .conftest import SHARED_DATASETS

ROOT = SHARED_DATASETS / "CIFAR-10-images"


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not ROOT.is_dir():
        message = f"the CIFAR-10 image folder {ROOT} is missing"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIGHTNING_CV_HOME", str(tmp_path_factory.mktemp("home")))
        data = CIFAR10DataModule()  # LIGHTNING_CV_DATA (conftest): ROOT is found inside it
        return {split: data.load_split(split) for split in ("train", "test")}


def test_official_split_sizes_and_classes(splits):
    (train, train_labels), (test, test_labels) = splits["train"], splits["test"]
    assert train.shape == (50_000, 32, 32, 3) and train.dtype == np.uint8
    assert test.shape == (10_000, 32, 32, 3) and test.dtype == np.uint8
    assert np.bincount(train_labels).tolist() == [5_000] * 10
    assert np.bincount(test_labels).tolist() == [1_000] * 10
    # the loader checked the folder names against the official ones; labels follow that order
    assert sorted(folder.name for folder in (ROOT / "train").iterdir()) == list(CIFAR10_CLASSES)
    assert train_labels[0] == 0 and train_labels[-1] == 9  # airplane first, truck last


def test_pixels_are_rgb_with_the_published_channel_means(splits):
    train, _ = splits["train"]
    # CIFAR-10's published means (0.4914, 0.4822, 0.4465): blue is lowest, so a BGR mix-up shows
    means = [train[..., channel].mean(dtype=np.float64) / 255 for channel in range(3)]
    np.testing.assert_allclose(means, CIFAR10DataModule.mean, atol=2e-3)
