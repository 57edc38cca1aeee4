"""The model zoo: trained checkpoints with typed, verified metadata, loaded by name.

The manifest (``lightning_cv/zoo/manifest.yaml``, one entry per checkpoint named
``arch.dataset``) states each checkpoint's architecture, data set, classes, eval transform,
test metrics, recipe, sha256 and where its file lives: bundled in the package, a W&B
artifact or an https URL. Files are fetched into the cache, verified against the sha256 and
loaded with ``torch.load(weights_only=True)``.

Example:
    >>> from lightning_cv import zoo
    >>> [entry.name for entry in zoo.list_entries()]  # doctest: +SKIP
    ['lenet5.mnist']
    >>> pretrained = zoo.load("lenet5.mnist")  # doctest: +SKIP
    >>> pretrained.predict(image, top_k=3)  # doctest: +SKIP
    [('7', 0.998), ('1', 0.001), ('2', 0.0004)]
"""

from lightning_cv.zoo.export import export_model, export_onnx, export_torchscript
from lightning_cv.zoo.hub import cache_folder, sha256_file
from lightning_cv.zoo.manifest import Metrics, ZooEntry, read_manifest, render_table
from lightning_cv.zoo.pretrained import (
    Pretrained,
    checkpoint_file,
    get_entry,
    list_entries,
    load,
    load_backbone_weights,
)

__all__ = [
    "Metrics",
    "Pretrained",
    "ZooEntry",
    "cache_folder",
    "checkpoint_file",
    "export_model",
    "export_onnx",
    "export_torchscript",
    "get_entry",
    "list_entries",
    "load",
    "load_backbone_weights",
    "read_manifest",
    "render_table",
    "sha256_file",
]
