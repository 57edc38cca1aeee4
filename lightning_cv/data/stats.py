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
    channels = images.reshape(-1, images.shape[-1])
    # a histogram of the 256 grey levels per channel: exact, and no float copy of the data
    counts = np.stack(
        [np.bincount(channels[:, c], minlength=256) for c in range(channels.shape[1])]
    )
    levels = np.arange(256) / 255.0
    mean = counts @ levels / counts.sum(1)
    std = np.sqrt(counts @ levels**2 / counts.sum(1) - mean**2)
    return tuple(mean.round(4).tolist()), tuple(std.round(4).tolist())


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """How many samples each class has."""
    return np.bincount(np.asarray(labels), minlength=num_classes)
