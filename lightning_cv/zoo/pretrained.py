"""Pretrained models from the zoo: look entries up, load a ready classifier, or only its weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import numpy as np
import torch

from lightning_cv.data.transforms import transform_from_dict
from lightning_cv.errors import ConfigError, DataFileError, check_choice
from lightning_cv.models._registry import to_size
from lightning_cv.task import ImageClassifier
from lightning_cv.zoo.checkpoint import classifier_from_checkpoint, read_checkpoint
from lightning_cv.zoo.hub import fetch
from lightning_cv.zoo.manifest import ZooEntry, manifest_path, read_manifest

__all__ = [
    "Pretrained",
    "checkpoint_file",
    "get_entry",
    "list_entries",
    "load",
    "load_backbone_weights",
]


@dataclass(frozen=True)
class Pretrained:
    """A zoo model ready to use: the classifier (eval mode, CPU), its eval transform and classes.

    Attributes:
        model: the :class:`~lightning_cv.ImageClassifier`, mapping (B, C, H, W) to logits.
        transform: the albumentations eval pipeline: an ``(H, W, C)`` uint8 image in, the
            normalized ``(C, H, W)`` float tensor out.
        class_names: one name per output.
        entry: the manifest entry (metrics, recipe, sources...).

    Example:
        >>> pretrained = load("lenet5.mnist")  # doctest: +SKIP
        >>> pretrained.predict(digit, top_k=2)  # doctest: +SKIP
        [('7', 0.998), ('1', 0.001)]
    """

    model: ImageClassifier
    transform: A.Compose
    class_names: tuple[str, ...]
    entry: ZooEntry

    def predict(self, image: np.ndarray, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` most probable classes of one image, most probable first.

        Args:
            image: ``(H, W, C)`` (or ``(H, W)`` for one channel) uint8 pixels, with the
                entry's channel count; any size (the eval transform resizes).
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
        channels = self.entry.in_channels
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


def list_entries(manifest: str | Path | None = None) -> list[ZooEntry]:
    """Every zoo entry, sorted by name.

    Args:
        manifest: another manifest file (default: ``$LIGHTNING_CV_ZOO_MANIFEST`` or the
            package's).

    Example:
        >>> [entry.name for entry in list_entries()]  # doctest: +SKIP
        ['lenet5.mnist', 'linear.mnist']
    """
    return sorted(read_manifest(manifest), key=lambda entry: entry.name)


def get_entry(name: str, manifest: str | Path | None = None) -> ZooEntry:
    """The entry called ``name``.

    Raises:
        ConfigError: no entry of that name (the message lists the names there are).

    Example:
        >>> get_entry("lenet5.mnist").metrics.top1  # doctest: +SKIP
        99.1
    """
    entries = {entry.name: entry for entry in read_manifest(manifest)}
    check_choice("zoo entry", name, entries)
    return entries[name]


def checkpoint_file(name: str, manifest: str | Path | None = None) -> Path:
    """The verified checkpoint file of an entry (cache, bundled copy, W&B or URL).

    Raises:
        ConfigError: an unknown name.
        DataFileError: see :func:`lightning_cv.zoo.hub.fetch`.

    Example:
        >>> checkpoint_file("lenet5.mnist").name  # doctest: +SKIP
        'lenet5.mnist.ckpt'
    """
    return fetch(get_entry(name, manifest), bundled_root=manifest_path(manifest).parent)


def _checked_checkpoint(entry: ZooEntry, manifest: str | Path | None) -> dict:
    """The entry's checkpoint, read safely and matched against what the manifest states."""
    path = fetch(entry, bundled_root=manifest_path(manifest).parent)
    checkpoint = read_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    size = hparams.get("image_size")
    found = (
        hparams["backbone"],
        hparams.get("num_classes"),
        hparams.get("in_channels"),
        None if size is None else to_size(size),
    )
    stated = (entry.architecture, entry.num_classes, entry.in_channels, entry.image_size)
    if found != stated:
        raise DataFileError(
            f"zoo entry {entry.name!r}: its checkpoint holds (architecture, num_classes, "
            f"in_channels, image_size) = {found}, the manifest states {stated}"
        )
    return checkpoint


def load(name: str, manifest: str | Path | None = None) -> Pretrained:
    """Load a zoo model: fetch and verify its file, rebuild the classifier, build its transform.

    Args:
        name: an entry name, e.g. ``"lenet5.mnist"`` (see :func:`list_entries`).
        manifest: another manifest file (default: ``$LIGHTNING_CV_ZOO_MANIFEST`` or the
            package's).

    Returns:
        The :class:`Pretrained` model on the CPU, in eval mode.

    Raises:
        ConfigError: an unknown name.
        DataFileError: a file that cannot be fetched, has another sha256, would run code when
            unpickled, or does not match its entry.

    Example:
        >>> pretrained = load("lenet5.mnist")  # doctest: +SKIP
        >>> pretrained.model(torch.zeros(1, 1, 28, 28)).shape  # doctest: +SKIP
        torch.Size([1, 10])
    """
    entry = get_entry(name, manifest)
    checkpoint = _checked_checkpoint(entry, manifest)
    model = classifier_from_checkpoint(checkpoint, source=repr(entry.name))
    transform = transform_from_dict(entry.transform, source=f"zoo entry {entry.name!r}'s transform")
    return Pretrained(model, transform, entry.class_names, entry)


def load_backbone_weights(
    name: str, *, architecture: str | None = None, manifest: str | Path | None = None
) -> dict[str, torch.Tensor]:
    """The backbone's state dict of a zoo entry, for ``create_model(..., weights=name)``.

    Args:
        name: an entry name.
        architecture: the registry name the weights are for; another entry's architecture
            raises.
        manifest: another manifest file.

    Returns:
        The backbone's parameters and buffers (keys without the ``backbone.`` prefix).

    Raises:
        ConfigError: an unknown name, or weights of another architecture.
        DataFileError: as for :func:`load`.

    Example:
        >>> from lightning_cv.models import create_model
        >>> net = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
        >>> net.load_state_dict(load_backbone_weights("lenet5.mnist"))  # doctest: +SKIP
        <All keys matched successfully>
    """
    entry = get_entry(name, manifest)
    if architecture is not None and architecture != entry.architecture:
        raise ConfigError(
            f"zoo weights {name!r} are for {entry.architecture!r}, not {architecture!r}"
        )
    state = _checked_checkpoint(entry, manifest)["state_dict"]
    prefix = "backbone."
    return {
        key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)
    }
