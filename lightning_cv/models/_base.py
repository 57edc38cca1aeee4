"""What every zoo architecture shares: the feature/head split and the checks of its options."""

from __future__ import annotations

import torch
from torch import nn

from lightning_cv.errors import check_range

__all__ = ["Backbone"]


class Backbone(nn.Module):
    """Base class: ``forward = forward_head(forward_features(x))``; the head is one ``nn.Linear``.

    Subclasses build ``self.head`` (or override :meth:`get_classifier` and
    :meth:`_set_classifier` where the layout is fixed, as in AlexNet) and implement
    :meth:`forward_features`.
    """

    num_classes: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the head: (B, C, H, W) -> (B, D)."""
        raise NotImplementedError

    def get_classifier(self) -> nn.Linear:
        """The last layer, mapping features to class scores."""
        return self.head

    def _set_classifier(self, layer: nn.Linear) -> None:
        self.head = layer

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Class scores: (B, D) -> (B, num_classes)."""
        return self.get_classifier()(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: (B, C, H, W) -> (B, num_classes)."""
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a freshly initialised one with ``num_classes`` outputs.

        The new head keeps the old one's device and dtype (for fine-tuning on new classes).

        Raises:
            ConfigError: ``num_classes`` is below 1.
        """
        check_range("num_classes", num_classes, ">= 1")
        old = self.get_classifier().weight
        self._set_classifier(
            nn.Linear(old.shape[1], num_classes, device=old.device, dtype=old.dtype)
        )
        self.num_classes = num_classes
