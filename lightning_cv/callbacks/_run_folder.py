"""The run folder: one folder per run holding checkpoints, config, metrics and pictures."""

from __future__ import annotations

import re
import weakref
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

__all__ = ["run_folder"]

_VERSION = re.compile(r"version_(\d+)")
_UNLOGGED: weakref.WeakKeyDictionary[L.Trainer, Path] = weakref.WeakKeyDictionary()


def run_folder(trainer: L.Trainer) -> Path:
    """Where this run's files go: the folder ModelCheckpoint puts ``checkpoints/`` in.

    CSV and TensorBoard loggers have one (``save_dir/name/version_N``); for others, such as
    W&B, whose ``trainer.log_dir`` is shared by all runs, it is ``save_dir/name/version`` as
    in Lightning's ModelCheckpoint. A run without a logger gets a fresh
    ``default_root_dir/outputs/version_N``, chosen once per Trainer: its pictures and
    predictions never land on files that were there before it.
    """
    if not trainer.loggers:
        if trainer not in _UNLOGGED:
            _UNLOGGED[trainer] = _fresh_version(Path(trainer.default_root_dir) / "outputs")
        return _UNLOGGED[trainer]
    logger = trainer.loggers[0]
    if isinstance(logger, CSVLogger | TensorBoardLogger):
        return Path(logger.log_dir)
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / version


def _fresh_version(root: Path) -> Path:
    """``root/version_N`` with N one more than any version already there."""
    taken = [
        int(match[1]) for path in root.glob("version_*") if (match := _VERSION.fullmatch(path.name))
    ]
    return root / f"version_{max(taken, default=-1) + 1}"
