"""Export a classifier to ONNX (dynamic batch axis) or TorchScript, with its zoo metadata.

Both formats take ``images`` (B, C, H, W) normalized as the eval transform does and return
``logits`` (B, num_classes). ``metadata`` (class names, mean, std...) travels inside the file
as JSON: the ONNX metadata property ``lightning_cv``, the TorchScript extra file
``lightning_cv.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_cv._io import atomic_write, atomic_write_bytes
from lightning_cv.errors import ConfigError, check_choice

__all__ = ["METADATA_KEY", "export_model", "export_onnx", "export_torchscript"]

METADATA_KEY = "lightning_cv"
EXAMPLE_BATCH = 2  # traced with two images, so the batch axis is not fixed to 1


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block, then the module's training flag back."""
    was_training = model.training
    try:
        yield model.eval()
    finally:
        model.train(was_training)


def export_onnx(
    model: nn.Module, path: str | Path, *, input_shape: tuple[int, int, int],
    metadata: Mapping[str, Any] | None = None, replace: bool = True,
) -> Path:  # fmt: skip
    """Write ``model`` as one ONNX file with a dynamic batch axis (``torch.onnx`` dynamo export).

    Args:
        model: maps (B, C, H, W) to (B, num_classes); exported in eval mode.
        path: the ``.onnx`` file.
        input_shape: ``(C, H, W)`` of one image.
        metadata: JSON-able facts, stored as the ``lightning_cv`` metadata property.
        replace: False: refuse to replace an existing file (the ``zoo export`` command).

    The file is written atomically (:func:`~lightning_cv._io.atomic_write`).

    Raises:
        ConfigError: the ``onnx`` or ``onnxscript`` package is missing, or ``path`` exists and
            ``replace`` is False.

    Example:
        >>> export_onnx(net, "lenet5.onnx", input_shape=(1, 28, 28))  # doctest: +SKIP
        PosixPath('lenet5.onnx')
    """
    example = torch.zeros(EXAMPLE_BATCH, *input_shape)
    with _eval_mode(model):
        try:
            program = torch.onnx.export(
                model, (example,), input_names=["images"], output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, verbose=False,
            )  # fmt: skip
        except ImportError as error:
            raise ConfigError(
                f"ONNX export needs the onnx and onnxscript packages ({error}); "
                "pip install onnx onnxscript"
            ) from None
    if metadata is not None:
        program.model.metadata_props[METADATA_KEY] = json.dumps(metadata)
    with atomic_write(path, replace=replace) as staging:
        program.save(staging, external_data=False)
    return Path(path)


def export_torchscript(
    model: nn.Module, path: str | Path, *, input_shape: tuple[int, int, int],
    metadata: Mapping[str, Any] | None = None, replace: bool = True,
) -> Path:  # fmt: skip
    """Write ``model`` traced to TorchScript (``torch.jit.trace``; any batch size), with
    ``metadata`` as the extra file ``lightning_cv.json``; arguments as :func:`export_onnx`.

    TorchScript's deprecation warnings are silenced: many C++ and mobile runtimes still load it.
    """
    extra = {f"{METADATA_KEY}.json": json.dumps(metadata)} if metadata is not None else {}
    with _eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.* is deprecated"
        traced = torch.jit.trace(model, torch.zeros(EXAMPLE_BATCH, *input_shape))
        buffer = io.BytesIO()  # to a file, torch.jit.save aborts the process on a full disk
        torch.jit.save(traced, buffer, _extra_files=extra)
    return atomic_write_bytes(path, buffer.getbuffer(), replace=replace)


EXPORTERS = {"onnx": export_onnx, "torchscript": export_torchscript}


def export_model(model: nn.Module, path: str | Path, *, format: str, **options: Any) -> Path:
    """Export ``model`` as ``format`` (``onnx``, ``torchscript``); options as :func:`export_onnx`.

    Raises:
        ConfigError: an unknown format.
    """
    check_choice("export format", format, EXPORTERS)
    return EXPORTERS[format](model, path, **options)
