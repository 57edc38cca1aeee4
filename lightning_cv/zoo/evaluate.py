"""Measure a classifier on the official test split of its entry's data set."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import lightning.pytorch as L

from lightning_cv._checkpoint import is_own_class
from lightning_cv.data import ImageDataModule
from lightning_cv.data.transforms import transform_from_dict
from lightning_cv.errors import DataFileError
from lightning_cv.task import ImageClassifier
from lightning_cv.zoo.manifest import Metrics, ZooEntry

__all__ = ["TOLERANCE", "build_datamodule", "compare", "measure"]

TOLERANCE = 0.1  # percentage points of top-1 a re-measurement may differ by


def build_datamodule(
    entry: ZooEntry, root: str | Path, *, download: bool = False, num_workers: int | None = None
) -> ImageDataModule:
    """The entry's data module over ``root``, evaluating with the entry's own eval transform.

    Args:
        entry: the zoo entry.
        root: the data folder.
        download: fetch missing files.
        num_workers: loader workers (default: the entry's).

    Raises:
        DataFileError: a data module class path that does not import or is not an
            :class:`~lightning_cv.data.ImageDataModule`.

    Example:
        >>> data = build_datamodule(get_entry("lenet5.mnist"), "data")  # doctest: +SKIP
    """
    if not is_own_class(entry.datamodule):  # refused before its module is imported
        raise DataFileError(
            f"zoo entry {entry.name!r}: datamodule {entry.datamodule!r} is not one of "
            "lightning_cv's data modules; a manifest may name lightning_cv classes only"
        )
    module, _, name = entry.datamodule.rpartition(".")
    try:
        datamodule_class = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        datamodule_class = None
    if not (isinstance(datamodule_class, type) and issubclass(datamodule_class, ImageDataModule)):
        raise DataFileError(
            f"zoo entry {entry.name!r}: datamodule {entry.datamodule!r} is not an importable "
            "ImageDataModule class"
        )
    options = {
        **entry.datamodule_kwargs,
        "root": root,
        "eval_transform": transform_from_dict(
            entry.transform, source=f"zoo entry {entry.name!r}'s transform"
        ),
    }
    if download:
        options["download"] = True
    if num_workers is not None:
        options["num_workers"] = num_workers
    return datamodule_class(**options)


def measure(model: ImageClassifier, data: ImageDataModule, *, accelerator: str = "auto") -> Metrics:
    """Top-1, top-5 (more than five classes) and macro F1 on ``data``'s test split, in percent.

    Runs ``lightning.pytorch.Trainer.test`` on one device; values are rounded to 0.01.

    Example:
        >>> measure(pretrained.model, build_datamodule(entry, "data"))  # doctest: +SKIP
        Metrics(top1=99.12, f1=99.11, top5=99.99)
    """
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    scores = trainer.test(model, datamodule=data, verbose=False)[0]
    top5 = scores.get("test/acc_top5")
    return Metrics(
        top1=_percent(scores["test/acc"]),
        f1=_percent(scores["test/f1"]),
        top5=None if top5 is None else _percent(top5),
    )


def _percent(fraction: float) -> float:
    return round(100 * float(fraction), 2)


def compare(entry: ZooEntry, measured: Metrics) -> dict[str, Any]:
    """A report of a re-measurement against the manifest; ``ok`` when top-1 is within
    :data:`TOLERANCE` points.

    Example:
        >>> compare(entry, Metrics(top1=99.1, f1=99.0, top5=100.0))["ok"]  # doctest: +SKIP
        True
    """
    difference = round(measured.top1 - entry.metrics.top1, 2)
    return {
        "name": entry.name,
        "measured": measured.to_dict(),
        "manifest": entry.metrics.to_dict(),
        "top1_difference": difference,
        "tolerance": TOLERANCE,
        "ok": abs(difference) <= TOLERANCE,
    }
