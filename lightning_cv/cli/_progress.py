"""The progress bar of a ``lightning-cv`` run: Lightning's tqdm bar, refreshed a fixed number of
times an epoch instead of after every batch.

A refresh formats the bar and its metrics and makes the model log ``train/loss_step`` for it:
about 1 ms on a CPU, 10% of a LeNet-5 step on MNIST when it happens every batch
(benchmarks/time_to_accuracy.py). Fifty refreshes an epoch still move the bar smoothly.
"""

from __future__ import annotations

import math

import lightning.pytorch as L
from lightning.pytorch.callbacks import TQDMProgressBar

from lightning_cv.errors import ConfigError

__all__ = ["EpochProgressBar"]


class EpochProgressBar(TQDMProgressBar):
    """A tqdm progress bar refreshed about ``refreshes`` times per training epoch.

    Every ``refresh_rate``-th batch and the last batch of an epoch refresh it, as with
    Lightning's bar; the rate is the epoch's batches // ``refreshes`` (at least 1), set when
    each training epoch starts.

    Args:
        refreshes: refreshes per training epoch.

    Raises:
        ConfigError: ``refreshes`` is not a positive integer.

    Example:
        >>> EpochProgressBar(refreshes=50).refresh_rate  # before training: every batch
        1
    """

    def __init__(self, refreshes: int = 50) -> None:
        if isinstance(refreshes, bool) or not isinstance(refreshes, int) or refreshes < 1:
            raise ConfigError(f"refreshes must be a positive integer, got {refreshes!r}")
        super().__init__()
        self.refreshes = refreshes
        self._every = 1

    @property
    def refresh_rate(self) -> int:
        return self._every

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._every = refresh_interval(self.total_train_batches, self.refreshes)
        super().on_train_epoch_start(trainer, pl_module)


def refresh_interval(batches: float, refreshes: int) -> int:
    """Batches between refreshes for ``refreshes`` refreshes of an epoch of ``batches``.

    Example:
        >>> refresh_interval(422, 50), refresh_interval(45, 50), refresh_interval(math.inf, 50)
        (8, 1, 1)
    """
    if math.isinf(batches):
        return 1
    return max(1, int(batches) // refreshes)
