"""Export a classifier to ONNX (dynamic batch axis) or TorchScript, with its zoo metadata.

Both formats take ``images`` (B, C, H, W) normalized as the eval transform does and return
``logits`` (B, num_classes); apply softmax for probabilities. ``metadata`` (class names,
mean, std...) travels inside the file: as the ONNX metadata property ``lightning_cv`` and as
the TorchScript extra file ``lightning_cv.json``, both JSON.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_cv.errors import ConfigError, check_choice

__all__ = ["EXPORTERS", "METADATA_KEY", "export_model", "export_onnx", "export_torchscript"]

METADATA_KEY = "lightning_cv"
EXAMPLE_BATCH = 2  # traced with two images, so the batch axis is not fixed to 1


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    input_shape: tuple[int, int, int],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` as one ONNX file with a dynamic batch axis (``torch.onnx`` dynamo export).

    Args:
        model: maps (B, C, H, W) to (B, num_classes); exported in eval mode.
        path: the ``.onnx`` file.
        input_shape: ``(C, H, W)`` of one image.
        metadata: JSON-able facts stored as the model's ``lightning_cv`` metadata property.

    Returns:
        ``path``.

    Raises:
        ConfigError: the ``onnx`` or ``onnxscript`` package is missing.

    Example:
        >>> from lightning_cv.models import create_model
        >>> net = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
        >>> export_onnx(net, "lenet5.onnx", input_shape=(1, 28, 28))  # doctest: +SKIP
        PosixPath('lenet5.onnx')
    """
    path = Path(path)
    example = torch.zeros(EXAMPLE_BATCH, *input_shape)
    with _eval_mode(model):
        try:
            program = torch.onnx.export(
                model,
                (example,),
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                dynamo=True,
                verbose=False,
            )
        except ImportError as error:
            raise ConfigError(
                f"ONNX export needs the onnx and onnxscript packages ({error}); "
                "pip install onnx onnxscript"
            ) from None
    if metadata is not None:
        program.model.metadata_props[METADATA_KEY] = json.dumps(metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(path, external_data=False)
    return path


def export_torchscript(
    model: nn.Module,
    path: str | Path,
    *,
    input_shape: tuple[int, int, int],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` traced to TorchScript (``torch.jit.trace``; any batch size).

    TorchScript is deprecated in recent PyTorch releases; its warnings are silenced here
    because the format is still what many C++ and mobile runtimes load.

    Args:
        model: maps (B, C, H, W) to (B, num_classes); traced in eval mode.
        path: the ``.pt`` file.
        input_shape: ``(C, H, W)`` of one image.
        metadata: JSON-able facts stored as the extra file ``lightning_cv.json``.

    Returns:
        ``path``.

    Example:
        >>> export_torchscript(net, "lenet5.pt", input_shape=(1, 28, 28))  # doctest: +SKIP
        PosixPath('lenet5.pt')
    """
    path = Path(path)
    example = torch.zeros(EXAMPLE_BATCH, *input_shape)
    extra = {f"{METADATA_KEY}.json": json.dumps(metadata)} if metadata is not None else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with _eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.* is deprecated"
        traced = torch.jit.trace(model, example)
        torch.jit.save(traced, str(path), _extra_files=extra)
    return path


EXPORTERS: dict[str, Callable[..., Path]] = {
    "onnx": export_onnx,
    "torchscript": export_torchscript,
}


def export_model(
    model: nn.Module,
    path: str | Path,
    *,
    format: str,
    input_shape: tuple[int, int, int],
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Export ``model`` in one of :data:`EXPORTERS`' formats (``onnx``, ``torchscript``).

    Raises:
        ConfigError: an unknown format.

    Example:
        >>> export_model(net, "lenet5.onnx", format="onnx", input_shape=(1, 28, 28))  # doctest: +SKIP
        PosixPath('lenet5.onnx')
    """  # noqa: E501
    check_choice("export format", format, EXPORTERS)
    return EXPORTERS[format](model, path, input_shape=input_shape, metadata=metadata)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put a module in eval mode for the block, then restore its training flag."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
