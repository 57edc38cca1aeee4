"""The model zoo: trained checkpoints named ``arch.dataset``, whose manifest states what a
checkpoint does not (data set, test metrics, recipe, sha256, where the file lives); files are
verified against the sha256 and loaded with ``torch.load(weights_only=True)``.

The records and files are the low layer, :mod:`lightning_cv.hub` (below the task and the model
builder); the apps here (``load``, ``measure``, ``register_checkpoint``, ``export_model``) sit
above the task. Names import on first use (PEP 562): ``lightning-cv zoo list`` and
``lightning_cv.task`` start without Lightning through the zoo.

Example:
    >>> from lightning_cv import zoo
    >>> "lenet5.mnist" in [entry.name for entry in zoo.list_entries()]
    True
    >>> zoo.load("lenet5.mnist").predict(image, top_k=1)  # doctest: +SKIP
    [('7 - seven', 0.998)]
"""

import importlib

_MODULES = {
    "lightning_cv.hub.manifest": ["Metrics", "ZooEntry", "get_entry", "list_entries",
                                  "manifest_path", "read_manifest", "render_table",
                                  "update_table", "write_manifest"],
    "lightning_cv.hub.files": ["TIMEOUT_S", "cached_path", "checkpoint_file",
                               "load_backbone_weights", "read_zoo_checkpoint"],
    "lightning_cv.hub.publish": ["publish_checkpoint"],
    "lightning_cv.hub.sources": ["resolve_source"],
    "lightning_cv.zoo.export": ["BakedPreprocessing", "export_metadata", "export_model",
                                "export_onnx", "export_pt2", "export_torchscript"],
    "lightning_cv.zoo.evaluate": ["EXPORT_TOLERANCE", "TOLERANCE", "build_datamodule", "compare",
                                  "compare_export", "load_export", "measure",
                                  "saved_data_options", "task_of"],
    "lightning_cv.zoo.model_card": ["render_model_card"],
    "lightning_cv.zoo.pretrained": ["Predictions", "Pretrained", "load", "predict_images"],
    "lightning_cv.zoo.register": ["register_checkpoint"],
}  # fmt: skip
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'lightning_cv.zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value
