"""The zoo's MNIST, Fashion-MNIST and CIFAR-10 entries, re-measured on the real test sets
(with their test-time augmentation too, where they have one), match the manifest."""

import pytest

from lightning_cv.zoo import get_entry, list_entries, load
from lightning_cv.zoo.evaluate import TOLERANCE, build_datamodule, compare, measure, task_of

from .conftest import require_shared_datasets

# where each data set lies under ../shared/datasets
FOLDERS = {"MNIST": ".", "FashionMNIST": ".", "CIFAR10": "CIFAR-10-images"}
REAL = [entry.name for entry in list_entries() if entry.dataset in FOLDERS]


def test_the_zoo_has_mnist_entries():
    assert REAL, "the manifest has no MNIST or Fashion-MNIST entry"


@pytest.mark.parametrize("name", REAL)
def test_entry_reproduces_its_manifest_acc(name):
    entry = get_entry(name)
    root = require_shared_datasets() / FOLDERS[entry.dataset]
    model = task_of(load(name))  # its backbone, in the task that Trainer.test runs
    measured = measure(model, build_datamodule(entry, root), tta=entry.tta)
    report = compare(entry, measured)
    assert (measured.acc_tta is None) == (entry.tta is None)
    assert report["ok"], f"{name}: measured {report} differs by more than {TOLERANCE} points"
