"""Zoo checkpoint files: read safely, strip to weights and hyperparameters, rebuild the model.

A file is only ever read with ``torch.load(..., weights_only=True)``: tensors, numbers,
strings and containers. A file whose unpickling would call anything else (the way a
malicious pickle runs code) is refused with the name of what it would have called.
"""

from __future__ import annotations

import inspect
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from lightning_cv._checkpoint import check_finite_weights
from lightning_cv.errors import DataFileError
from lightning_cv.task import ImageClassifier

__all__ = ["KEPT_KEYS", "classifier_from_checkpoint", "read_checkpoint", "strip_checkpoint"]

# What a zoo checkpoint keeps of a Lightning one: enough for load_from_checkpoint. Dropped:
# optimizer and scheduler states, loops, callbacks and the data module's hyperparameters
# (which hold the trainer's local data path).
KEPT_KEYS = (
    "pytorch-lightning_version",
    "epoch",
    "global_step",
    "hparams_name",
    "hyper_parameters",
    "state_dict",
)
_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an ImageClassifier checkpoint on the CPU with ``weights_only=True``.

    Args:
        path: a Lightning checkpoint of :class:`~lightning_cv.ImageClassifier` (full or
            stripped).

    Returns:
        The checkpoint dict; it has ``state_dict`` and ``hyper_parameters`` with a registry
        ``backbone`` name.

    Raises:
        DataFileError: a missing file, a file that would run code when unpickled, a file
            that is not a PyTorch checkpoint, or a checkpoint of another kind of model.

    Example:
        >>> read_checkpoint("runs/quickstart/version_0/checkpoints/last.ckpt")["epoch"]  # doctest: +SKIP
        19
    """  # noqa: E501
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = _UNSAFE_GLOBAL.search(str(error))
        if unsafe is None:
            raise DataFileError(
                f"checkpoint {str(path)!r} is not a readable PyTorch checkpoint "
                f"(UnpicklingError: {_summary(error)})"
            ) from None
        raise DataFileError(
            f"checkpoint {str(path)!r} refused: unpickling it would call {unsafe.group(1)}, so "
            "it could run code; zoo checkpoints hold only tensors and plain data "
            "(torch.load weights_only=True)"
        ) from None
    except (RuntimeError, EOFError, KeyError, ValueError) as error:  # damaged or foreign bytes
        raise DataFileError(
            f"checkpoint {str(path)!r} is not a readable PyTorch checkpoint "
            f"({type(error).__name__}: {_summary(error)})"
        ) from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if (
        not isinstance(hparams, dict)
        or not isinstance(hparams.get("backbone"), str)
        or not isinstance(checkpoint.get("state_dict"), dict)
    ):
        raise DataFileError(
            f"checkpoint {str(path)!r} is not an ImageClassifier checkpoint with a registry "
            "backbone (expected state_dict and hyper_parameters with a backbone name)"
        )
    check_finite_weights(checkpoint["state_dict"], source=f"checkpoint {str(path)!r}")
    return checkpoint


def _summary(error: BaseException) -> str:
    """The first dozen words of an error, on one line."""
    return " ".join(str(error).split()[:12])


def strip_checkpoint(checkpoint: dict[str, Any], *, half: bool = False) -> dict[str, Any]:
    """Keep the weights and hyperparameters of a checkpoint (:data:`KEPT_KEYS`), on the CPU.

    Every tensor is cloned, so views save only their own elements. ``half`` stores the
    floating-point tensors as float16: half the file; they load into float32 models.

    Example:
        >>> clean = strip_checkpoint(read_checkpoint("last.ckpt"))  # doctest: +SKIP
        >>> "optimizer_states" in clean  # doctest: +SKIP
        False
    """
    clean = {key: checkpoint[key] for key in KEPT_KEYS if key in checkpoint}
    clean["state_dict"] = {
        name: _stored(tensor.detach().cpu(), half)
        for name, tensor in checkpoint["state_dict"].items()
    }
    return clean


def _stored(tensor: torch.Tensor, half: bool) -> torch.Tensor:
    return tensor.half() if half and tensor.is_floating_point() else tensor.clone()


def classifier_from_checkpoint(checkpoint: dict[str, Any], *, source: str) -> ImageClassifier:
    """Rebuild the :class:`~lightning_cv.ImageClassifier` of a checkpoint, in eval mode.

    Hyperparameters that ``ImageClassifier`` does not take are ignored, as in Lightning's
    ``load_from_checkpoint``.

    Args:
        checkpoint: from :func:`read_checkpoint`.
        source: the file or entry, for messages.

    Raises:
        DataFileError: weights that do not fit the model the hyperparameters describe.

    Example:
        >>> model = classifier_from_checkpoint(read_checkpoint(path), source=path)  # doctest: +SKIP
    """
    accepted = inspect.signature(ImageClassifier).parameters
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k in accepted}
    model = ImageClassifier(**hparams)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise DataFileError(
            f"checkpoint {source}: its weights do not fit its {hparams['backbone']} "
            f"hyperparameters ({first})"
        ) from None
    return model.eval()
