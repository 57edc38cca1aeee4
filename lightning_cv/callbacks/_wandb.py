"""Send a callback's pictures and tables to Weights & Biases when a ``WandbLogger`` is in use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as L

__all__ = ["log_image", "log_table"]


def _wandb_loggers(trainer: L.Trainer) -> list:
    # imported on use: W&B code stays off the import path of every callback (wandb itself is
    # imported by the logger only once it starts a run)
    from lightning.pytorch.loggers import WandbLogger

    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def log_image(trainer: L.Trainer, key: str, path: Path) -> None:
    """Log the picture at ``path`` under ``key`` to every W&B logger of ``trainer`` (if any).

    Example:
        >>> log_image(trainer, "plots/class_report", folder / "class_report.png")  # doctest: +SKIP
    """
    for logger in _wandb_loggers(trainer):
        logger.log_image(key=key, images=[str(path)])


def log_table(trainer: L.Trainer, key: str, columns: list[str], data: list[list[Any]]) -> None:
    """Log a table (one list per row, in ``columns`` order) to every W&B logger of ``trainer``.

    Example:
        >>> log_table(trainer, "tables/report", ["class", "f1"], [["cat", 0.9]])  # doctest: +SKIP
    """
    for logger in _wandb_loggers(trainer):
        logger.log_table(key=key, columns=columns, data=data)
