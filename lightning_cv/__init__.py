"""lightning-cv: small-image classification on PyTorch Lightning.

DataModules for the classic data sets, a registry of zoo architectures and one
LightningModule, :class:`ImageClassifier`, that trains any of them.

Names are imported on first use (PEP 562), so ``import lightning_cv`` stays fast and
Lightning loads only when a data module or the classifier is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_HOMES = {
    "ConfigError": "lightning_cv.errors",
    "create_model": "lightning_cv.models",
    "list_models": "lightning_cv.models",
    "ImageDataModule": "lightning_cv.data",
    "DigitsDataModule": "lightning_cv.data",
    "CIFAR10DataModule": "lightning_cv.data",
    "CIFAR100DataModule": "lightning_cv.data",
    "CSVDataModule": "lightning_cv.data",
    "FashionMNISTDataModule": "lightning_cv.data",
    "ImageFolderDataModule": "lightning_cv.data",
    "KMNISTDataModule": "lightning_cv.data",
    "MNISTDataModule": "lightning_cv.data",
    "OxfordIIITPetDataModule": "lightning_cv.data",
    "STL10DataModule": "lightning_cv.data",
    "SVHNDataModule": "lightning_cv.data",
    "ImageClassifier": "lightning_cv.task",
    "HeadFirstFinetuning": "lightning_cv.callbacks",
    "MixUp": "lightning_cv.callbacks",
    "CutMix": "lightning_cv.callbacks",
    "KNNClassifier": "lightning_cv.knn",
    "TestTimeAugmentation": "lightning_cv.callbacks",
    "AtomicCheckpointIO": "lightning_cv.checkpoint_io",
}

__all__ = [
    "AtomicCheckpointIO",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CSVDataModule",
    "ConfigError",
    "CutMix",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "HeadFirstFinetuning",
    "ImageClassifier",
    "ImageDataModule",
    "ImageFolderDataModule",
    "KMNISTDataModule",
    "KNNClassifier",
    "MNISTDataModule",
    "MixUp",
    "OxfordIIITPetDataModule",
    "STL10DataModule",
    "SVHNDataModule",
    "TestTimeAugmentation",
    "__version__",
    "create_model",
    "list_models",
    "zoo",
]

if TYPE_CHECKING:
    from lightning_cv.callbacks import CutMix, HeadFirstFinetuning, MixUp, TestTimeAugmentation
    from lightning_cv.checkpoint_io import AtomicCheckpointIO
    from lightning_cv.data import (
        CIFAR10DataModule,
        CIFAR100DataModule,
        CSVDataModule,
        DigitsDataModule,
        FashionMNISTDataModule,
        ImageDataModule,
        ImageFolderDataModule,
        KMNISTDataModule,
        MNISTDataModule,
        OxfordIIITPetDataModule,
        STL10DataModule,
        SVHNDataModule,
    )
    from lightning_cv.errors import ConfigError
    from lightning_cv.knn import KNNClassifier
    from lightning_cv.models import create_model, list_models
    from lightning_cv.task import ImageClassifier


def __getattr__(name: str):
    if name == "zoo":
        return importlib.import_module("lightning_cv.zoo")
    if name not in _HOMES:
        raise AttributeError(f"module 'lightning_cv' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
