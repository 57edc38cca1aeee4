"""What every zoo architecture shares: the feature/head split and the checks of its options;
the head and the body (the rest) of any backbone, for freezing and fine-tuning."""

from __future__ import annotations

import torch
from torch import nn

from lightning_cv.errors import ConfigError, check_range

__all__ = ["Backbone", "body_modules", "freeze_body", "head_of"]


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


def head_of(backbone: nn.Module) -> nn.Module:
    """The backbone's last layer, from ``get_classifier()`` (every registry model has it).

    Raises:
        ConfigError: a backbone without ``get_classifier()``.
    """
    if not hasattr(backbone, "get_classifier"):
        raise ConfigError(
            "freezing needs a backbone with get_classifier() (every registry model has one), "
            f"not a {type(backbone).__name__}"
        )
    return backbone.get_classifier()


def freeze_body(backbone: nn.Module) -> None:
    """Every parameter but the head's stops training."""
    backbone.requires_grad_(False)
    head_of(backbone).requires_grad_(True)


def body_modules(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's leaf modules outside its head: what freezing freezes."""
    head = {id(module) for module in head_of(backbone).modules()}
    return [m for m in backbone.modules() if id(m) not in head and not list(m.children())]
