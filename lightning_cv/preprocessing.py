"""What a checkpoint needs to turn an image into its model's input, recorded in the checkpoint.

:class:`Preprocessing` is written by every ``fit`` (``ClassificationTask.on_save_checkpoint``)
under :data:`CHECKPOINT_KEY`, as plain data (``torch.load(weights_only=True)`` reads it). It
maps a path, a PIL image or uint8 pixels to the normalised ``(B, C, H, W)`` batch the model
takes, as the data set's evaluation pipeline does, with PIL, OpenCV and torch only: no
Lightning, no albumentations (but for a custom evaluation pipeline, stored as albumentations'
own serialisation).

Example:
    >>> record = Preprocessing(in_channels=1, image_size=(28, 28), mean=(0.1307,),
    ...                        std=(0.3081,), class_names=tuple("0123456789"))
    >>> record.batch([np.zeros((40, 30), np.uint8)]).shape
    torch.Size([1, 1, 28, 28])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.manifest import TTA

__all__ = ["CHECKPOINT_KEY", "CROP_FRACTION", "ImageInput", "Preprocessing", "to_pixels"]

CHECKPOINT_KEY = "lightning_cv_preprocessing"
# the eval preset's centre crop (transforms.evaluation): shorter side to size / 0.875, then crop
CROP_FRACTION = 0.875
SMALL_IMAGE = 32  # at most this many pixels a side, the eval preset only resizes
ImageInput = str | Path | Image.Image | np.ndarray

Positive = Annotated[float, Field(gt=0)]


class Preprocessing(BaseModel):
    """How images become the model's input, and what its outputs mean.

    Attributes:
        in_channels: 1 (PIL mode ``L``) or 3 (``RGB``).
        image_size: ``(height, width)`` the model takes.
        mean: per-channel mean of pixels in [0, 1], subtracted.
        std: per-channel standard deviation, divided by.
        crop_fraction: None: resize to ``image_size``; else resize the shorter side to
            ``max(image_size) / crop_fraction`` and crop the centre (the ``eval`` preset for
            images larger than 32 pixels).
        class_names: one name per output.
        tta: the test-time augmentation the run evaluated with, or None.
        eval_pipeline: a custom evaluation pipeline as ``albumentations.to_dict`` wrote it
            (then it replaces the resize and normalisation, and needs albumentations).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    in_channels: int = Field(ge=1, le=3)
    image_size: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]]
    mean: tuple[float, ...]
    std: tuple[Positive, ...]
    crop_fraction: Annotated[float, Field(gt=0, le=1)] | None = None
    class_names: tuple[str, ...] = Field(min_length=1)
    tta: TTA | None = None
    eval_pipeline: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_statistic_per_channel(self) -> Preprocessing:
        if self.in_channels == 2:
            raise ValueError("in_channels must be 1 or 3")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(
                f"mean and std need one value per channel ({self.in_channels}), got "
                f"{len(self.mean)} and {len(self.std)}"
            )
        return self

    @classmethod
    def for_eval_preset(cls, *, image_size: tuple[int, int], **facts: Any) -> Preprocessing:
        """The record of the ``eval`` preset (``transforms.evaluation``) at ``image_size``."""
        crop = CROP_FRACTION if max(image_size) > SMALL_IMAGE else None
        return cls(image_size=image_size, crop_fraction=crop, **facts)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], *, source: str) -> Preprocessing:
        """The record a checkpoint holds.

        Raises:
            ConfigError: none (a checkpoint written before lightning-cv recorded it), or a
                record that does not validate; the message names ``source`` and the fix.
        """
        record = checkpoint.get(CHECKPOINT_KEY)
        if record is None:
            raise ConfigError(
                f"{source} has no preprocessing record ('{CHECKPOINT_KEY}'): it was written "
                "before lightning-cv saved one; retrain it, or add it with "
                "lightning_cv.zoo.register.add_preprocessing (zoo/README.md)"
            )
        try:
            return cls.model_validate(record)
        except ValidationError as error:
            first = error.errors()[0]
            key = ".".join(map(str, first["loc"])) or "the record"
            raise ConfigError(
                f"{source}: preprocessing record's {key} is invalid ({first['msg']}), got "
                f"{first['input']!r}"
            ) from None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image the model takes."""
        return (self.in_channels, *self.image_size)

    @property
    def eval_transform(self) -> str:
        """``eval`` (the preset this record states) or ``custom`` (:attr:`eval_pipeline`)."""
        return "eval" if self.eval_pipeline is None else "custom"

    def to_checkpoint(self) -> dict[str, Any]:
        """Plain lists, numbers and strings: what ``weights_only`` loading accepts."""
        return self.model_dump(mode="json")

    def pixels(self, image: ImageInput) -> np.ndarray:
        """``image`` as ``(H, W, C)`` uint8 in the model's channels (:func:`to_pixels`)."""
        return to_pixels(image, self.in_channels)

    def resize(self, pixels: np.ndarray) -> np.ndarray:
        """``(H, W, C)`` uint8 at ``image_size``, as albumentations' ``Resize`` or
        ``SmallestMaxSize`` + ``CenterCrop`` compute it (``cv2.INTER_LINEAR``, same sizes)."""
        height, width = self.image_size
        if self.crop_fraction is not None:
            scale = round(max(height, width) / self.crop_fraction) / min(pixels.shape[:2])
            shorter = tuple(max(1, round(side * scale)) for side in pixels.shape[:2])
            pixels = _cv2_resize(pixels, shorter)
            top, left = (
                (have - want) // 2
                for have, want in zip(pixels.shape[:2], (height, width), strict=True)
            )
            return pixels[top : top + height, left : left + width]
        return _cv2_resize(pixels, (height, width))

    def batch(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """The model's input: ``(B, C, H, W)`` float32, resized and normalised.

        Raises:
            ConfigError: an image that is not a path, PIL image or ``(H, W[, C])`` uint8 array.
            DataFileError: a file that does not exist or cannot be decoded.
        """
        if self.eval_pipeline is not None:
            return self._custom_batch(images)
        pixels = np.stack([self.resize(self.pixels(image)) for image in images])
        return self.normalize(torch.from_numpy(pixels))

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, C)`` uint8 -> ``(B, C, H, W)`` float32, by albumentations' lookup table
        (``Normalize(max_pixel_value=255)`` on uint8): ``(x - 255 mean) / (255 std)``."""
        mean, std = (
            torch.tensor(self.mean, dtype=torch.float64),
            torch.tensor(self.std, dtype=torch.float64),
        )
        table = (torch.arange(256, dtype=torch.float64)[None] - 255 * mean[:, None]) / (
            255 * std[:, None]
        )
        offsets = torch.arange(self.in_channels) * 256  # channel c reads row c of the table
        floats = table.float().flatten()[pixels.long() + offsets]
        return floats.permute(0, 3, 1, 2).contiguous()

    def _custom_batch(self, images: Sequence[ImageInput]) -> torch.Tensor:
        import albumentations as A  # only for a custom pipeline

        pipeline = A.from_dict(self.eval_pipeline)
        return torch.stack([pipeline(image=self.pixels(image))["image"] for image in images])


def _cv2_resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, C)`` at ``size`` (height, width), bilinear as albumentations calls OpenCV."""
    if pixels.shape[:2] == size:
        return pixels
    resized = cv2.resize(pixels, size[::-1], interpolation=cv2.INTER_LINEAR)
    return resized.reshape(*size, pixels.shape[2])  # OpenCV drops a single channel's axis


def to_pixels(image: ImageInput, channels: int) -> np.ndarray:
    """A path, PIL image or ``(H, W[, C])`` uint8 array as ``(H, W, channels)`` uint8, converted
    as the data sets convert files: 16/32-bit grey scaled to 0..255, alpha dropped, colour to
    grey by ITU-R 601-2 luma (PIL ``L``).

    Raises:
        ConfigError: anything else, naming its type, dtype and shape.
        DataFileError: a path that is no file, or a file PIL cannot decode.
    """
    if isinstance(image, str | Path):
        return _read(Path(image), channels)
    if isinstance(image, Image.Image):
        return _pil_pixels(image, channels)
    array = np.asarray(image) if isinstance(image, np.ndarray) else None
    if (
        array is None
        or array.dtype != np.uint8
        or array.ndim not in (2, 3)
        or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4))
    ):
        kind = (
            f"{array.dtype} array of shape {array.shape}"
            if array is not None
            else type(image).__name__
        )
        raise ConfigError(
            f"an image must be a path, a PIL image or an (H, W), (H, W, 1), (H, W, 3) or "
            f"(H, W, 4) uint8 array, got a {kind}"
        )
    grey = array.ndim == 2 or array.shape[-1] == 1
    return _pil_pixels(Image.fromarray(array.reshape(array.shape[:2]) if grey else array), channels)


def _read(path: Path, channels: int) -> np.ndarray:
    if not path.is_file():
        raise DataFileError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as image:
            return _pil_pixels(image, channels)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataFileError(
            f"{str(path)!r}: cannot decode image ({error}); replace or delete the file"
        ) from error


def _pil_pixels(image: Image.Image, channels: int) -> np.ndarray:
    target = "L" if channels == 1 else "RGB"
    if image.mode.startswith("I"):  # 16/32-bit integer grey: 0..65535 -> 0..255
        pixels = np.clip(np.asarray(image, dtype=np.float64), 0, 65535) / 257
        image = Image.fromarray(np.rint(pixels).astype(np.uint8))
    array = np.asarray(image if image.mode == target else image.convert(target))
    return array[..., None] if array.ndim == 2 else array  # (H, W) -> (H, W, 1)
