"""Linear classifier: softmax regression on raw pixels, ``scores = W x + b``.

The baseline of LeCun et al. 1998, "Gradient-based learning applied to document recognition"
(12.0% test error on MNIST), and the linear classifier of Stanford's CS231n. Row ``c`` of ``W``
is a template for class ``c``, one weight per pixel.
"""

import torch
from torch import nn

from lightning_cv._sizes import to_size
from lightning_cv.models._base import Backbone
from lightning_cv.models._registry import register_model

__all__ = ["LinearClassifier"]


@register_model("linear")
class LinearClassifier(Backbone):
    """Softmax regression: one ``nn.Linear`` (attribute ``head``) from pixels to class scores.

    Args:
        num_classes: number of classes.
        in_channels: image channels, 1 for greyscale and 3 for RGB.
        image_size: input side (int) or (height, width).

    Example:
        >>> model = LinearClassifier(num_classes=10, in_channels=1, image_size=(28, 28))
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        >>> model.head.weight.reshape(10, 1, 28, 28).shape  # one template per class
        torch.Size([10, 1, 28, 28])
    """

    def __init__(
        self, *, num_classes: int, in_channels: int, image_size: int | tuple[int, int]
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.image_size = to_size(image_size)
        height, width = self.image_size
        self.head = nn.Linear(in_channels * height * width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten the pixels: (B, C, H, W) -> (B, C*H*W)."""
        return x.flatten(1)
