"""Test-time augmentation without Lightning: the views of a batch, and a model's class
probabilities averaged over them (the TestTimeAugmentation callback and ``zoo.load`` share it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from lightning_cv.errors import ConfigError

__all__ = ["PADDINGS", "averaged_probabilities", "tta_views"]

PADDINGS = {"reflect": "reflect", "zeros": "constant"}


def _shift(images: torch.Tensor, dy: int, dx: int, padding: str) -> torch.Tensor:
    """``images`` moved ``dy`` pixels down and ``dx`` right; the uncovered border is padded."""
    s = max(abs(dy), abs(dx))
    padded = F.pad(images, (s, s, s, s), mode=PADDINGS[padding])
    height, width = images.shape[-2:]
    return padded[..., s - dy : s - dy + height, s - dx : s - dx + width]


def tta_views(
    images: torch.Tensor, *, flip: bool, shifts: int, padding: str = "reflect"
) -> list[torch.Tensor]:
    """The views averaged: the images, their mirror (``flip``), and the images moved by
    ``shifts`` pixels right, left, down and up (``shifts > 0``).

    Args:
        images: ``(B, C, H, W)``, normalised (so ``"zeros"`` pads with the data's mean).
        flip: add the horizontal mirror.
        shifts: pixels of the four translations; 0 for none.
        padding: ``"reflect"`` or ``"zeros"``.

    Raises:
        ConfigError: ``shifts`` not below the image's shorter side.

    Example:
        >>> len(tta_views(torch.zeros(2, 3, 8, 8), flip=True, shifts=1))
        6
    """
    if shifts and shifts >= min(images.shape[-2:]):
        raise ConfigError(
            f"TestTimeAugmentation: shifts={shifts} needs images larger than {shifts} pixels, "
            f"got {tuple(images.shape[-2:])}"
        )
    views = [images]
    if flip:
        views.append(images.flip(-1))
    if shifts:
        moves = ((0, shifts), (0, -shifts), (shifts, 0), (-shifts, 0))
        views += [_shift(images, dy, dx, padding) for dy, dx in moves]
    return views


def averaged_probabilities(
    model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, *, flip: bool,
    shifts: int, padding: str = "reflect",
) -> torch.Tensor:  # fmt: skip
    """``(B, num_classes)``: the mean over :func:`tta_views` of the softmax of ``model``'s
    scores (float32, whatever precision the model ran in).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
        >>> averaged_probabilities(model, torch.zeros(2, 1, 8, 8), flip=True, shifts=1).shape
        torch.Size([2, 3])
    """
    views = tta_views(images, flip=flip, shifts=shifts, padding=padding)
    return torch.stack([model(view).softmax(dim=1).float() for view in views]).mean(0)
