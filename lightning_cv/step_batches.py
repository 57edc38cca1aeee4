"""Several optimizer steps per loaded batch: what ``ImageClassifier(step_batch_size=...)`` needs
from the run, and how many steps the run takes.

Lightning spends a fixed time on every batch it runs (its loop, hooks, callbacks and logging:
about 8% of a LeNet-5 step on MNIST on one CPU thread, far more of a step on a GPU). Loading
batches of ``k * step_batch_size`` samples and taking ``k`` optimizer steps on each pays that
cost once per ``k`` steps, in the spirit of Keras's ``steps_per_execution``. The steps see the
same samples in the same order as a run that loads ``step_batch_size`` at a time.
"""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch.callbacks import StochasticWeightAveraging, WeightAveraging

from lightning_cv.data import ImageDataModule
from lightning_cv.errors import ConfigError

__all__ = ["check_step_batches", "optimizer_steps"]


def check_step_batches(step_batch_size: int, data: Any, trainer: Any) -> None:
    """Refuse, in one line, a run of ``trainer`` on ``data`` whose loaded batches cannot be
    split into optimizer steps of ``step_batch_size`` samples.

    Raises:
        ConfigError: more than one device, no lightning-cv data module, a data ``batch_size``
            that is not a multiple of ``step_batch_size``, or a weight-averaging callback
            (it updates, or steps its schedule, once per loaded batch or epoch, not per
            optimizer step).
    """
    option = f"step_batch_size={step_batch_size}"
    if trainer.world_size > 1:
        raise ConfigError(
            f"{option} trains on one device; this run has {trainer.world_size} (leave "
            "step_batch_size out for DDP)"
        )
    if not isinstance(data, ImageDataModule):
        raise ConfigError(
            f"{option} splits the batches of a lightning-cv data module; this run's data is "
            f"{type(data).__name__ if data is not None else 'a plain loader'}"
        )
    if data.batch_size % step_batch_size:
        raise ConfigError(
            f"{option} must divide the data's batch_size={data.batch_size}: each loaded batch "
            f"is split into optimizer steps of {step_batch_size} samples"
        )
    for callback in trainer.callbacks:
        if isinstance(callback, WeightAveraging | StochasticWeightAveraging):
            raise ConfigError(
                f"{option} cannot be used with {type(callback).__name__}: it updates once per "
                "loaded batch or epoch, not once per optimizer step"
            )


def optimizer_steps(trainer: Any, step_batch_size: int) -> int | float:
    """The optimizer steps of the run (``inf`` without an epoch or step limit): every loaded
    batch split into steps of ``step_batch_size`` samples, the last of an epoch maybe fewer.

    Example:
        >>> optimizer_steps(trainer, 128)  # doctest: +SKIP
        469
    """
    data = trainer.datamodule
    loaded = trainer.num_training_batches  # after limit_train_batches
    all_samples = math.ceil(len(data.train_set) / step_batch_size)
    per_epoch = min(loaded * (data.batch_size // step_batch_size), all_samples)
    epochs = trainer.max_epochs
    total = per_epoch * epochs if epochs is not None and epochs >= 0 else math.inf
    return total if trainer.max_steps == -1 else min(total, trainer.max_steps)
