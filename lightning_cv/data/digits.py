"""scikit-learn's handwritten digits: 1,797 real 8x8 scans with 16 grey levels, no download.

The UCI "Optical Recognition of Handwritten Digits" test set, shipped inside scikit-learn.
"""

from __future__ import annotations

from functools import cached_property

import cv2
import numpy as np
from sklearn.datasets import load_digits

from lightning_cv.data.datamodule import ImageDataModule, check_batch_fits
from lightning_cv.data.splits import split_indices
from lightning_cv.data.stats import channel_stats
from lightning_cv.errors import ConfigError

__all__ = ["DigitsDataModule"]

TEST_FRACTION = 0.2
TEST_SEED = 0  # the test split never moves, whatever split_seed the user picks


class DigitsDataModule(ImageDataModule):
    """The embedded default data set: digits upscaled to ``image_size``.

    A fixed stratified 20% test split (360 images) and a seeded validation share of the rest.

    Args:
        image_size: side the 8x8 scans are resized to (bicubic), e.g. 28 for LeNet-5.
        **kwargs: the :class:`ImageDataModule` options.

    Example:
        >>> data = DigitsDataModule(image_size=28, batch_size=32)
        >>> data.num_classes, data.in_channels
        (10, 1)
    """

    allows_flip = False

    num_classes = 10
    class_names = tuple(str(digit) for digit in range(10))
    in_channels = 1
    default_train_transform = "digits"

    def __init__(self, image_size: int = 28, **kwargs) -> None:
        if image_size < 8:
            raise ConfigError(f"image_size must be >= 8 (the scans are 8x8), got {image_size}")
        super().__init__(**kwargs)
        self.image_size = image_size
        check_batch_fits(self)  # before the scans are resized to it
        self.mean, self.std = channel_stats(self._images[self._split["train"]])

    @cached_property
    def _images(self) -> np.ndarray:
        """All 1,797 scans as ``(N, size, size, 1)`` uint8, 16 grey levels stretched to 0..255."""
        scans = np.rint(load_digits().images * (255 / 16)).astype(np.uint8)
        size = (self.image_size, self.image_size)
        resized = [cv2.resize(scan, size, interpolation=cv2.INTER_CUBIC) for scan in scans]
        return np.stack(resized)[..., None]

    @cached_property
    def _split(self) -> dict[str, np.ndarray]:
        labels = load_digits().target
        train, test = split_indices(labels, fraction=TEST_FRACTION, seed=TEST_SEED)
        return {"train": train, "test": test, "labels": labels}

    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        indices = self._split[split]
        return self._images[indices], self._split["labels"][indices]
