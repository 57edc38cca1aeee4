"""Albumentations pipelines: named presets from the lectures, saved to and loaded from YAML.

Every pipeline ends in ``Normalize`` and ``ToTensorV2`` so it maps an ``(H, W, C)`` uint8
array to a normalized ``(C, H, W)`` float tensor.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import albumentations as A
import cv2
import yaml
from albumentations.pytorch import ToTensorV2

from lightning_cv.errors import ConfigError

__all__ = [
    "PRESETS",
    "build_transform",
    "load_transform",
    "save_transform",
    "transform_from_dict",
]

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


def _first_problem(error: Exception) -> str:
    """One line from albumentations' error: its parameter schema (pydantic) says which
    parameter and why over several lines, which it re-raises as a plain ValueError."""
    text = str(error)
    schema = re.match(
        r"\d+ validation errors? for \w+\n(\S+)\n\s+(.+?) \[.*?input_value=([^,\]]+)", text
    )
    if schema:
        field, problem, value = schema.groups()
        return f"invalid parameter {field}={value}: {problem}"
    first_line = text.splitlines()[0] if text else type(error).__name__
    return f"not a valid albumentations pipeline: {first_line}"


def save_transform(transform: A.Compose, path: str | Path) -> None:
    """Write ``transform`` as albumentations YAML."""
    A.save(transform, str(path), data_format="yaml")


def load_transform(path: str | Path) -> A.Compose:
    """Read a pipeline written by :func:`save_transform` (or by ``albumentations.save``).

    Raises:
        ConfigError: a missing file, YAML that is not a pipeline (a tag such as
            ``!!python/object``, a list or an empty file, an unknown transform, an invalid
            parameter), or a pipeline that does not end in ``ToTensorV2``.
    """
    name = repr(str(path))
    if not Path(path).is_file():
        raise ConfigError(f"transform file {name} does not exist")
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.constructor.ConstructorError as error:
        raise ConfigError(
            f"transform file {name}: YAML tags are not allowed ({error.problem}); expected a "
            "pipeline written by save_transform"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"transform file {name} is not valid YAML: {error}") from None
    return transform_from_dict(data, source=f"transform file {name}")


def transform_from_dict(data: object, *, source: str) -> A.Compose:
    """Build a pipeline from ``A.to_dict`` data, checked: one line names what is wrong.

    Args:
        data: the parsed mapping (``{"__version__": ..., "transform": {...}}``).
        source: what it came from, for messages (a file, a zoo entry).

    Raises:
        ConfigError: not a mapping with a ``transform`` mapping, a transform albumentations
            cannot build, or a pipeline that does not end in ``ToTensorV2``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("transform"), dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            f"{source} holds {found}; expected an albumentations pipeline (a mapping with a "
            "'transform' entry, as written by save_transform)"
        )
    try:
        with warnings.catch_warnings():
            # albumentations 2.0 writes PadIfNeeded's derived `padding` but does not take it back
            warnings.filterwarnings("ignore", r"Argument\(s\) 'padding' .*PadIfNeeded")
            transform = A.from_dict(data)
    except KeyError as error:  # albumentations looks the class name up in its registry
        raise ConfigError(
            f"{source}: unknown transform {error.args[0]!r}; expected an albumentations class name"
        ) from None
    except (ValueError, TypeError, AttributeError) as error:
        raise ConfigError(f"{source}: {_first_problem(error)}") from None
    steps = getattr(transform, "transforms", [])
    if not isinstance(transform, A.Compose) or not steps or not isinstance(steps[-1], ToTensorV2):
        raise ConfigError(
            f"{source} does not end in ToTensorV2; a pipeline must map an image to a tensor "
            "(end it with Normalize and ToTensorV2)"
        )
    return transform
