"""Zoo architectures, one family per module, looked up by name through the registry.

Every model exposes ``forward_features`` (B, D), ``forward_head`` (B, num_classes),
``reset_classifier(num_classes)`` and ``num_classes``.

Example:
    >>> from lightning_cv.models import create_model, list_models
    >>> "lenet5" in list_models()
    True
    >>> model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
"""

from lightning_cv.models._base import body_modules, freeze_body, head_of
from lightning_cv.models._pretrained import DEFAULTS, OPTIONS, architecture_options
from lightning_cv.models._registry import create_model, list_models, register_model
from lightning_cv.models.alexnet import AlexNet
from lightning_cv.models.lenet import LeNet5
from lightning_cv.models.linear import LinearClassifier
from lightning_cv.models.mlp import MLP

__all__ = [
    "DEFAULTS",
    "MLP",
    "OPTIONS",
    "AlexNet",
    "LeNet5",
    "LinearClassifier",
    "architecture_options",
    "body_modules",
    "create_model",
    "freeze_body",
    "head_of",
    "list_models",
    "register_model",
]
