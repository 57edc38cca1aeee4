"""Albumentations pipelines: named presets from the lectures, saved to and loaded from YAML.

Every pipeline ends in ``Normalize`` and ``ToTensorV2`` so it maps an ``(H, W, C)`` uint8
array to a normalized ``(C, H, W)`` float tensor.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from lightning_cv.errors import ConfigError

__all__ = ["PRESETS", "build_transform", "load_transform", "save_transform"]

Size = tuple[int, int]
Stats = Sequence[float]


def _finish(steps: list, mean: Stats, std: Stats) -> A.Compose:
    return A.Compose([*steps, A.Normalize(mean=mean, std=std, max_pixel_value=255.0), ToTensorV2()])


def digits(size: Size, mean: Stats, std: Stats) -> A.Compose:
    """Digits and letters: small shifts, rotations and elastic distortion, never flips.

    A flipped 6 reads as a 9, so mirroring would teach the model wrong labels.
    """
    return _finish(
        [
            A.Resize(*size),
            A.Affine(scale=(0.9, 1.1), translate_percent=(-0.08, 0.08), rotate=(-10, 10), p=0.8),
            A.ElasticTransform(alpha=size[0] * 1.2, sigma=size[0] / 7, p=0.2),
        ],
        mean,
        std,
    )


def cifar(size: Size, mean: Stats, std: Stats) -> A.Compose:
    """CIFAR-like photos: pad-and-crop, horizontal flip, colour jitter and cutout.

    Brightness/contrast jitter and ``Erasing`` (one square of 1/16 of the image, as in
    cutout) cost a third of ``ColorJitter`` and ``CoarseDropout`` per 32x32 image.
    """
    height, width = size
    return _finish(
        [
            A.Resize(height, width),
            A.PadIfNeeded(height + 8, width + 8, border_mode=cv2.BORDER_REFLECT_101),
            A.RandomCrop(height, width),
            A.HorizontalFlip(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
            A.Erasing(scale=(1 / 16, 1 / 16), ratio=(1.0, 1.0), fill=0, p=0.5),
        ],
        mean,
        std,
    )


def imagenet(size: Size, mean: Stats, std: Stats) -> A.Compose:
    """ImageNet-like photos: multi-scale RandomResizedCrop, flip and colour jitter."""
    return _finish(
        [
            A.RandomResizedCrop(size=size, scale=(0.08, 1.0)),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.0, p=0.8),
        ],
        mean,
        std,
    )


def evaluation(size: Size, mean: Stats, std: Stats) -> A.Compose:
    """Evaluation: resize the short side to (longest target side) / 0.875, centre crop, normalize.

    Small images (32 pixels or less) are only resized, since cropping would cut the object.
    """
    if max(size) <= 32:
        return _finish([A.Resize(*size)], mean, std)
    return _finish(
        [A.SmallestMaxSize(max_size=round(max(size) / 0.875)), A.CenterCrop(*size)], mean, std
    )


PRESETS: dict[str, Callable[[Size, Stats, Stats], A.Compose]] = {
    "digits": digits,
    "cifar": cifar,
    "imagenet": imagenet,
    "eval": evaluation,
}


def build_transform(
    spec: str | Path | A.Compose, *, size: Size, mean: Stats, std: Stats
) -> A.Compose:
    """Turn a preset name, a YAML file or a ready ``Compose`` into a pipeline.

    Raises:
        ConfigError: an unknown preset name or a missing YAML file.

    Example:
        >>> pipeline = build_transform("digits", size=(28, 28), mean=(0.5,), std=(0.5,))
    """
    if isinstance(spec, A.Compose):
        return spec
    if isinstance(spec, str) and spec in PRESETS:
        return PRESETS[spec](size, tuple(mean), tuple(std))
    if Path(spec).suffix in (".yaml", ".yml"):
        return load_transform(spec)
    raise ConfigError(
        f"unknown transform {spec!r}; expected a preset name {sorted(PRESETS)} or a .yaml file"
    )


def save_transform(transform: A.Compose, path: str | Path) -> None:
    """Write ``transform`` as albumentations YAML."""
    A.save(transform, str(path), data_format="yaml")


def load_transform(path: str | Path) -> A.Compose:
    """Read a pipeline written by :func:`save_transform` (or by ``albumentations.save``)."""
    if not Path(path).is_file():
        raise ConfigError(f"transform file {str(path)!r} does not exist")
    with warnings.catch_warnings():
        # albumentations 2.0 writes PadIfNeeded's derived `padding` but does not take it back
        warnings.filterwarnings("ignore", r"Argument\(s\) 'padding' .*PadIfNeeded")
        return A.load(str(path), data_format="yaml")
