"""Build a checkpoint's data module and measure a classifier on its official test split."""

from __future__ import annotations

import copy
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import lightning.pytorch as L
from jsonargparse import ArgumentParser

from lightning_cv._checkpoint import is_own_class
from lightning_cv.callbacks.tta import TestTimeAugmentation
from lightning_cv.data import ImageDataModule
from lightning_cv.errors import ConfigError
from lightning_cv.hub.manifest import TTA, Metrics, ZooEntry
from lightning_cv.task import ClassificationTask

__all__ = ["QUIET", "TOLERANCE", "build_datamodule", "compare", "data_module", "measure"]

TOLERANCE = 0.1  # percentage points of top-1 a re-measurement may differ by
QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
         "enable_model_summary": False}  # fmt: skip


def data_module(class_path: str, init_args: dict[str, Any], *, source: str) -> ImageDataModule:
    """A lightning_cv data module as a recipe states it, built and checked by jsonargparse.

    Raises:
        ConfigError: a class outside lightning_cv (refused before its module is imported), a
            class that is not an ImageDataModule, or options it does not take.

    Example:
        >>> data = data_module("lightning_cv.data.DigitsDataModule", {"image_size": 8}, source="ex")
        >>> data.image_size
        8
    """
    if not is_own_class(class_path):
        raise ConfigError(
            f"{source}: datamodule {class_path!r} is not one of lightning_cv's data modules; "
            "a manifest may name lightning_cv classes only"
        )
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--data", type=ImageDataModule, required=True)
    try:
        # a copy: jsonargparse turns the nested dicts it is given into Namespaces in place
        given = {"class_path": class_path, "init_args": copy.deepcopy(init_args)}
        config = parser.parse_object({"data": given})
    except ArgumentError as error:
        detail = " ".join(str(error).split())
        raise ConfigError(f"{source}: datamodule {class_path!r}: {detail}") from None
    return parser.instantiate(config).data


def build_datamodule(
    entry: ZooEntry, root: str | Path, options: dict[str, Any] | None = None, **overrides: Any
) -> ImageDataModule:
    """The entry's data module over ``root``, with its checkpoint's saved ``options``
    (``datamodule_hyper_parameters``) and ``overrides`` (``download=True``...)."""
    init_args = {**(options or {}), **overrides, "root": str(root)}
    return data_module(entry.datamodule, init_args, source=f"zoo entry {entry.name!r}")


def measure(
    model: ClassificationTask, data: ImageDataModule, *, accelerator: str = "auto",
    tta: TTA | None = None,
) -> Metrics:  # fmt: skip
    """Top-1, top-5 (more than five classes) and macro F1 on ``data``'s test split, in percent
    rounded to 0.01 (``Trainer.test`` on one device); with ``tta``, top-1 of the
    :class:`~lightning_cv.callbacks.TestTimeAugmentation` it describes too."""
    callbacks = [] if tta is None else [TestTimeAugmentation(**tta.model_dump())]
    trainer = L.Trainer(accelerator=accelerator, devices=1, callbacks=callbacks, **QUIET)
    scores = trainer.test(model, datamodule=data, verbose=False)[0]
    percent = {key: round(100 * float(scores[f"test/{key}"]), 2)
               for key in Metrics.model_fields if f"test/{key}" in scores}  # fmt: skip
    return Metrics(**percent)


def compare(entry: ZooEntry, measured: Metrics) -> dict[str, Any]:
    """A re-measurement against the manifest; ``ok`` when top-1 (and top-1 with TTA, when the
    entry has it) is within :data:`TOLERANCE`."""
    difference = round(measured.acc - entry.metrics.acc, 2)
    tta = None
    if entry.metrics.acc_tta is not None and measured.acc_tta is not None:
        tta = round(measured.acc_tta - entry.metrics.acc_tta, 2)
    return {
        "name": entry.name,
        "measured": measured.model_dump(exclude_none=True),
        "manifest": entry.metrics.model_dump(exclude_none=True),
        "acc_difference": difference,
        **({} if tta is None else {"acc_tta_difference": tta}),
        "tolerance": TOLERANCE,
        "ok": abs(difference) <= TOLERANCE and abs(tta or 0) <= TOLERANCE,
    }
