"""Pretrained models: a zoo entry or any lightning-cv checkpoint, ready to predict."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch

from lightning_cv.data import ImageDataModule
from lightning_cv.data.folder import IMAGE_EXTENSIONS, ImageFiles
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.task import ClassificationTask
from lightning_cv.zoo.evaluate import build_datamodule
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
        entry: the manifest entry (metrics, recipe, sources...).

    Example:
        >>> pretrained = load("lenet5.mnist")
        >>> pretrained.model(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """

    model: ClassificationTask
    transform: A.Compose
    class_names: tuple[str, ...]
    data: ImageDataModule
    entry: ZooEntry

    @property
    def in_channels(self) -> int:
        """Image channels the model takes."""
        return self.data.in_channels

    def predict(self, image: np.ndarray, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` most probable classes of one image, most probable first.

        Args:
            image: ``(H, W, C)`` (or ``(H, W)`` for one channel) uint8 pixels, with the
                model's channel count; any size (the eval transform resizes).
            top_k: how many classes; at most ``num_classes`` are returned.

        Returns:
            ``(class name, probability)`` pairs.

        Raises:
            ConfigError: ``top_k`` below 1, or an image of another dtype or channel count.
        """
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        array = np.asarray(image)
        array = array[..., None] if array.ndim == 2 else array  # (H, W) -> (H, W, 1)
        channels = self.in_channels
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != channels:
            raise ConfigError(
                f"{self.entry.name} takes (H, W, {channels}) uint8 images, got {array.dtype} "
                f"of shape {array.shape}"
            )
        batch = self.transform(image=array)["image"][None]  # (1, C, H, W)
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            probs = self.model.predict_proba(batch.to(device))[0]  # (num_classes,)
        values, indices = probs.topk(min(top_k, len(self.class_names)))
        return [
            (self.class_names[index], value)
            for value, index in zip(values.tolist(), indices.tolist(), strict=True)
        ]


def _model_class(hparams: dict[str, Any]) -> type[ClassificationTask]:
    """The class a checkpoint names (``_class_path``; read_checkpoint refused foreign ones)."""
    module, _, name = hparams.get("_class_path", "lightning_cv.task.ImageClassifier").rpartition(
        "."
    )
    return getattr(importlib.import_module(module), name)


def load(name: str, manifest: str | Path | None = None) -> Pretrained:
    """Load a zoo model: fetch and verify its file, rebuild the classifier with Lightning's
    ``load_from_checkpoint(weights_only=True)``, build its data module's eval transform.

    Args:
        name: an entry name, e.g. ``"lenet5.mnist"``.
        manifest: another manifest file (default: ``$LIGHTNING_CV_ZOO_MANIFEST`` or the
            package's).

    Raises:
        ConfigError: an unknown name.
        DataFileError: a file that cannot be fetched, has another sha256, or would run code
            when unpickled.
    """
    entry = get_entry(name, manifest)
    path = fetch(entry, bundled_root=manifest_path(manifest).parent)
    checkpoint = read_zoo_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    model = _model_class(hparams).load_from_checkpoint(path, map_location="cpu", weights_only=True)
    options = checkpoint.get("datamodule_hyper_parameters") or {}
    data = build_datamodule(entry, ".", options={k: v for k, v in options.items() if k != "root"})
    spec = data.eval_transform if isinstance(data.eval_transform, str) else "eval"
    class_names = tuple(hparams.get("class_names") or data.class_names)
    return Pretrained(model.eval(), data.build_transform(spec), class_names, data, entry)


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


def predict_images(
    pretrained: Pretrained, path: Path, *, top_k: int = 5
) -> list[tuple[Path, list[tuple[str, float]]]]:
    """The top-k classes of an image file or of every image below a folder."""
    paths = image_files(Path(path))
    # decoded with the data sets' colour policy: converted to the model's channel count
    images = ImageFiles(paths, channels=pretrained.in_channels)
    return [
        (p, pretrained.predict(image, top_k=top_k)) for p, image in zip(paths, images, strict=True)
    ]
