"""AlexNet: Krizhevsky, Sutskever and Hinton 2012, "ImageNet classification with deep CNNs".

Five convolutions and three fully connected layers with dropout, in two variants:

* ``"imagenet"`` is torchvision's ``AlexNet`` module for module (the 64-192-384-256-256 channels
  of Krizhevsky 2014, "One weird trick for parallelizing convolutional neural networks", and no
  local response normalisation), so torchvision state dicts load into it unchanged.
* ``"small"`` is the same structure for 32x32 images such as CIFAR-10: 3x3 convolutions,
  2x2 max pools after conv1, conv2 and conv5, narrower fully connected layers, and He
  initialisation (it has no normalisation layers to keep the signal's scale).
"""

import itertools

import torch
from torch import nn

from lightning_cv._sizes import to_size
from lightning_cv.errors import ConfigError, check_choice, check_range
from lightning_cv.models._base import Backbone
from lightning_cv.models._registry import register_model

__all__ = ["AlexNet"]

_VARIANTS = ("imagenet", "small")
_HIDDEN_SIZES = {"imagenet": 4096, "small": 1024}
_SMALL_BELOW = 64  # variant=None picks "small" when the shorter side is below this


def _imagenet_features(in_channels: int) -> nn.Sequential:
    """torchvision's AlexNet convolutions, same module indices."""
    return nn.Sequential(
        # (B, 3, 224, 224) -> (B, 64, 55, 55)
        nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),  # -> (B, 64, 27, 27)
        nn.Conv2d(64, 192, kernel_size=5, padding=2),  # -> (B, 192, 27, 27)
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),  # -> (B, 192, 13, 13)
        nn.Conv2d(192, 384, kernel_size=3, padding=1),  # -> (B, 384, 13, 13)
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),  # -> (B, 256, 13, 13)
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),  # -> (B, 256, 13, 13)
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),  # -> (B, 256, 6, 6)
    )


def _small_features(in_channels: int) -> nn.Sequential:
    """The same five convolutions with 3x3 kernels and 2x2 pools, same module indices."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=3, padding=1),  # (B, 3, 32, 32) -> (B, 64, 32, 32)
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2),  # -> (B, 64, 16, 16)
        nn.Conv2d(64, 192, kernel_size=3, padding=1),  # -> (B, 192, 16, 16)
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2),  # -> (B, 192, 8, 8)
        nn.Conv2d(192, 384, kernel_size=3, padding=1),  # -> (B, 384, 8, 8)
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),  # -> (B, 256, 8, 8)
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),  # -> (B, 256, 8, 8)
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2),  # -> (B, 256, 4, 4)
    )


def _he_init(model: nn.Module, head: nn.Linear) -> None:
    """He et al. 2015 initialisation for the ReLU layers, a small normal one for the head.

    Without normalisation layers, PyTorch's default initialisation shrinks the signal at every
    layer: the small AlexNet's logits start near zero and SGD sat at chance (loss ln 10) for a
    whole CIFAR-10 epoch.
    """
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            nn.init.zeros_(layer.bias)
            if layer is head:
                nn.init.normal_(layer.weight, std=0.01)
            else:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")


def _feature_side(features: nn.Sequential, side: int) -> int:
    """Output side of ``features`` for one input side, from each layer's kernel, stride, padding."""
    for layer in features:
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            kernel, stride, padding = (
                value if isinstance(value, int) else value[0]
                for value in (layer.kernel_size, layer.stride, layer.padding)
            )
            side = (side + 2 * padding - kernel) // stride + 1
    return side


@register_model("alexnet")
class AlexNet(Backbone):
    """AlexNet with torchvision's attributes: ``features``, ``avgpool``, ``classifier``.

    ``classifier[-1]`` is the head; ``forward_features`` returns its input (the 4096-d vector
    of the imagenet variant, ``hidden_size``-d for the small one).

    Args:
        num_classes: number of classes.
        in_channels: image channels; only the first convolution depends on it.
        image_size: input side (int) or (height, width); at least 63 pixels per side for
            ``"imagenet"`` and 8 for ``"small"``.
        variant: ``"imagenet"`` or ``"small"``; None picks ``"small"`` when the shorter side
            is below 64 pixels, else ``"imagenet"``.
        dropout: drop probability before the first two fully connected layers, in [0, 1).
        hidden_size: width of the two hidden fully connected layers; None means 4096 for
            ``"imagenet"`` (torchvision's layout) and 1024 for ``"small"``.

    Raises:
        ConfigError: unknown ``variant``, ``dropout`` outside [0, 1), ``hidden_size`` below 1,
            or an image side too small for the variant.

    Example:
        >>> model = AlexNet(num_classes=10, in_channels=3, image_size=32)
        >>> model.variant, model.forward_features(torch.zeros(2, 3, 32, 32)).shape
        ('small', torch.Size([2, 1024]))
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: int | tuple[int, int],
        variant: str | None = None,
        dropout: float = 0.5,
        hidden_size: int | None = None,
    ) -> None:
        super().__init__()
        height, width = to_size(image_size)
        if variant is None:
            variant = "small" if min(height, width) < _SMALL_BELOW else "imagenet"
        check_choice("variant", variant, _VARIANTS)
        check_range("dropout", dropout, "[0, 1)")
        if hidden_size is not None:
            check_range("hidden_size", hidden_size, ">= 1")
        hidden = hidden_size or _HIDDEN_SIZES[variant]
        self.num_classes = num_classes
        self.variant = variant
        small = variant == "small"
        self.features = _small_features(in_channels) if small else _imagenet_features(in_channels)
        min_side = next(s for s in itertools.count(1) if _feature_side(self.features, s) >= 1)
        if min(height, width) < min_side:
            raise ConfigError(
                f"alexnet variant {variant!r} needs image_size >= {min_side}x{min_side}, "
                f"got {height}x{width}"
            )
        if small:
            self.avgpool = nn.Identity()  # no parameters, so the state-dict keys stay the same
            flat = 256 * _feature_side(self.features, height) * _feature_side(self.features, width)
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))  # (B, 256, h, w) -> (B, 256, 6, 6)
            flat = 256 * 6 * 6
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(flat, hidden),  # (B, 9216) -> (B, 4096); small at 32x32: 4096 -> 1024
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),  # the head: (B, hidden) -> (B, num_classes)
        )
        if small:  # the imagenet variant keeps torchvision's initialisation
            _he_init(self, head=self.classifier[-1])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Input of the head: (B, C, H, W) -> (B, hidden)."""
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[:-1](x)

    def get_classifier(self) -> nn.Linear:
        """``classifier[-1]``, where torchvision keeps it."""
        return self.classifier[-1]

    def _set_classifier(self, layer: nn.Linear) -> None:
        self.classifier[-1] = layer
