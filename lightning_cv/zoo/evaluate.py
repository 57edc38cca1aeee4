"""Build a checkpoint's data module and measure a classifier, or an export of it (``.pt2``,
``.onnx``), on its official test split."""

from __future__ import annotations

import copy
import json
from argparse import ArgumentError
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import lightning.pytorch as L
import numpy as np
import torch
from jsonargparse import ArgumentParser
from torch import nn

from lightning_cv._checkpoint import is_own_class
from lightning_cv.callbacks.tta import TestTimeAugmentation
from lightning_cv.data import ImageDataModule
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.files import checkpoint_file, read_zoo_checkpoint
from lightning_cv.hub.manifest import TTA, Metrics, ZooEntry
from lightning_cv.task import ClassificationTask, ImageClassifier
from lightning_cv.zoo.export import METADATA_FILE, METADATA_KEY
from lightning_cv.zoo.pretrained import Pretrained

__all__ = [
    "EXPORT_TOLERANCE",
    "QUIET",
    "TOLERANCE",
    "ExportedModel",
    "build_datamodule",
    "compare",
    "compare_export",
    "data_module",
    "load_export",
    "measure",
    "saved_data_options",
    "task_of",
]

TOLERANCE = 0.1  # percentage points of top-1 a re-measurement may differ by
EXPORT_TOLERANCE = 0.05  # percentage points of top-1 an export may differ from its checkpoint by
EXPORT_BATCH = 500  # test images per batch when measuring an export
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


def saved_data_options(entry: ZooEntry, manifest: str | Path | None = None) -> dict[str, Any]:
    """The data module options the entry's checkpoint saved (its recipe's, without ``root``),
    as the recipe states them: a built data module's ``hparams`` hold a ``BatchAugment`` as
    text that does not parse back."""
    checkpoint = read_zoo_checkpoint(checkpoint_file(entry, manifest))
    return checkpoint.get("datamodule_hyper_parameters") or {}


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


def task_of(pretrained: Pretrained) -> ImageClassifier:
    """The :class:`~lightning_cv.task.ImageClassifier` around a loaded model, for
    :func:`measure` (``Trainer.test``)."""
    record = pretrained.preprocessing
    return ImageClassifier(pretrained.model, num_classes=len(record.class_names),
                           in_channels=record.in_channels, image_size=record.image_size,
                           class_names=record.class_names)  # fmt: skip


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


@dataclass(frozen=True)
class ExportedModel:
    """An export loaded for inference: its file, the metadata it carries (see
    :func:`~lightning_cv.zoo.export.export_metadata`) and ``run``, which maps a numpy
    batch (B, C, H, W) (uint8 with baked preprocessing, else normalized float32) to its output
    (B, num_classes)."""

    path: Path
    metadata: dict[str, Any]
    run: Callable[[np.ndarray], np.ndarray]


def load_export(path: str | Path) -> ExportedModel:
    """Load an ``.onnx`` export in onnxruntime or a ``.pt2`` one with
    ``torch.export.load(path).module()``. A ``.pt2`` file is unpickled in part by
    ``torch.export.load``: load only files you trust.

    Raises:
        ConfigError: onnxruntime is missing for an ``.onnx`` file.
        DataFileError: no such file, another suffix, a file that is not such an export, or
            one without lightning-cv's metadata.
    """
    path = Path(path)
    if path.suffix not in (".onnx", ".pt2"):
        raise DataFileError(f"export {str(path)!r}: expected a .onnx or .pt2 file")
    if not path.is_file():
        raise DataFileError(f"export {str(path)!r} does not exist")
    try:
        text, run = _onnx_runner(path) if path.suffix == ".onnx" else _pt2_runner(path)
    except (ConfigError, DataFileError):
        raise
    except Exception as error:  # each runtime raises its own errors for a file it cannot parse
        detail = " ".join(str(error).split())[:200]
        raise DataFileError(
            f"export {str(path)!r} cannot be read as a {path.suffix} file: {detail}"
        ) from None
    if not text:
        raise DataFileError(
            f"export {str(path)!r} holds no {METADATA_KEY!r} metadata; expected a file written "
            "by lightning-cv zoo export"
        )
    return ExportedModel(path, json.loads(text), run)


def _onnx_runner(path: Path) -> tuple[str | None, Callable[[np.ndarray], np.ndarray]]:
    try:
        import onnxruntime  # the [export] extra
    except ImportError:
        raise ConfigError(
            "running an ONNX export needs onnxruntime; pip install 'lightning-cv-zoo[export]'"
        ) from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as torch: OMP_NUM_THREADS
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    name = session.get_inputs()[0].name
    return text, lambda images: session.run(None, {name: images})[0]


def _pt2_runner(path: Path) -> tuple[str | None, Callable[[np.ndarray], np.ndarray]]:
    extra = {METADATA_FILE: ""}
    module = torch.export.load(path, extra_files=extra).module()

    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(images)).numpy()

    return extra[METADATA_FILE], run


def compare_export(
    exported: ExportedModel, model: nn.Module, data: ImageDataModule, *, transform: A.Compose,
    reference_acc: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Top-1 of an export and of its checkpoint's ``model`` on ``data``'s test split; ``ok``
    when they differ by at most :data:`EXPORT_TOLERANCE` points.

    The checkpoint sees the images through ``transform`` (the eval transform); the export sees
    the same normalized batch, or the uint8 pixels when its preprocessing is baked in.

    Raises:
        ConfigError: a baked export whose input size is not the test images' size.
    """
    images, labels = data.load_split("test")
    meta, correct, agree = exported.metadata, np.zeros(2, dtype=np.int64), 0
    for start in range(0, len(labels), EXPORT_BATCH):
        stop = min(start + EXPORT_BATCH, len(labels))
        pixels = np.stack([np.asarray(images[index]) for index in range(start, stop)])
        normalized = torch.stack([transform(image=image)["image"] for image in pixels])
        if meta["preprocess"]:
            _check_size(exported, pixels.shape[1:3])
        feed = pixels.transpose(0, 3, 1, 2) if meta["preprocess"] else normalized.numpy()
        with torch.inference_mode():
            by_checkpoint = model(normalized).argmax(dim=1).numpy()
        by_export = exported.run(np.ascontiguousarray(feed)).argmax(axis=1)
        truth = np.asarray(labels[start:stop])
        correct += [(by_checkpoint == truth).sum(), (by_export == truth).sum()]
        agree += int((by_checkpoint == by_export).sum())
    checkpoint_acc, export_acc = (round(100 * int(c) / len(labels), 2) for c in correct)
    difference = round(100 * int(correct[1] - correct[0]) / len(labels), 2)
    return {
        "export": str(exported.path), "name": meta["name"], "preprocess": meta["preprocess"],
        "images": len(labels), "checkpoint_acc": checkpoint_acc, "export_acc": export_acc,
        "acc_difference": difference, "same_prediction": round(100 * agree / len(labels), 2),
        **({} if reference_acc is None else {"manifest_acc": reference_acc}),
        "tolerance": EXPORT_TOLERANCE, "ok": bool(abs(difference) <= EXPORT_TOLERANCE),
    }  # fmt: skip


def _check_size(exported: ExportedModel, size: tuple[int, int]) -> None:
    expected = tuple(exported.metadata["image_size"])
    if tuple(size) != expected:
        raise ConfigError(
            f"export {str(exported.path)!r} takes uint8 images of {expected[0]}x{expected[1]} "
            f"pixels, but the test images are {size[0]}x{size[1]}; measure the export without "
            "baked preprocessing"
        )
