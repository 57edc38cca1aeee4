"""Read a checkpoint safely: tensors and plain values only, one clear line for a bad file."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from lightning_cv.errors import ConfigError, DataFileError

__all__ = ["check_finite_weights", "first_difference", "is_own_class", "read_checkpoint"]

_NOT_TORCH = "is not a complete PyTorch file (truncated, or not written by torch.save)"
_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def read_checkpoint(path: str | Path, *, model_class: str | None = None) -> dict[str, Any]:
    """Load a Lightning checkpoint on the CPU with ``weights_only=True``, naming the problem of
    a bad file. The one checkpoint reader: the CLI, resuming, ``load_from_checkpoint`` and the
    zoo all read through it.

    Args:
        path: the checkpoint.
        model_class: a class path the user named (``--model``), accepted as the checkpoint's
            ``_class_path`` besides lightning_cv's own classes.

    Raises:
        DataFileError: the file is missing or empty, is not a complete PyTorch file, holds
            pickled objects beyond tensors and plain values (naming what unpickling would
            call), is not a Lightning checkpoint, or holds NaN or infinite weights.
        ConfigError: it names a model class outside lightning_cv (which LightningCLI would
            import).

    Example:
        >>> path = "runs/quickstart/version_0/checkpoints/last.ckpt"
        >>> read_checkpoint(path)["epoch"]  # doctest: +SKIP
        19
    """
    name = repr(str(path))
    checkpoint = _load(Path(path), name)
    if not isinstance(checkpoint, dict) or not {"state_dict", "pytorch-lightning_version"} <= set(
        checkpoint
    ):
        raise DataFileError(
            f"checkpoint {name} is not a Lightning checkpoint (no 'state_dict' and "
            "'pytorch-lightning_version'); expected a file written by lightning-cv fit"
        )
    class_path = (checkpoint.get("hyper_parameters") or {}).get("_class_path")
    if class_path is not None and not is_own_class(class_path, also=model_class):
        raise ConfigError(
            f"checkpoint {name} names the model class {class_path!r}, outside lightning_cv; "
            "refusing to import it (its module's code would run): pass --model with that "
            "class to trust it"
        )
    check_finite_weights(checkpoint["state_dict"], source=f"checkpoint {name}")
    return checkpoint


def _load(path: Path, name: str) -> Any:
    """``torch.load(weights_only=True)``, each failure in one line naming the file."""
    if not path.is_file():
        raise DataFileError(f"checkpoint {name} does not exist")
    if path.stat().st_size == 0:
        raise DataFileError(f"checkpoint {name} is empty (0 bytes)")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6
        raise DataFileError(f"checkpoint {name} {_NOT_TORCH}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = _UNSAFE_GLOBAL.search(str(error))
        if "Weights only load failed" not in str(error):
            raise DataFileError(f"checkpoint {name} {_NOT_TORCH}") from error
        call = f" (unpickling it would call {unsafe.group(1)})" if unsafe else ""
        raise DataFileError(
            f"checkpoint {name} holds pickled objects other than tensors and plain values{call}; "
            "refusing to load it (loading could run code)"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:  # a damaged member of the archive
        raise DataFileError(f"checkpoint {name} {_NOT_TORCH}") from error


def is_own_class(class_path: object, *, also: str | None = None) -> bool:
    """Whether a class path read from a data file may be imported: one of lightning_cv's, or
    the one the user named. Decided on the string alone, before anything is imported."""
    return isinstance(class_path, str) and (
        class_path.startswith("lightning_cv.") or class_path == also
    )


def check_finite_weights(state_dict: dict[str, Any], *, source: str) -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor.

    Such a checkpoint comes from a run that diverged or a damaged file: every prediction made
    with it would be garbage, so it is refused when it is read, once, not per batch.

    Raises:
        DataFileError: ``"<source>: weight 'backbone.fc.weight' holds 3 NaN/inf values ..."``.
    """
    for key, tensor in state_dict.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise DataFileError(
                    f"{source}: weight {key!r} holds {bad} NaN/inf value(s) of {tensor.numel()}; "
                    "the run that wrote it diverged or the file is damaged: retrain, or pass "
                    "another checkpoint"
                )


def first_difference(saved: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> str | None:
    """The first weight whose name or shape differs between a saved and a model's state dict,
    in words; None when every weight fits."""
    saved_shapes = {name: tuple(value.shape) for name, value in saved.items()}
    own_shapes = {name: tuple(value.shape) for name, value in own.items()}
    if saved_shapes == own_shapes:
        return None
    for name, shape in saved_shapes.items():
        if name not in own_shapes:
            return f"the checkpoint has {name!r}, which this model lacks"
        if shape != own_shapes[name]:
            return f"{name!r} is {shape} in the checkpoint, {own_shapes[name]} in this model"
    name = next(name for name in own_shapes if name not in saved_shapes)
    return f"this model has {name!r}, which the checkpoint lacks"
