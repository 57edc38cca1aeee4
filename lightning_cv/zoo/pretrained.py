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
from lightning_cv.data import ImageDataModule
from lightning_cv.data.datamodule import SampleDataset
from lightning_cv.data.folder import IMAGE_EXTENSIONS, ImageFiles
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.task import ClassificationTask
from lightning_cv.zoo.evaluate import build_datamodule, data_module
from lightning_cv.zoo.hub import fetch, read_zoo_checkpoint
from lightning_cv.zoo.manifest import ZooEntry, get_entry, manifest_path

__all__ = ["Pretrained", "image_files", "load", "predict_images"]


@dataclass(frozen=True)
class Pretrained:
    """A classifier ready to use: the model (eval mode, CPU), its eval transform and classes.

    Attributes:
        model: the classifier, mapping (B, C, H, W) to class scores.
        transform: the albumentations eval pipeline of its data module: an ``(H, W, C)``
            uint8 image in, the normalized ``(C, H, W)`` float tensor out.
        class_names: one name per output.
        data: the data module it was trained on (its mean, std and image size).
        entry: the manifest entry (metrics, recipe, sources...); None for a checkpoint file.
        name: the entry's name or the checkpoint's path.

    Example:
        >>> pretrained = load("lenet5.mnist")
        >>> pretrained.model(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """

    model: ClassificationTask
    transform: A.Compose
    class_names: tuple[str, ...]
    data: ImageDataModule
    entry: ZooEntry | None
    name: str

    @property
    def in_channels(self) -> int:
        """Image channels the model takes."""
        return self.data.in_channels

    def pixels(self, image: str | Path | Image.Image | np.ndarray) -> np.ndarray:
        """``image`` as ``(H, W, C)`` uint8 pixels with the model's channel count, converted
        as the data sets convert files (PIL: grey by ITU-R 601-2 luma, alpha dropped)."""
        if isinstance(image, str | Path):
            return ImageFiles([Path(image)], channels=self.in_channels)[0]
        array = np.asarray(image)
        if array.dtype != np.uint8 or array.ndim not in (2, 3):
            raise ConfigError(
                f"{self.name} takes (H, W) or (H, W, C) uint8 images, got {array.dtype} of shape "
                f"{array.shape}"
            )
        array = array[..., None] if array.ndim == 2 else array  # (H, W) -> (H, W, 1)
        if array.shape[-1] != self.in_channels:
            mode = "L" if self.in_channels == 1 else "RGB"
            array = np.asarray(
                Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).convert(mode)
            )
        return array[..., None] if array.ndim == 2 else array

    def predict(
        self, image: str | Path | Image.Image | np.ndarray | torch.Tensor, top_k: int = 5
    ) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """The ``top_k`` most probable classes, most probable first.

        Args:
            image: a path, a PIL image or uint8 pixels (``(H, W)`` or ``(H, W, C)``, any size
                and channel count: converted and resized by the eval transform), or a batch
                tensor ``(B, C, H, W)`` already transformed.
            top_k: how many classes; at most ``num_classes`` are returned.

        Returns:
            ``(class name, probability)`` pairs; for a batch tensor, one list per image.

        Raises:
            ConfigError: ``top_k`` below 1, or an image that is not uint8 pixels.
        """
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        batched = isinstance(image, torch.Tensor)
        batch = image if batched else self.transform(image=self.pixels(image))["image"][None]
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            probs = self.model.predict_proba(batch.to(device))  # (B, num_classes)
        values, indices = probs.topk(min(top_k, len(self.class_names)), dim=1)
        ranked = [
            [(self.class_names[i], v) for v, i in zip(vs, iis, strict=True)]
            for vs, iis in zip(values.tolist(), indices.tolist(), strict=True)
        ]
        return ranked if batched else ranked[0]


def _model_class(hparams: dict[str, Any]) -> type[ClassificationTask]:
    """The class a checkpoint names (``_class_path``; read_checkpoint refused foreign ones)."""
    path = hparams.get("_class_path", "lightning_cv.task.ImageClassifier")
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


_NOT_INIT_ARGS = ("root", "split_fingerprint", "_class_path", "_instantiator")


def _data_of(path: Path, checkpoint: dict[str, Any]) -> ImageDataModule:
    """The data module a ``lightning-cv fit`` checkpoint was trained on: its class from the
    run's ``config.yaml`` (beside ``checkpoints/``), its options from the checkpoint."""
    config = path.parent.parent / "config.yaml"
    spec = (yaml.safe_load(config.read_text()) or {}).get("data") if config.is_file() else None
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ConfigError(
            f"checkpoint {str(path)!r} does not name its data module: pass a zoo name, or a "
            "checkpoint in the checkpoints/ folder of a lightning-cv fit run (with its config.yaml)"
        )
    saved = checkpoint.get("datamodule_hyper_parameters") or spec.get("init_args") or {}
    options = {k: v for k, v in saved.items() if k not in _NOT_INIT_ARGS}
    return data_module(spec["class_path"], options, source=f"checkpoint {str(path)!r}")


def _pretrained(path: Path, checkpoint: dict[str, Any], data, entry, name) -> Pretrained:
    hparams = checkpoint["hyper_parameters"]
    model = _model_class(hparams).load_from_checkpoint(path, map_location="cpu", weights_only=True)
    if data.mean is None:
        raise ConfigError(
            f"{name}: the data's mean and std were computed from its training images and are "
            "not saved; train with --data.mean and --data.std to predict without them"
        )
    spec = data.eval_transform if isinstance(data.eval_transform, str) else "eval"
    class_names = tuple(hparams.get("class_names") or data.class_names)
    return Pretrained(model.eval(), data.build_transform(spec), class_names, data, entry, name)


def load(name: str | Path, manifest: str | Path | None = None) -> Pretrained:
    """Load a zoo model or any lightning-cv checkpoint: rebuild the classifier with Lightning's
    ``load_from_checkpoint(weights_only=True)`` and its data module's eval transform.

    Args:
        name: an entry name, e.g. ``"lenet5.mnist"``, or the path of a ``.ckpt`` file written
            by ``lightning-cv fit`` (its run's ``config.yaml`` names the data module).
        manifest: another manifest file (default: ``$LIGHTNING_CV_ZOO_MANIFEST`` or the
            package's).

    Raises:
        ConfigError: an unknown name.
        DataFileError: a file that cannot be fetched, has another sha256, or would run code
            when unpickled.
    """
    if str(name).endswith(".ckpt"):
        path = Path(name)
        checkpoint = read_checkpoint(path)
        return _pretrained(path, checkpoint, _data_of(path, checkpoint), None, str(path))
    entry = get_entry(str(name), manifest)
    path = fetch(entry, bundled_root=manifest_path(manifest).parent)
    checkpoint = read_zoo_checkpoint(path)
    options = checkpoint.get("datamodule_hyper_parameters") or {}
    data = build_datamodule(entry, ".", options={k: v for k, v in options.items() if k != "root"})
    return _pretrained(path, checkpoint, data, entry, entry.name)


def image_files(path: Path) -> list[Path]:
    """``path`` if it is a file, else the image files below it (sorted, hidden ones skipped).

    Raises:
        DataFileError: no such path, or a folder without image files.
    """
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataFileError(f"image or folder {str(path)!r} does not exist")
    files = sorted(
        file
        for file in path.rglob("*")
        if file.is_file()
        and file.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    if not files:
        raise DataFileError(
            f"folder {str(path)!r} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return files


def _labels(files: list[Path], folder: Path, class_names: tuple[str, ...]) -> list[int] | None:
    """Class indices from class sub-folders (``folder/<class name>/image.png``), when every
    file lies in one named after a class; else None."""
    parents = [file.relative_to(folder).parts[:-1] for file in files] if folder.is_dir() else []
    if not parents or any(len(p) != 1 or p[0] not in class_names for p in parents):
        return None
    return [class_names.index(p[0]) for p in parents]


def predict_images(
    pretrained: Pretrained, path: str | Path, *, output: str | Path, top_k: int = 5
) -> list[dict[str, str]]:
    """Predict an image file or every image below a folder with ``Trainer.predict`` and write
    the CSV of :class:`~lightning_cv.callbacks.predictions.PredictionWriter` to ``output``.

    Returns:
        The rows written: ``path``, ``label`` (class sub-folders only), ``class_i``/``prob_i``.
    """
    files = image_files(Path(path))
    labels = _labels(files, Path(path), pretrained.class_names)
    # decoded with the data sets' colour policy: converted to the model's channel count
    images = ImageFiles(files, channels=pretrained.in_channels)
    dataset = SampleDataset(images, np.zeros(len(files)), pretrained.transform)
    writer = PredictionWriter(
        output, pretrained.class_names, top_k=top_k, paths=[str(f) for f in files], labels=labels
    )
    trainer = L.Trainer(
        accelerator="cpu", logger=False, callbacks=[writer], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False,
    )  # fmt: skip
    trainer.predict(pretrained.model, DataLoader(dataset, batch_size=64), return_predictions=False)
    return writer.rows
