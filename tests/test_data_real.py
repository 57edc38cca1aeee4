"""The IDX DataModules on the real MNIST and Fashion-MNIST files (read-only shared copy)."""

import os
from pathlib import Path

import pytest

from lightning_cv.data import channel_stats
from lightning_cv.data.mnist import FashionMNISTDataModule, MNISTDataModule

from .conftest import SHARED_DATASETS

# (module, training-image mean, std) as published with each data set
REAL = [(MNISTDataModule, 0.1307, 0.3081), (FashionMNISTDataModule, 0.2860, 0.3530)]


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of the entries these modules could touch, by path.

    That is every entry directly in ``folder`` and everything under its MNIST folders (the
    60,000 CIFAR-10 JPEG files are left out to keep this fast).
    """
    paths = list(folder.iterdir())
    for module, _, _ in REAL:
        paths += (folder / module.folder).rglob("*")
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in paths}


@pytest.fixture(scope="module")
def decoded() -> dict:
    """Both data sets decoded once, with a listing of the shared folder before and after."""
    missing = [
        module.folder for module, _, _ in REAL if not (SHARED_DATASETS / module.folder).is_dir()
    ]
    if missing:
        message = f"the real data sets {missing} are missing from {str(SHARED_DATASETS)!r}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must provide them")
        pytest.skip(message)
    before = listing(SHARED_DATASETS)
    splits = {}
    for module, _, _ in REAL:
        data = module()  # the default root: conftest points LIGHTNING_CV_DATA at the folder
        splits[module] = {split: data.load_split(split) for split in ("train", "test")}
    return {"splits": splits, "before": before, "after": listing(SHARED_DATASETS)}


@pytest.mark.parametrize(("module", "mean", "std"), REAL, ids=["MNIST", "FashionMNIST"])
def test_official_splits_and_pixel_statistics(decoded, module, mean, std):
    train_images, train_labels = decoded["splits"][module]["train"]
    test_images, test_labels = decoded["splits"][module]["test"]
    assert train_images.shape == (60_000, 28, 28, 1) and test_images.shape == (10_000, 28, 28, 1)
    assert set(train_labels.tolist()) == set(test_labels.tolist()) == set(range(10))
    assert len(module.class_names) == module.num_classes == 10
    (measured_mean,), (measured_std,) = channel_stats(train_images)
    assert abs(measured_mean - mean) < 1e-3 and abs(measured_std - std) < 1e-3
    assert (module.mean, module.std) == ((mean,), (std,))


def test_the_shared_folder_is_left_untouched(decoded):
    assert decoded["after"] == decoded["before"]
