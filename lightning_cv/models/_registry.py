"""Name -> builder registry for the zoo architectures (timm's `_registry.py` in miniature).

Builders take architecture arguments only; trained weights come from the zoo's own loader.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lightning_cv._lookup import check_options, lookup
from lightning_cv._sizes import to_size
from lightning_cv.errors import check_range

__all__ = ["create_model", "list_models", "register_model"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_SHAPE = ("num_classes", "in_channels", "image_size")  # what every builder takes


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder (a keyword-only function or ``nn.Module`` class); a duplicate raises."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"model name {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorator


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`, sorted.

    Example:
        >>> "lenet5" in list_models()
        True
    """
    return sorted(_BUILDERS)


def create_model(
    name: str, *, num_classes: int, in_channels: int, image_size: int | tuple[int, int], **kwargs
) -> nn.Module:
    """Build a zoo architecture by name, with freshly initialised weights.

    Args:
        name: one of :func:`list_models`.
        num_classes: size of the output layer, >= 1.
        in_channels: 1 for greyscale, 3 for RGB.
        image_size: input side (int) or (height, width).
        **kwargs: architecture options (e.g. ``hidden_sizes`` for ``mlp``).

    Returns:
        A plain ``nn.Module`` with ``forward_features``, ``forward_head`` and
        ``reset_classifier``.

    Raises:
        ConfigError: unknown name, or arguments the architecture cannot take.

    Example:
        >>> model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    """
    builder = lookup("model", name, _BUILDERS)
    check_range("num_classes", num_classes, ">= 1")
    check_range("in_channels", in_channels, ">= 1")
    check_options("model", name, builder, kwargs, given=_SHAPE)
    return builder(
        num_classes=num_classes, in_channels=in_channels, image_size=to_size(image_size), **kwargs
    )
