"""The zoo's MNIST-family entries, re-measured on the real test sets, match the manifest."""

import pytest

from lightning_cv.zoo import get_entry, list_entries, load
from lightning_cv.zoo.evaluate import TOLERANCE, build_datamodule, compare, measure

from .conftest import require_shared_datasets

REAL = [entry.name for entry in list_entries() if entry.dataset in ("MNIST", "FashionMNIST")]


def test_the_zoo_has_mnist_entries():
    assert REAL, "the manifest has no MNIST or Fashion-MNIST entry"


@pytest.mark.parametrize("name", REAL)
def test_entry_reproduces_its_manifest_top1(name):
    root = require_shared_datasets()
    entry = get_entry(name)
    report = compare(entry, measure(load(name).model, build_datamodule(entry, root)))
    assert report["ok"], f"{name}: measured {report} differs by more than {TOLERANCE} points"
