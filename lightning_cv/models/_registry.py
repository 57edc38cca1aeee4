"""Name -> builder registry for the zoo architectures (timm's `_registry.py` in miniature).

Builders take architecture arguments only; :func:`create_model` loads a zoo entry's weights
into what they build, through the zoo's low layer (:mod:`lightning_cv.hub`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from lightning_cv._lookup import check_options, lookup
from lightning_cv._sizes import to_size
from lightning_cv.errors import check_range
from lightning_cv.hub.files import load_backbone_weights
from lightning_cv.models._pretrained import OPTIONS, architecture_options, load_pretrained

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
    name: str | None,
    *,
    weights: str | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    **kwargs,
) -> nn.Module:
    """Build a zoo architecture by name, freshly initialised or holding a zoo entry's weights
    (as torchvision's ``alexnet(weights=...)``).

    An option left out is the weights', else the default (:func:`architecture_options`).

    Args:
        name: one of :func:`list_models`; None: the architecture of ``weights``.
        weights: a zoo entry (``lightning-cv zoo list``), e.g. ``"alexnet.cifar10"``; another
            ``num_classes`` than the entry's gets a new head (``reset_classifier``). The
            entry's options are in ``model.pretrained_cfg``.
        num_classes: size of the output layer, >= 1.
        in_channels: 1 for greyscale, 3 for RGB.
        image_size: input side (int) or (height, width).
        **kwargs: architecture options (``hidden_sizes`` for ``mlp``), updating the entry's.

    Returns:
        A plain ``nn.Module`` with ``forward_features``, ``forward_head`` and
        ``reset_classifier``.

    Raises:
        ConfigError: unknown name, arguments the architecture cannot take, ``weights`` of
            another architecture, or options that change the shape of one of its weights.
        DataFileError: ``weights`` whose file cannot be fetched or has another sha256.

    Example:
        >>> model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
        >>> tuned = create_model("lenet5", weights="lenet5.cifar10", num_classes=3)
        >>> tuned.pretrained_cfg["in_channels"], tuned.head.out_features
        (3, 3)
    """
    given = {"backbone": name, "backbone_kwargs": kwargs, "num_classes": num_classes,
             "in_channels": in_channels, "image_size": image_size}  # fmt: skip
    if weights is None:
        return _build(architecture_options(given))
    state, trained = load_backbone_weights(weights, architecture=name)
    options = architecture_options(given, trained)
    model = _build({**options, "num_classes": trained["num_classes"]})
    load_pretrained(model, weights, state, trained, options["num_classes"])
    model.pretrained_cfg = {"weights": weights, **{key: trained.get(key) for key in OPTIONS}}
    return model


def _build(options: dict[str, Any]) -> nn.Module:
    """A freshly initialised registry model of ``options`` (see :data:`OPTIONS`)."""
    name, kwargs = options["backbone"], options["backbone_kwargs"] or {}
    builder = lookup("model", name, _BUILDERS)
    check_range("num_classes", options["num_classes"], ">= 1")
    check_range("in_channels", options["in_channels"], ">= 1")
    check_options("model", name, builder, kwargs, given=_SHAPE)
    return builder(
        num_classes=options["num_classes"],
        in_channels=options["in_channels"],
        image_size=to_size(options["image_size"]),
        **kwargs,
    )
