"""Export a classifier as a ``torch.export`` program (``.pt2``) or ONNX, with its metadata.

Plain exports take ``images`` (B, C, H, W) float32, normalized as the eval transform does,
and return ``logits`` (B, num_classes). An export with baked preprocessing
(:class:`BakedPreprocessing`) takes ``images`` (B, C, H, W) uint8 at the model's input size
and returns ``probabilities`` (softmax). Both have a dynamic batch axis. ``metadata`` (class
names, mean, std...) travels inside the file as JSON: the ONNX metadata property
``lightning_cv``, the ``.pt2`` extra file ``lightning_cv.json``. TorchScript is still written,
deprecated: ``torch.jit`` is deprecated upstream in favour of ``torch.export``.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lightning_cv._io import atomic_write, atomic_write_bytes
from lightning_cv.errors import ConfigError, check_choice

if TYPE_CHECKING:
    from lightning_cv.zoo.pretrained import Pretrained

__all__ = [
    "FORMATS",
    "METADATA_KEY",
    "BakedPreprocessing",
    "export_metadata",
    "export_model",
    "export_onnx",
    "export_pt2",
    "export_torchscript",
]

METADATA_KEY = "lightning_cv"
METADATA_FILE = f"{METADATA_KEY}.json"  # the .pt2 (and TorchScript) extra file
FORMATS = {"pt2": ".pt2", "onnx": ".onnx", "torchscript": ".pt"}  # format -> file suffix
EXAMPLE_BATCH = 2  # traced with two images, so the batch axis is not fixed to 1


class BakedPreprocessing(nn.Module):
    """A classifier with its eval preprocessing inside: uint8 (B, C, H, W) pixels in,
    probabilities (B, num_classes) out.

    Args:
        model: normalized (B, C, H, W) float32 -> logits.
        mean: per-channel mean of pixels scaled to [0, 1].
        std: per-channel standard deviation, the same scale.

    Example:
        >>> net = BakedPreprocessing(nn.Flatten(), mean=[0.5], std=[0.25])
        >>> net(torch.full((1, 1, 1, 2), 255, dtype=torch.uint8))  # softmax of [2, 2]
        tensor([[0.5000, 0.5000]])
    """

    def __init__(self, model: nn.Module, *, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        # (C,) -> (1, C, 1, 1): broadcast over batch, height and width
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.train(model.training)  # not a new module's training mode: export gives it back

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        normalized = (images.float() / 255 - self.mean) / self.std  # as albumentations' Normalize
        return self.model(normalized).softmax(dim=1)


def _signature(model: nn.Module) -> tuple[torch.dtype, str]:
    """The input dtype and the output's name of an exported ``model``."""
    if isinstance(model, BakedPreprocessing):
        return torch.uint8, "probabilities"
    return torch.float32, "logits"


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the block, then the module's training flag back."""
    was_training = model.training
    try:
        yield model.eval()
    finally:
        model.train(was_training)


def _example(model: nn.Module, input_shape: tuple[int, int, int]) -> torch.Tensor:
    return torch.zeros(EXAMPLE_BATCH, *input_shape, dtype=_signature(model)[0])


BATCH_AXIS = ({0: torch.export.Dim("batch")},)  # dynamic_shapes of the one input


def export_pt2(
    model: nn.Module, path: str | Path, *, input_shape: tuple[int, int, int],
    metadata: Mapping[str, Any] | None = None, replace: bool = True,
) -> Path:  # fmt: skip
    """Write ``model`` as a ``torch.export`` ExportedProgram (``torch.export.save``) with a
    dynamic batch axis; load it with ``torch.export.load(path).module()``.

    Args:
        model: maps (B, C, H, W) to (B, num_classes); exported in eval mode. A
            :class:`BakedPreprocessing` is exported with a uint8 input.
        path: the ``.pt2`` file.
        input_shape: ``(C, H, W)`` of one image.
        metadata: JSON-able facts, stored as the extra file ``lightning_cv.json``.
        replace: False: refuse to replace an existing file (the ``zoo export`` command).

    The file is written atomically (:func:`~lightning_cv._io.atomic_write_bytes`).

    Raises:
        ConfigError: ``path`` exists and ``replace`` is False.

    Example:
        >>> export_pt2(net, "lenet5.mnist.pt2", input_shape=(1, 28, 28))  # doctest: +SKIP
        PosixPath('lenet5.mnist.pt2')
    """
    extra = {METADATA_FILE: json.dumps(metadata)} if metadata is not None else {}
    with _eval_mode(model):
        program = torch.export.export(
            model, (_example(model, input_shape),), dynamic_shapes=BATCH_AXIS
        )
    buffer = io.BytesIO()  # serialized in memory: torch reports a full disk without errno
    torch.export.save(program, buffer, extra_files=extra)
    return atomic_write_bytes(path, buffer.getbuffer(), replace=replace)


def export_onnx(
    model: nn.Module, path: str | Path, *, input_shape: tuple[int, int, int],
    metadata: Mapping[str, Any] | None = None, replace: bool = True,
) -> Path:  # fmt: skip
    """Write ``model`` as one ONNX file with a dynamic batch axis (``torch.onnx`` dynamo export);
    ``metadata`` is the ``lightning_cv`` metadata property; arguments as :func:`export_pt2`.

    Raises:
        ConfigError: the ``onnx`` or ``onnxscript`` package is missing, or ``path`` exists and
            ``replace`` is False.

    Example:
        >>> export_onnx(net, "lenet5.mnist.onnx", input_shape=(1, 28, 28))  # doctest: +SKIP
        PosixPath('lenet5.mnist.onnx')
    """
    output = _signature(model)[1]
    with _eval_mode(model):
        try:
            program = torch.onnx.export(
                model, (_example(model, input_shape),), input_names=["images"],
                output_names=[output], dynamic_shapes=BATCH_AXIS, dynamo=True, verbose=False,
            )  # fmt: skip
        except ImportError as error:
            raise ConfigError(
                f"ONNX export needs the onnx and onnxscript packages ({error}); "
                "pip install 'lightning-cv-zoo[export]'"
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
    """Deprecated (``torch.jit`` is, upstream): write ``model`` traced to TorchScript
    (``torch.jit.trace``; any batch size), ``metadata`` as the extra file
    ``lightning_cv.json``; arguments as :func:`export_pt2`.

    Warns:
        FutureWarning: TorchScript export will be removed; use :func:`export_pt2`.
    """
    warnings.warn(
        "TorchScript export is deprecated (torch.jit is, upstream) and will be removed; "
        "use export_pt2 (--format pt2)", FutureWarning, stacklevel=2,
    )  # fmt: skip
    extra = {METADATA_FILE: json.dumps(metadata)} if metadata is not None else {}
    with _eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's own "torch.jit.* is deprecated"
        traced = torch.jit.trace(model, _example(model, input_shape))
        buffer = io.BytesIO()  # to a file, torch.jit.save aborts the process on a full disk
        torch.jit.save(traced, buffer, _extra_files=extra)
    return atomic_write_bytes(path, buffer.getbuffer(), replace=replace)


EXPORTERS = {"pt2": export_pt2, "onnx": export_onnx, "torchscript": export_torchscript}


def export_metadata(pretrained: Pretrained, *, preprocess: bool) -> dict[str, Any]:
    """The JSON record an export of ``pretrained`` carries (``preprocess``: whether it takes
    uint8 pixels); ``zoo evaluate`` reads it back."""
    record = pretrained.preprocessing
    return {"name": pretrained.name, "sha256": pretrained.sha256,
            "class_names": [*record.class_names], "in_channels": record.in_channels,
            "image_size": [*record.image_size], "mean": [*record.mean], "std": [*record.std],
            "preprocess": preprocess}  # fmt: skip


def export_model(model: nn.Module, path: str | Path, *, format: str, **options: Any) -> Path:
    """Export ``model`` as ``format`` (``pt2``, ``onnx``, deprecated ``torchscript``); options
    as :func:`export_pt2`.

    Raises:
        ConfigError: an unknown format.

    Warns:
        FutureWarning: ``torchscript``, deprecated.
    """
    check_choice("export format", format, EXPORTERS)
    return EXPORTERS[format](model, path, **options)
