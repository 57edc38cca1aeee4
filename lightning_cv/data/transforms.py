"""Augmentation presets from the lectures, one table for both backends; albumentations
pipelines saved to and loaded from YAML; and the checks every pipeline gets, on either backend
(albumentations or a batch pipeline).

A preset name means one augmentation, built per sample (albumentations, this module) or per
batch (kornia, :mod:`lightning_cv.data.batch_transforms`); ``tests/test_pipelines.py`` pins that
both agree in distribution. Every albumentations pipeline ends in ``Normalize`` and
``ToTensorV2`` so it maps an ``(H, W, C)`` uint8 array to a normalized ``(C, H, W)`` float tensor.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import kornia
import kornia.augmentation as K
import numpy as np
import torch
import yaml
from albumentations.pytorch import ToTensorV2
from torch import nn

from lightning_cv.data import batch_transforms
from lightning_cv.data.batch_transforms import BatchAugment, HorizontalFlip, policy_ops
from lightning_cv.errors import ConfigError

__all__ = [
    "MIRRORS",
    "PRESETS",
    "Preset",
    "build_batch_transform",
    "build_transform",
    "check_normalize",
    "load_transform",
    "mirroring_step",
    "run_checked",
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
    jitter = A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5)
    return _photo_preset(size, mean, std, jitter)


def _photo_preset(size: Size, mean: Stats, std: Stats, middle: A.BasicTransform) -> A.Compose:
    """The cifar family: pad-and-crop and flip, ``middle``, then cutout on half the samples."""
    height, width = size
    return _finish(
        [
            A.Resize(height, width),
            A.PadIfNeeded(height + 8, width + 8, border_mode=cv2.BORDER_REFLECT_101),
            A.RandomCrop(height, width),
            A.HorizontalFlip(p=0.5),
            middle,
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


def _policy_op(name: str, low: float, high: float) -> A.BasicTransform:
    """One op of :data:`~lightning_cv.data.batch_transforms.POLICY` as albumentations runs it,
    its magnitude uniform in ``[low, high]`` in kornia's units (kornia's op in a comment)."""
    zero = (0.0, 0.0)
    ops = {
        "auto_contrast": lambda: A.AutoContrast(method="pil", p=1),  # min-max per channel
        "rotate": lambda: A.Affine(rotate=(low, high), p=1),  # zero fill, as kornia
        "posterize": lambda: A.Posterize(num_bits=(int(low), max(int(low), ceil(high) - 1)), p=1),
        "solarize": lambda: A.Solarize(threshold_range=(low, high), p=1),  # invert >= threshold
        "color": lambda: A.ColorJitter(
            brightness=(1, 1), contrast=(1, 1), saturation=(low, high), hue=(0, 0), p=1
        ),
        "contrast": lambda: A.MultiplicativeNoise(multiplier=(low, high), p=1),  # x * factor
        "brightness": lambda: A.RandomBrightnessContrast(  # x + factor - 1
            brightness_limit=(low - 1, high - 1), contrast_limit=zero, p=1
        ),
        "shear_x": lambda: A.Affine(shear={"x": (low * 180, high * 180), "y": zero}, p=1),
        "shear_y": lambda: A.Affine(shear={"x": zero, "y": (low * 180, high * 180)}, p=1),
        "translate_x": lambda: A.Affine(translate_percent={"x": (low, high), "y": zero}, p=1),
        "translate_y": lambda: A.Affine(translate_percent={"x": zero, "y": (low, high)}, p=1),
    }
    return ops[name]()


def _rand_augment_op(name: str, low: float, high: float, magnitude: int) -> A.BaseCompose:
    """The op at kornia's RandAugment magnitude (out of 30): ``low + (high - low) * m / 30``,
    posterize's range run backwards, and a symmetric range's ``high * m / 30`` with either sign."""
    share = magnitude / 30
    if low == -high:
        value = high * share
        return A.OneOf([_policy_op(name, value, value), _policy_op(name, -value, -value)], p=1)
    value = high - (high - low) * share if name == "posterize" else low + (high - low) * share
    return A.OneOf([_policy_op(name, value, value)], p=1)


def randaugment(size: Size, mean: Stats, std: Stats) -> A.Compose:
    """Photos: RandAugment (Cubuk et al. 2020) between the cifar preset's crop and flip and its
    cutout, as the paper trained CIFAR-10.

    albumentations has no RandAugment, so it is composed from its ops as torchvision's is: 2 of
    the :data:`~lightning_cv.data.batch_transforms.POLICY` ops drawn per sample (``SomeOf``),
    each at magnitude 9 on kornia's 0-30 scale, as the batch path runs them.
    """
    ops = [_rand_augment_op(*op, magnitude=9) for op in policy_ops(len(mean))]
    return _photo_preset(size, mean, std, A.SomeOf(ops, n=2, p=1))


def trivialaugment(size: Size, mean: Stats, std: Stats) -> A.Compose:
    """Photos: TrivialAugment (Muller and Hutter 2021) between the cifar preset's crop and flip
    and its cutout: one :data:`~lightning_cv.data.batch_transforms.POLICY` op per sample, its
    magnitude uniform over the op's range. No magnitude to tune.
    """
    ops = [_policy_op(*op) for op in policy_ops(len(mean))]
    return _photo_preset(size, mean, std, A.SomeOf(ops, n=1, p=1))


def evaluation(size: Size, mean: Stats, std: Stats) -> A.Compose:
    """Evaluation: resize the short side to (longest target side) / 0.875, centre crop, normalize.

    Small images (32 pixels or less) are only resized, since cropping would cut the object.
    """
    if max(size) <= 32:
        return _finish([A.Resize(*size)], mean, std)
    return _finish(
        [A.SmallestMaxSize(max_size=round(max(size) / 0.875)), A.CenterCrop(*size)], mean, std
    )


@dataclass(frozen=True)
class Preset:
    """One augmentation by name, on both backends: the same intent and the same draws' laws.

    Attributes:
        sample: builds the albumentations pipeline from ``(size, mean, std)``.
        batch: builds the :class:`~lightning_cv.data.BatchAugment` from ``(size, channels)``.
    """

    sample: Callable[[Size, Stats, Stats], A.Compose]
    batch: Callable[[Size, int], BatchAugment]


PRESETS: dict[str, Preset] = {
    "digits": Preset(digits, batch_transforms.digits),
    "cifar": Preset(cifar, batch_transforms.cifar),
    "imagenet": Preset(imagenet, batch_transforms.imagenet),
    "eval": Preset(evaluation, batch_transforms.evaluation),
    "randaugment": Preset(randaugment, batch_transforms.randaugment),
    "trivialaugment": Preset(trivialaugment, batch_transforms.trivialaugment),
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
        return PRESETS[spec].sample(size, tuple(mean), tuple(std))
    if Path(spec).suffix in (".yaml", ".yml"):
        return load_transform(spec)
    raise ConfigError(
        f"unknown transform {spec!r}; expected a preset name {sorted(PRESETS)} or a .yaml file"
    )


def build_batch_transform(
    spec: str | BatchAugment, *, size: Size, channels: int = 3
) -> BatchAugment:
    """Turn a preset name or a ready :class:`~lightning_cv.data.BatchAugment` into a batch
    pipeline.

    Raises:
        ConfigError: an unknown preset name, or an albumentations YAML file (a per-sample
            pipeline, which the batch path cannot run).

    Example:
        >>> len(build_batch_transform("cifar", size=(32, 32)).steps)
        4
    """
    if isinstance(spec, BatchAugment):
        return spec
    if spec in PRESETS:
        return PRESETS[spec].batch(size, channels)
    if str(spec).endswith((".yaml", ".yml")):
        raise ConfigError(
            f"transform {spec!r} is an albumentations (per-sample) pipeline; pass "
            "pipeline='sample' (--data.pipeline sample) to use it, or give a batch preset "
            f"{sorted(PRESETS)} or a BatchAugment"
        )
    raise ConfigError(
        f"unknown batch transform {spec!r}; expected a preset name {sorted(PRESETS)} "
        "or a BatchAugment"
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
            cannot build, a pipeline that does not end in ``ToTensorV2``, or a ``Normalize``
            whose std is not > 0 (:func:`check_normalize`).
    """
    if not isinstance(data, dict) or not isinstance(data.get("transform"), dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            f"{source} holds {found}; expected an albumentations pipeline (a mapping with a "
            "'transform' entry, as written by save_transform)"
        )
    try:
        # a std of 0 is refused below by name, not by numpy's warning as Normalize inverts it
        with warnings.catch_warnings(), np.errstate(divide="ignore"):
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
    check_normalize(transform, source=source)
    return transform


# ---------------------------------------------------------------- checks of either backend

# steps that mirror an image: data whose classes change when mirrored refuses them
MIRRORS = (A.HorizontalFlip, A.VerticalFlip, A.Transpose, A.D4, A.SquareSymmetry,
           K.RandomHorizontalFlip, K.RandomVerticalFlip, HorizontalFlip)  # fmt: skip
Pipeline = A.BasicTransform | A.BaseCompose | nn.Module


def pipeline_steps(pipeline: Pipeline) -> Iterator[Any]:
    """Every step of ``pipeline``, nested ones too (``OneOf``, ``RandomApply``), the pipeline
    itself first."""
    if isinstance(pipeline, nn.Module):
        yield from pipeline.modules()
        return
    yield pipeline
    for step in getattr(pipeline, "transforms", ()):
        yield from pipeline_steps(step)


def mirroring_step(pipeline: Pipeline) -> str | None:
    """The class name of the first step of ``pipeline`` that mirrors images, else None.

    Example:
        >>> mirroring_step(A.Compose([A.Resize(8, 8), A.OneOf([A.HorizontalFlip()])]))
        'HorizontalFlip'
    """
    mirrors = (type(s).__name__ for s in pipeline_steps(pipeline) if isinstance(s, MIRRORS))
    return next(mirrors, None)


def _divisor(step: Any) -> list[float] | None:
    """The std a normalisation step divides by, per channel; None for other steps."""
    if isinstance(step, A.Normalize):
        std = step.std if step.normalization == "standard" else None
    elif isinstance(step, K.Normalize):
        std = step.flags["std"]  # kornia keeps an augmentation's arguments in `flags`
    elif isinstance(step, kornia.enhance.Normalize):
        std = step.std
    else:
        return None
    return None if std is None else np.asarray(std, dtype=float).ravel().tolist()


def check_normalize(pipeline: Pipeline, *, source: str) -> None:
    """Refuse a normalisation step whose std is not > 0: it makes pixels NaN or infinite.

    Raises:
        ConfigError: ``"eval_transform: Normalize std [0.0] divides by zero; expected std > 0
            in every channel"``.
    """
    for step in pipeline_steps(pipeline):
        std = _divisor(step)
        if std is not None and not all(value > 0 for value in std):  # NaN is not > 0 either
            raise ConfigError(
                f"{source}: {type(step).__name__} std {std} divides by zero; expected std > 0 "
                "in every channel"
            )


Traits = tuple[tuple[int, ...], str, bool]  # (C, H, W), dtype, all values finite
_TRAITS = ("shape", "dtype", "finiteness")


def _traits(image: np.ndarray | torch.Tensor) -> Traits:
    """What the model needs of an image or batch: its ``(C, H, W)``, dtype and finiteness."""
    if isinstance(image, np.ndarray):  # (H, W) or (H, W, C), as albumentations passes it on
        height, width, *channels = image.shape
        finite = not np.issubdtype(image.dtype, np.floating) or bool(np.isfinite(image).all())
        return (channels[0] if channels else 1, height, width), f"torch.{image.dtype}", finite
    return tuple(image.shape[-3:]), str(image.dtype), bool(torch.isfinite(image).all())


def _describe(trait: str, value: Any, *, batch: bool) -> str:
    if trait == "shape":
        return "(" + "B, " * batch + ", ".join(map(str, value)) + ")"
    if trait == "dtype":
        return f"dtype {value}"
    return "finite values" if value else "NaN or infinite values"


def _fault(option: str, steps: list, traits: list[Traits], expected: Traits, batch: bool) -> str:
    """The first wrong trait of the output (``""`` if none), blamed on the step that last
    changed it, or on the input when no step did."""
    for index, trait in enumerate(_TRAITS):
        got, wanted = traits[-1][index], expected[index]
        if got == wanted:
            continue
        changed = [j for j in range(1, len(traits)) if traits[j - 1][index] != got]
        where = (
            f"{option} step {changed[-1]} ({type(steps[changed[-1] - 1]).__name__})"
            if changed
            else f"{option} (no step changes the input's {trait})"
        )
        return (
            f"{where}: output {_describe(trait, got, batch=batch)} but the model expects "
            f"{_describe(trait, wanted, batch=batch)}"
        )
    return ""


def run_checked(
    option: str, steps: Sequence[Any], images: Any, *, channels: int, size: tuple[int, int],
    batch: bool,
) -> Any:  # fmt: skip
    """Run ``steps`` one by one on a first batch (``batch``, a float ``(B, C, H, W)`` tensor)
    or a first sample (an ``(H, W, C)`` uint8 array) and return the output; refuse it unless
    it is ``(channels, *size)`` float32 and finite.

    Raises:
        ConfigError: ``"train_transform step 2 (Resize): output (B, 1, 16, 16) but the model
            expects (B, 1, 28, 28)"``, naming the step that last changed the wrong trait.
    """
    traits = [_traits(images)]
    for step in steps:
        images = step(images) if batch else step(image=images)["image"]
        traits.append(_traits(images))
    expected = ((channels, *size), str(torch.float32), True)
    fault = _fault(option, list(steps), traits, expected, batch)
    if fault:
        raise ConfigError(fault)
    return images
