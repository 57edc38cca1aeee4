"""Zoo weights in a registry model, as torchvision's ``alexnet(weights=...)`` loads them, and
the one precedence of a model's options: the given value, else the weights', else the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lightning_cv._checkpoint import first_difference
from lightning_cv.errors import ConfigError

__all__ = ["DEFAULTS", "OPTIONS", "architecture_options", "load_pretrained"]

# a model's options: the architecture and the shape facts, which the data module also states
OPTIONS = ("backbone", "backbone_kwargs", "num_classes", "in_channels", "image_size", "class_names")
# the values when neither the call nor the weights give one (a LeNet-5 on MNIST-sized digits)
DEFAULTS = {"backbone": "lenet5", "num_classes": 10, "in_channels": 1, "image_size": 28}


def architecture_options(
    given: Mapping[str, Any], trained: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Each of :data:`OPTIONS`: the given one, else the weights' (``trained``, the entry's
    hyperparameters), else :data:`DEFAULTS`. With weights, ``backbone_kwargs`` are the entry's
    updated by the given ones, and the entry's class names apply at its class count only.

    Example:
        >>> architecture_options({"num_classes": 3}, {"num_classes": 10, "class_names": ["a"]})
        {'backbone': None, 'backbone_kwargs': None, 'num_classes': 3, 'in_channels': None, \
'image_size': None, 'class_names': None}
    """
    fallback = DEFAULTS if trained is None else trained
    options = {key: fallback.get(key) if given.get(key) is None else given[key] for key in OPTIONS}
    if trained is None:
        return options
    kwargs = {**(trained.get("backbone_kwargs") or {}), **(given.get("backbone_kwargs") or {})}
    options["backbone_kwargs"] = kwargs or None
    if given.get("class_names") is None and options["num_classes"] != trained["num_classes"]:
        options["class_names"] = None  # new classes: the entry's names do not apply
    return options


def load_pretrained(
    model: nn.Module, weights: str, state: dict[str, torch.Tensor], trained: Mapping[str, Any],
    num_classes: int,
) -> nn.Module:  # fmt: skip
    """``model`` (built at the entry's class count) holding the entry's weights, its head
    replaced (``reset_classifier``) for another ``num_classes``.

    Options that change no weight's shape are taken as given: dropout, AlexNet's
    ``"imagenet"`` variant at another image size (its adaptive pool), LeNet-5 at 28 or 32
    pixels (the padding). Any other difference is refused, naming the first weight.
    """
    difference = first_difference(state, model.state_dict())
    if difference is not None:
        used = ", ".join(
            f"{key}={trained.get(key)!r}"
            for key in ("in_channels", "image_size", "backbone_kwargs")
        )
        raise ConfigError(
            f"zoo weights {weights!r} do not fit this {trained['backbone']}: {difference}; they "
            f"were trained with {used}: leave out the options that differ"
        )
    model.load_state_dict(state)
    if num_classes != trained["num_classes"]:
        model.reset_classifier(num_classes)
    return model
