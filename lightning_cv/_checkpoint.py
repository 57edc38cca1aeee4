"""Read a checkpoint safely: tensors and plain values only, one clear line for a bad file."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from lightning_cv.errors import ConfigError

__all__ = ["read_checkpoint"]

_NOT_TORCH = "is not a complete PyTorch file (truncated, or not written by torch.save)"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning checkpoint with ``weights_only=True``, naming the problem of a bad file.

    Raises:
        ConfigError: the file is missing or empty, is not a complete PyTorch file, holds
            pickled objects beyond tensors and plain values, or is not a Lightning checkpoint.

    Example:
        >>> path = "runs/quickstart/version_0/checkpoints/last.ckpt"
        >>> read_checkpoint(path)["epoch"]  # doctest: +SKIP
        19
    """
    name = repr(str(path))
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {name} does not exist")
    if path.stat().st_size == 0:
        raise ConfigError(f"checkpoint {name} is empty (0 bytes)")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since PyTorch 1.6
        raise ConfigError(f"checkpoint {name} {_NOT_TORCH}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" not in str(error):
            raise ConfigError(f"checkpoint {name} {_NOT_TORCH}") from error
        raise ConfigError(
            f"checkpoint {name} holds pickled objects other than tensors and plain values; "
            "refusing to load it (loading could run code)"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:  # a damaged member of the archive
        raise ConfigError(f"checkpoint {name} {_NOT_TORCH}") from error
    if not isinstance(checkpoint, dict) or not {"state_dict", "pytorch-lightning_version"} <= set(
        checkpoint
    ):
        raise ConfigError(
            f"checkpoint {name} is not a Lightning checkpoint (no 'state_dict' and "
            "'pytorch-lightning_version'); expected a file written by lightning-cv fit"
        )
    return checkpoint
