"""The progress bar of a ``lightning-cv`` run: Lightning's tqdm bar, refreshed a fixed number of
times an epoch instead of after every batch, showing the step's loss from the step's output.

A refresh formats the bar and its metrics: about 0.3 ms on a CPU. With Lightning's bar the model
also logs ``train/loss_step`` for it, another 1 ms: together 10% of a LeNet-5 step on MNIST
when it happens every batch (benchmarks/time_to_accuracy.py). Fifty refreshes an epoch still
move the bar smoothly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.callbacks import TQDMProgressBar
from torch import Tensor

from lightning_cv.errors import ConfigError

__all__ = ["EpochProgressBar"]


class EpochProgressBar(TQDMProgressBar):
    """A tqdm progress bar refreshed about ``refreshes`` times per training epoch.

    Every ``refresh_rate``-th batch and the last batch of an epoch refresh it, as with
    Lightning's bar; the rate is the epoch's batches // ``refreshes`` (at least 1), set when
    each training epoch starts. It shows the loss of the step that refreshes it as
    ``train/loss_step``, read from the training step's output (a loss tensor or a mapping
    with ``"loss"``), so the model need not log it for the bar (:attr:`shows_step_loss`).

    Args:
        refreshes: refreshes per training epoch.

    Raises:
        ConfigError: ``refreshes`` is not a positive integer.

    Example:
        >>> EpochProgressBar(refreshes=50).refresh_rate  # before training: every batch
        1
    """

    shows_step_loss = True
    """The bar takes ``train/loss_step`` from the step's output: ``ClassificationTask`` logs
    it only for the loggers (a logged value costs a step about 1 ms on a CPU)."""

    def __init__(self, refreshes: int = 50) -> None:
        if isinstance(refreshes, bool) or not isinstance(refreshes, int) or refreshes < 1:
            raise ConfigError(f"refreshes must be a positive integer, got {refreshes!r}")
        super().__init__()
        self.refreshes = refreshes
        self._every = 1
        self._step_loss: Tensor | None = None  # the last training step's

    @property
    def refresh_rate(self) -> int:
        return self._every

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._every = refresh_interval(self.total_train_batches, self.refreshes)
        super().on_train_epoch_start(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        """Lightning's refresh, drawn once: the count and the metrics together (Lightning's bar
        draws the count, then draws again for the metrics; a draw costs about 0.25 ms)."""
        if not self.is_enabled:
            return
        bar, done = self.train_progress_bar, batch_idx + 1
        if done % self.refresh_rate and done != bar.total:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        self._step_loss = loss if isinstance(loss, Tensor) else None
        if not bar.disable:
            bar.n = done
        bar.set_postfix(self.get_metrics(trainer, pl_module))  # refreshes the bar

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        """Lightning's items, with the last training step's loss as ``train/loss_step``."""
        metrics = super().get_metrics(trainer, pl_module)
        if self._step_loss is not None:
            metrics["train/loss_step"] = self._step_loss.item()
        return metrics


def refresh_interval(batches: float, refreshes: int) -> int:
    """Batches between refreshes for ``refreshes`` refreshes of an epoch of ``batches``.

    Example:
        >>> refresh_interval(422, 50), refresh_interval(45, 50), refresh_interval(math.inf, 50)
        (8, 1, 1)
    """
    if math.isinf(batches):
        return 1
    return max(1, int(batches) // refreshes)
