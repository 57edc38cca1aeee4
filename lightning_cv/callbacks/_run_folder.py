"""The run folder: one folder per run holding checkpoints, config, metrics and pictures."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

__all__ = ["run_folder"]


def run_folder(trainer: L.Trainer) -> Path:
    """Where this run's files go: the folder ModelCheckpoint puts ``checkpoints/`` in.

    CSV and TensorBoard loggers have one (``save_dir/name/version_N``); for others, such as
    W&B, whose ``trainer.log_dir`` is shared by all runs, it is ``save_dir/name/version`` as
    in Lightning's ModelCheckpoint.
    """
    if not trainer.loggers:
        return Path(trainer.default_root_dir)
    logger = trainer.loggers[0]
    if isinstance(logger, CSVLogger | TensorBoardLogger):
        return Path(logger.log_dir)
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / version
