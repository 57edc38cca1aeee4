"""Pretrained models: a zoo entry or any lightning-cv checkpoint, ready to predict from the
file alone, with plain torch (no Lightning, no training data, no run folder).

The checkpoint is read once: its hyperparameters build the backbone
(:func:`~lightning_cv.models.create_model`), its ``state_dict`` gives the weights (the
``backbone.`` ones: ``ImageClassifier.forward`` is the backbone's), and its
:class:`~lightning_cv.preprocessing.Preprocessing` record turns images into the model's input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_cv._checkpoint import first_difference, read_checkpoint
from lightning_cv._io import check_new_file, sha256_file
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.files import read_zoo_checkpoint
from lightning_cv.hub.manifest import ZooEntry
from lightning_cv.hub.sources import resolve_source
from lightning_cv.models import create_model
from lightning_cv.predictions import folder_class, image_files, prediction_rows, write_rows
from lightning_cv.preprocessing import ImageInput, Preprocessing
from lightning_cv.tta import averaged_probabilities

__all__ = ["Predictions", "Pretrained", "load", "predict_images"]

BATCH_SIZE = 256  # images decoded and predicted at a time by predict_images
Ranked = list[tuple[str, float]]


@dataclass(frozen=True)
class Pretrained:
    """A classifier (eval mode, CPU) and what its checkpoint says about its input.

    Attributes:
        model: the backbone: normalised ``(B, C, H, W)`` -> logits ``(B, num_classes)``.
        preprocessing: the checkpoint's record (size, channels, mean/std, classes, TTA).
        name: the zoo entry's name, or the checkpoint file's stem.
        sha256: of the checkpoint file.
        entry: the zoo entry; None for a checkpoint path.

    Example:
        >>> pretrained = load("lenet5.mnist")
        >>> pretrained.predict(np.zeros((28, 28), np.uint8), top_k=1)  # doctest: +SKIP
        [('1 - one', 0.41)]
    """

    model: nn.Module
    preprocessing: Preprocessing
    name: str
    sha256: str
    entry: ZooEntry | None = field(default=None)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.preprocessing.class_names

    def batch(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """The model's input ``(B, C, H, W)`` for paths, PIL images or uint8 arrays."""
        return self.preprocessing.batch(images)

    def probabilities(
        self, images: ImageInput | Sequence[ImageInput] | torch.Tensor, *, tta: bool = False
    ) -> torch.Tensor:
        """Class probabilities ``(B, num_classes)`` of one image, a list of them, or a batch
        :meth:`batch` made; with ``tta``, averaged over the views of the record's TTA.

        Raises:
            ConfigError: ``tta`` for a model whose run had no test-time augmentation; an image
                that is not a path, PIL image or uint8 array.
        """
        batch = images if isinstance(images, torch.Tensor) else self.batch(_as_list(images))
        views = self.preprocessing.tta
        if tta and views is None:
            raise ConfigError(
                f"{self.name} has no test-time augmentation: its recipe lists no "
                "TestTimeAugmentation callback; predict without tta"
            )
        with torch.inference_mode():
            if tta:
                return averaged_probabilities(self.model, batch, **views.model_dump())
            return self.model(batch).softmax(dim=1)

    def predict(
        self, images: ImageInput | Sequence[ImageInput] | torch.Tensor, top_k: int = 5,
        *, tta: bool = False,
    ) -> Ranked | list[Ranked]:  # fmt: skip
        """The ``top_k`` most probable ``(class name, probability)`` pairs, most probable
        first: one list for one image, one list per image for a list or a batch tensor.

        Raises:
            ConfigError: ``top_k`` below 1, and as :meth:`probabilities`.
        """
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        probs = self.probabilities(images, tta=tta)
        values, indices = probs.topk(min(top_k, len(self.class_names)), dim=1)
        ranked = [
            [(self.class_names[i], v) for v, i in zip(vs, iis, strict=True)]
            for vs, iis in zip(values.tolist(), indices.tolist(), strict=True)
        ]
        one = not isinstance(images, torch.Tensor | list | tuple)
        return ranked[0] if one else ranked

    def info(self) -> dict[str, Any]:
        """What a person or a server shows about the model, as JSON-able data."""
        metrics = {} if self.entry is None else self.entry.metrics.model_dump(exclude_none=True)
        return {
            "name": self.name,
            "sha256": self.sha256,
            "class_names": list(self.class_names),
            "metrics": metrics,
            "preprocessing": self.preprocessing.to_checkpoint(),
            "source": "checkpoint file" if self.entry is None else f"zoo entry {self.entry.name}",
        }


def _as_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    return list(images) if isinstance(images, list | tuple) else [images]


def load(
    source: str | Path, *, sha256: str | None = None, manifest: str | Path | None = None
) -> Pretrained:
    """Load a zoo model or a lightning-cv checkpoint, reading the file once.

    Args:
        source: an entry name, e.g. ``"lenet5.mnist"``; a ``.ckpt`` file written by
            ``lightning-cv fit`` (copied anywhere: nothing beside it is read); an ``https://``
            URL with ``#sha256=<hex>``; a W&B artifact ``entity/project/name:alias`` or a W&B
            Registry path ``wandb-registry-model/collection:alias``
            (:func:`~lightning_cv.hub.sources.resolve_source`).
        sha256: the file's expected sha256 (a URL needs it, here or in its ``#sha256=``).
        manifest: another manifest file.

    Raises:
        ConfigError: an unknown name; a checkpoint without a preprocessing record, or of a
            model other than a registry backbone.
        DataFileError: a file that cannot be fetched, has another sha256, or would run code
            when unpickled.
    """
    path, entry = resolve_source(source, sha256=sha256, manifest=manifest)
    checkpoint = read_zoo_checkpoint(path) if entry else read_checkpoint(path)
    where = f"zoo entry {entry.name!r}" if entry else f"checkpoint {str(path)!r}"
    preprocessing = Preprocessing.from_checkpoint(checkpoint, source=where)
    model = backbone_of(checkpoint, where)
    if model.num_classes != len(preprocessing.class_names):
        raise DataFileError(
            f"{where}: {len(preprocessing.class_names)} class names for {model.num_classes} outputs"
        )
    sha256 = entry.sha256 if entry else sha256_file(path)
    return Pretrained(model, preprocessing, entry.name if entry else path.stem, sha256, entry)


def backbone_of(checkpoint: dict[str, Any], where: str) -> nn.Module:
    """The registry backbone a checkpoint's hyperparameters describe, with its trained
    weights, in eval mode on the CPU (float16 weights load into the float32 model)."""
    hparams = checkpoint["hyper_parameters"]
    class_path = hparams.get("_class_path", "lightning_cv.task.ImageClassifier")
    if class_path != "lightning_cv.task.ImageClassifier" or not isinstance(
        hparams.get("backbone"), str
    ):
        raise ConfigError(
            f"{where} holds a {class_path} without a registry backbone; load_from_checkpoint "
            "it with Lightning instead"
        )
    shape = {key: hparams[key] for key in ("num_classes", "in_channels", "image_size")}
    model = create_model(hparams["backbone"], **shape, **(hparams.get("backbone_kwargs") or {}))
    weights = {k.removeprefix("backbone."): v for k, v in checkpoint["state_dict"].items()
               if k.startswith("backbone.")}  # fmt: skip
    difference = first_difference(weights, model.state_dict())
    if difference is not None:
        raise DataFileError(f"{where}: its weights do not fit its backbone: {difference}")
    model.load_state_dict(weights)
    return model.eval()


@dataclass(frozen=True)
class Predictions:
    """What :func:`predict_images` did: the CSV rows, the files it could not read (path,
    reason), and the top-1 accuracy in percent when every image lies in a class folder."""

    rows: list[dict[str, str]]
    skipped: list[tuple[Path, str]]
    accuracy: float | None


def predict_images(
    pretrained: Pretrained, path: str | Path, *, output: str | Path, top_k: int = 5,
    tta: bool = False, strict: bool = False,
) -> Predictions:  # fmt: skip
    """Predict an image file or every image below a folder, :data:`BATCH_SIZE` at a time, and
    write the rows (:func:`~lightning_cv.predictions.prediction_rows`) to ``output``.

    Args:
        pretrained: the model.
        path: an image, or a folder searched recursively; images in sub-folders named after a
            class (by name or index, :func:`~lightning_cv.predictions.folder_class`) get a
            ``label`` column and an accuracy.
        output: the CSV file; an existing file is never replaced.
        top_k: classes per image.
        tta: average over the record's test-time augmentation.
        strict: stop at the first file that cannot be read, instead of skipping it.

    Raises:
        ConfigError: ``top_k`` below 1, ``output`` exists, or ``tta`` without a recorded TTA.
        DataFileError: no images; with ``strict``, a file that cannot be decoded.
    """
    path, output = Path(path), Path(output)
    if top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    check_new_file(output, "pass --output NEWPATH or move it")
    files, names = image_files(path), pretrained.class_names
    parents = [file.relative_to(path).parts[:-1] for file in files] if path.is_dir() else []
    found = [folder_class(p[0], names) if len(p) == 1 else None for p in parents]
    labelled = bool(found) and None not in found
    rows, skipped, correct = [], [], 0
    for start in range(0, len(files), BATCH_SIZE):
        chunk = range(start, min(start + BATCH_SIZE, len(files)))
        kept, batch = _decode(pretrained.preprocessing, [files[i] for i in chunk], skipped, strict)
        if not kept:
            continue
        probs = pretrained.probabilities(batch, tta=tta)
        labels = [found[start + i] for i in kept] if labelled else None
        rows += prediction_rows(probs, names, top_k=top_k, labels=labels,
                                paths=[str(files[start + i]) for i in kept])  # fmt: skip
        if labels is not None:
            correct += int((probs.argmax(1) == torch.tensor(labels)).sum())
    write_rows(output, rows, replace=False)
    accuracy = 100 * correct / len(rows) if labelled and rows else None
    return Predictions(rows, skipped, accuracy)


def _decode(
    preprocessing: Preprocessing, files: list[Path], skipped: list[tuple[Path, str]], strict: bool
) -> tuple[list[int], torch.Tensor]:
    """The model's input for the files that could be read, and which they were; a file that
    cannot be decoded raises with ``strict``, else joins ``skipped``."""
    custom = preprocessing.eval_pipeline is not None  # an albumentations pipeline, per image
    kept, items = [], []
    for index, file in enumerate(files):
        try:
            if custom:
                items.append(preprocessing.batch([file])[0])
            else:  # writable: torch warns about sharing a read-only array
                pixels = preprocessing.resize(preprocessing.pixels(file))
                items.append(torch.from_numpy(np.require(pixels, requirements="W")))
        except DataFileError as error:
            if strict:
                raise
            skipped.append((file, str(error)))
            continue
        kept.append(index)
    if not items:
        return kept, torch.empty(0)
    return kept, torch.stack(items) if custom else preprocessing.normalize(torch.stack(items))
