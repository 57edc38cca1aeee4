"""The data modules' default root: ``$LIGHTNING_CV_DATA``, else ``data`` in the user cache,
resolved when a data module is built; a folder without the files says which variable to set."""

import re

import pytest

from lightning_cv.data import (
    DATA_ENV,
    CIFAR10DataModule,
    MNISTDataModule,
    SVHNDataModule,
    data_root,
)
from lightning_cv.errors import DataFileError

from .conftest import SHARED_DATASETS
from .fake_folders import write_image_folder

MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
HINT = "pass download=True (or --data.download true) or copy the official files there"
FIX = "the folder that holds the data sets, or pass root (--data.root)"


def test_the_tests_point_the_default_at_the_shared_data_sets():
    assert data_root() == SHARED_DATASETS
    assert MNISTDataModule().root == SHARED_DATASETS


def test_without_the_variable_the_default_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path / "home"))
    assert MNISTDataModule().root == tmp_path / "home" / "data"
    monkeypatch.delenv("LIGHTNING_CV_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SVHNDataModule().root == tmp_path / ".cache" / "lightning_cv" / "data"


def test_the_variable_is_read_at_construction_and_a_given_root_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "first"))
    data = MNISTDataModule()
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "second"))
    assert data.root == tmp_path / "first"  # resolved once, when built
    assert MNISTDataModule().root == tmp_path / "second"
    assert MNISTDataModule(root=tmp_path / "mine").root == tmp_path / "mine"
    assert data.hparams["root"] is None  # a saved config or checkpoint stays portable


def test_a_default_root_without_the_files_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path / "home"))
    root = tmp_path / "home" / "data"
    expected = (
        f"MNIST: missing {MNIST_FILES} in {str(root / 'MNIST' / 'raw')!r}; {HINT}; root is the "
        f"default {str(root)!r} as $LIGHTNING_CV_DATA is not set: set it to {FIX}"
    )
    with pytest.raises(DataFileError, match=re.escape(expected)):
        MNISTDataModule().setup("fit")
    assert not root.exists()  # nothing created: download is off


def test_a_root_from_the_variable_without_the_files_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "empty"))
    expected = (
        f"MNIST: missing {MNIST_FILES} in {str(tmp_path / 'empty' / 'MNIST' / 'raw')!r}; {HINT}; "
        f"root comes from $LIGHTNING_CV_DATA: point it at {FIX}"
    )
    with pytest.raises(DataFileError, match=re.escape(expected)):
        MNISTDataModule().setup("fit")


def test_a_given_root_without_the_files_does_not_mention_the_variable(tmp_path):
    with pytest.raises(DataFileError) as error:
        MNISTDataModule(root=tmp_path).setup("fit")
    assert str(error.value).endswith(HINT)


def test_cifar10_finds_the_jpeg_export_inside_the_data_root(monkeypatch, tmp_path):
    classes = CIFAR10DataModule.class_names
    for split in ("train", "test"):
        write_image_folder(tmp_path / "data" / "CIFAR-10-images" / split, classes, 1, ".png", 32)
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path / "home"))
    images, labels = CIFAR10DataModule().load_split("test")
    assert images.shape == (10, 32, 32, 3) and labels.tolist() == list(range(10))
