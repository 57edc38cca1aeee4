"""Pretrained models: a zoo entry or any lightning-cv checkpoint, ready to predict."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import lightning.pytorch as L
import numpy as np
import torch
import yaml
from PIL import Image
from torch.utils.data import DataLoader

from lightning_cv._checkpoint import read_checkpoint
from lightning_cv.callbacks.predictions import PredictionWriter
from lightning_cv.callbacks.tta import TestTimeAugmentation
from lightning_cv.data import ImageDataModule
from lightning_cv.data.folder import IMAGE_EXTENSIONS, ImageFiles, refuse_broken_link
from lightning_cv.data.pipelines import SampleDataset
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.files import checkpoint_file, read_zoo_checkpoint
from lightning_cv.hub.manifest import TTA, ZooEntry, get_entry
from lightning_cv.task import ClassificationTask
from lightning_cv.zoo.evaluate import QUIET, data_module

__all__ = ["Pretrained", "image_files", "load", "predict_images"]

# saved beside the init args: by LightningCLI (class path), or computed by the data module
_NOT_INIT_ARGS = ("split_fingerprint", "_class_path", "_instantiator")
# data options that runs of earlier versions saved under their old names: old -> new
_RENAMED_OPTIONS = {"split": "split_strategy"}


@dataclass(frozen=True)
class Pretrained:
    """A classifier (eval mode, CPU), its data module's eval transform (``(H, W, C)`` uint8 in,
    normalized ``(C, H, W)`` out), class names, data module, zoo entry (None for a checkpoint
    file), name (the entry's, or the checkpoint's path) and the test-time augmentation its
    recipe evaluated with (None without one).

    Example:
        >>> load("lenet5.mnist").model(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """

    model: ClassificationTask
    transform: A.Compose
    class_names: tuple[str, ...]
    data: ImageDataModule
    entry: ZooEntry | None
    name: str
    tta: TTA | None = None

    def test_time_augmentation(self) -> TestTimeAugmentation:
        """The callback of :attr:`tta`, for ``Trainer.predict`` or ``Trainer.test``.

        Raises:
            ConfigError: the model was not evaluated with test-time augmentation, or its views
                mirror data whose classes change when mirrored (digits).
        """
        if self.tta is None:
            raise ConfigError(
                f"{self.name} has no test-time augmentation: its recipe lists no "
                "TestTimeAugmentation callback; predict without tta"
            )
        callback = TestTimeAugmentation(**self.tta.model_dump())
        callback.check_data(self.data)
        return callback

    def pixels(self, image: str | Path | Image.Image | np.ndarray) -> np.ndarray:
        """``image`` as ``(H, W, C)`` uint8 pixels in the model's channels, converted as the
        data sets convert files (PIL: grey by ITU-R 601-2 luma, alpha dropped)."""
        channels = self.data.in_channels
        if isinstance(image, str | Path):
            return ImageFiles([Path(image)], channels=channels)[0]
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim not in (2, 3):
            raise ConfigError(
                f"{self.name} takes (H, W) or (H, W, C) uint8 images, got {array.dtype} of shape "
                f"{array.shape}"
            )
        grey = array.ndim == 2 or array.shape[-1] == 1
        image = Image.fromarray(array.reshape(array.shape[:2]) if grey else array)
        array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
        return array[..., None] if array.ndim == 2 else array  # (H, W) -> (H, W, 1)

    def predict(
        self, image: str | Path | Image.Image | np.ndarray | torch.Tensor, top_k: int = 5,
        *, tta: bool = False,
    ) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:  # fmt: skip
        """The ``top_k`` most probable classes, most probable first.

        Args:
            image: a path, a PIL image or uint8 pixels of any size and channel count, or a
                transformed batch tensor ``(B, C, H, W)``.
            top_k: how many classes (at most ``num_classes``).
            tta: average the probabilities over the views of :attr:`tta`.

        Returns:
            ``(class name, probability)`` pairs; for a batch tensor, one list per image.

        Raises:
            ConfigError: ``top_k`` below 1, an image that is not uint8 pixels, or ``tta`` for
                a model without test-time augmentation.
        """
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        averaged = self.test_time_augmentation().probabilities if tta else None
        batched = isinstance(image, torch.Tensor)
        batch = image if batched else self.transform(image=self.pixels(image))["image"][None]
        batch = batch.to(self.model.device)
        with torch.inference_mode():  # probs: (B, num_classes)
            probs = averaged(self.model, batch) if tta else self.model.predict_proba(batch)
        values, indices = probs.topk(min(top_k, len(self.class_names)), dim=1)
        ranked = [
            [(self.class_names[i], v) for v, i in zip(vs, iis, strict=True)]
            for vs, iis in zip(values.tolist(), indices.tolist(), strict=True)
        ]
        return ranked if batched else ranked[0]


def _kind(value: object) -> str:
    return "empty" if value is None else f"a {type(value).__name__}"


def _require(where: str, key: str, value: object, kind: type, expected: str) -> None:
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: {key} is {_kind(value)}; expected {expected}")


def _run_config(file: Path) -> dict[str, Any]:
    """A fit run's ``config.yaml``, checked for what a checkpoint takes from it: its data
    module (``data.class_path``, ``data.init_args``) and its ``trainer`` (the TTA callback).

    Raises:
        ConfigError: the file cannot be read, is not YAML, or holds another structure; the
            message names the file and what was expected.
    """
    where = f"run config {str(file)!r}"
    try:
        config = yaml.safe_load(file.read_text())
    except yaml.MarkedYAMLError as error:
        line = f" at line {error.problem_mark.line + 1}" if error.problem_mark else ""
        raise ConfigError(
            f"{where} is not valid YAML ({error.problem or error.context}{line}); expected the "
            "config.yaml that lightning-cv fit wrote beside checkpoints/"
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{where} cannot be read as YAML text: {error}") from None
    _require(where, "the file", config, dict, "a mapping of data, model and trainer options")
    data = config.get("data")
    _require(where, "data", data, dict, "a mapping with the data module's class_path")
    _require(where, "data.class_path", data.get("class_path"), str,
             "the data module's class path, e.g. 'lightning_cv.data.DigitsDataModule'")  # fmt: skip
    _require(where, "data.init_args", data.get("init_args") or {}, dict,
             "a mapping of the data module's options")  # fmt: skip
    _require(where, "trainer", config.get("trainer") or {}, dict,
             "a mapping of the Trainer's options")  # fmt: skip
    return config


def _fit_run_data(path: Path, checkpoint: dict[str, Any]) -> tuple[str, dict[str, Any], TTA | None]:
    """The data module's class path in the ``config.yaml`` of the ``lightning-cv fit`` run
    beside ``checkpoints/``, its options (those the checkpoint saved, else the config's) and
    the run's test-time augmentation."""
    file = path.parent.parent / "config.yaml"
    if not file.is_file():
        raise ConfigError(
            f"checkpoint {str(path)!r} does not name its data module: pass a zoo name, or a "
            "checkpoint in the checkpoints/ folder of a lightning-cv fit run (with its config.yaml)"
        )
    config = _run_config(file)
    spec = config["data"]
    saved = checkpoint.get("datamodule_hyper_parameters") or spec.get("init_args") or {}
    try:
        tta = TTA.from_recipe(config)
    except ConfigError as error:
        raise ConfigError(f"run config {str(file)!r}: {error}") from None
    return spec["class_path"], saved, tta


def load(name: str | Path, manifest: str | Path | None = None) -> Pretrained:
    """Load a zoo model or any lightning-cv checkpoint: the classifier by Lightning's
    ``load_from_checkpoint(weights_only=True)``, the eval transform by its data module.

    Args:
        name: an entry name, e.g. ``"lenet5.mnist"``, or a ``.ckpt`` file written by
            ``lightning-cv fit`` (its run's ``config.yaml`` names the data module).
        manifest: another manifest file.

    Raises:
        ConfigError: an unknown name, or a data module whose mean and std are not known.
        DataFileError: a file that cannot be fetched, has another sha256, or would run code
            when unpickled.
    """
    entry = None if str(name).endswith(".ckpt") else get_entry(str(name), manifest)
    if entry is None:
        path, label = Path(name), str(name)
        checkpoint = read_checkpoint(path)
        class_path, saved, tta = _fit_run_data(path, checkpoint)
    else:
        path, label, tta = checkpoint_file(entry, manifest), entry.name, entry.tta
        checkpoint = read_zoo_checkpoint(path)
        class_path, saved = entry.datamodule, checkpoint.get("datamodule_hyper_parameters") or {}
    source = f"checkpoint {label!r}" if entry is None else f"zoo entry {label!r}"
    options = {_RENAMED_OPTIONS.get(key, key): value for key, value in saved.items()
               if key not in _NOT_INIT_ARGS}  # fmt: skip
    data = data_module(class_path, options, source=source)
    data.load_state_dict(checkpoint.get(type(data).__qualname__) or {})  # as Lightning restores
    if data.mean is None:
        raise ConfigError(
            f"{label}: the data's mean and std were computed from its training images and are "
            "not saved; train with --data.mean and --data.std to predict without them"
        )
    hparams = checkpoint["hyper_parameters"]
    module, _, cls = hparams.get("_class_path", "lightning_cv.task.ImageClassifier").rpartition(".")
    model = getattr(importlib.import_module(module), cls).load_from_checkpoint(
        path, map_location="cpu", weights_only=True
    )  # read_checkpoint refused a class path outside lightning_cv
    spec = data.eval_transform if isinstance(data.eval_transform, str) else "eval"
    class_names = tuple(hparams.get("class_names") or data.class_names)
    transform = data.build_transform(spec)
    return Pretrained(model.eval(), transform, class_names, data, entry, label, tta)


def image_files(path: Path) -> list[Path]:
    """``path`` if it is a file, else the image files below it (sorted, hidden ones skipped).

    Raises:
        DataFileError: no such path, or a folder without image files.
    """
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataFileError(f"image or folder {str(path)!r} does not exist")
    named = sorted(
        file
        for file in path.rglob("*")
        if file.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    for file in named:  # a link named like an image that reaches no file is not skipped
        refuse_broken_link(file, "image file", "predict")
    files = [file for file in named if file.is_file()]
    if not files:
        extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DataFileError(f"folder {str(path)!r} holds no image files ({extensions})")
    return files


def folder_class(folder: str, class_names: list[str]) -> int | None:
    """The class a folder of images names: by the class's name (``7 - seven``) or by its index
    (``7``); None for a folder that names no class.

    Example:
        >>> folder_class("7", ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
        ...                    "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"])
        7
    """
    if folder in class_names:
        return class_names.index(folder)
    if folder.isdecimal() and int(folder) < len(class_names):
        return int(folder)
    return None


def predict_images(
    pretrained: Pretrained, path: str | Path, *, output: str | Path, top_k: int = 5,
    tta: bool = False,
) -> list[dict[str, str]]:  # fmt: skip
    """Predict an image file or every image below a folder with ``Trainer.predict`` (averaged
    over the views of ``pretrained.tta`` with ``tta``), writing
    :class:`~lightning_cv.callbacks.predictions.PredictionWriter`'s CSV to ``output``.

    Returns:
        The rows written: ``path``, ``label`` (when every image lies in a folder that names a
        class by its name or its index, see :func:`folder_class`), then ``class_i`` and
        ``prob_i``.
    """
    path = Path(path)
    files, names = image_files(path), pretrained.class_names
    parents = [file.relative_to(path).parts[:-1] for file in files] if path.is_dir() else []
    found = [folder_class(p[0], names) if len(p) == 1 else None for p in parents]
    labels = found if found and None not in found else None
    images = ImageFiles(files, channels=pretrained.data.in_channels)  # the data sets' colours
    dataset = SampleDataset(images, np.zeros(len(files)), pretrained.transform)
    writer = PredictionWriter(
        output, names, top_k=top_k, paths=list(map(str, files)), labels=labels
    )
    averaged = [pretrained.test_time_augmentation()] if tta else []
    trainer = L.Trainer(accelerator="cpu", callbacks=[*averaged, writer], **QUIET)
    trainer.predict(pretrained.model, DataLoader(dataset, batch_size=64), return_predictions=False)
    return writer.rows
