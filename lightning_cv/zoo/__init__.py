"""The model zoo: trained checkpoints with typed, verified metadata, loaded by name.

The manifest (``lightning_cv/zoo/manifest.yaml``, one entry per checkpoint named
``arch.dataset``) states what a checkpoint does not: its data set, test metrics, recipe,
sha256 and where its file lives (bundled in the package, a W&B artifact or an https URL).
The architecture, class names and input size come from the checkpoint's hyperparameters,
the eval transform from its data module class. Files are fetched into the cache, verified
against the sha256 and loaded with ``torch.load(weights_only=True)``.

Example:
    >>> from lightning_cv import zoo
    >>> "lenet5.mnist" in [entry.name for entry in zoo.list_entries()]
    True
    >>> pretrained = zoo.load("lenet5.mnist")  # doctest: +SKIP
    >>> pretrained.predict(image, top_k=3)  # doctest: +SKIP
    [('7 - seven', 0.998), ('1 - one', 0.001), ('2 - two', 0.0004)]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lightning_cv._io import sha256_file
from lightning_cv.zoo.export import export_model, export_onnx, export_torchscript
from lightning_cv.zoo.hub import (
    cache_folder,
    checkpoint_file,
    load_backbone_weights,
    local_file,
    read_zoo_checkpoint,
)
from lightning_cv.zoo.manifest import (
    Metrics,
    ZooEntry,
    get_entry,
    list_entries,
    manifest_path,
    read_manifest,
    render_table,
    update_table,
)
from lightning_cv.zoo.wandb_artifacts import publish_checkpoint

if TYPE_CHECKING:
    from lightning_cv.zoo.evaluate import TOLERANCE, build_datamodule, compare, measure
    from lightning_cv.zoo.pretrained import Pretrained, load, predict_images
    from lightning_cv.zoo.register import register_checkpoint

# These need Lightning and the task: imported on first use (PEP 562), so `zoo list`, `zoo
# info` and `import lightning_cv.task` (which loads zoo weights through the hub) start fast.
_LAZY = {
    "Pretrained": "pretrained",
    "load": "pretrained",
    "predict_images": "pretrained",
    "TOLERANCE": "evaluate",
    "build_datamodule": "evaluate",
    "compare": "evaluate",
    "measure": "evaluate",
    "register_checkpoint": "register",
}

__all__ = [
    "TOLERANCE",
    "Metrics",
    "Pretrained",
    "ZooEntry",
    "build_datamodule",
    "cache_folder",
    "checkpoint_file",
    "compare",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "get_entry",
    "list_entries",
    "load",
    "load_backbone_weights",
    "local_file",
    "manifest_path",
    "measure",
    "predict_images",
    "publish_checkpoint",
    "read_manifest",
    "read_zoo_checkpoint",
    "register_checkpoint",
    "render_table",
    "sha256_file",
    "update_table",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'lightning_cv.zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lightning_cv.zoo.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
