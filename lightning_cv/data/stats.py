"""Per-channel pixel statistics and class counts."""

from __future__ import annotations

import numpy as np

__all__ = ["channel_stats", "class_counts"]


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and standard deviation per channel of ``(N, H, W, C)`` uint8 images, in [0, 1].

    Example:
        >>> channel_stats(np.full((2, 4, 4, 1), 255, dtype=np.uint8))
        ((1.0,), (0.0,))
    """
    pixels = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return tuple(pixels.mean(0).round(4).tolist()), tuple(pixels.std(0).round(4).tolist())


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """How many samples each class has."""
    return np.bincount(np.asarray(labels), minlength=num_classes)
