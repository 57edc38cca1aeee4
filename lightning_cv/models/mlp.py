"""Multilayer perceptron on flattened pixels.

The default is the 300-hidden-unit network of LeCun et al. 1998, "Gradient-based learning
applied to document recognition" (4.7% test error on MNIST): 784 -> 300 -> 10.
"""

import torch
from torch import nn

from lightning_cv._sizes import to_size
from lightning_cv.errors import ConfigError, check_choice, check_range
from lightning_cv.models._base import Backbone
from lightning_cv.models._registry import register_model

__all__ = ["MLP"]

_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


@register_model("mlp")
class MLP(Backbone):
    """Fully connected network: hidden layers (``features``), then a linear ``head``.

    Each hidden layer is Linear -> activation -> Dropout.

    Args:
        num_classes: number of classes.
        in_channels: image channels, 1 for greyscale and 3 for RGB.
        image_size: input side (int) or (height, width).
        hidden_sizes: width of each hidden layer, input side first.
        activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"``.
        dropout: drop probability after each hidden activation, in [0, 1).

    Raises:
        ConfigError: empty or non-positive ``hidden_sizes``, unknown ``activation``, or
            ``dropout`` outside [0, 1).

    Example:
        >>> model = MLP(num_classes=10, in_channels=1, image_size=28, hidden_sizes=(300,))
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int | tuple[int, int],
        hidden_sizes: tuple[int, ...] = (300,),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not (
            isinstance(hidden_sizes, (list, tuple))
            and hidden_sizes
            and all(isinstance(size, int) and size > 0 for size in hidden_sizes)
        ):
            raise ConfigError(
                f"hidden_sizes must be a non-empty sequence of positive ints, got {hidden_sizes!r}"
            )
        check_choice("activation", activation, _ACTIVATIONS)
        check_range("dropout", dropout, "[0, 1)")
        self.num_classes = num_classes
        height, width = to_size(image_size)
        dim = in_channels * height * width
        layers = []
        for size in hidden_sizes:
            # (B, dim) -> (B, size); Dropout(0) is kept so state-dict keys do not depend on it
            layers += [nn.Linear(dim, size), _ACTIVATIONS[activation](), nn.Dropout(dropout)]
            dim = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden layer: (B, C, H, W) -> (B, hidden_sizes[-1])."""
        return self.features(x.flatten(1))
