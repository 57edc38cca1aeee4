"""An exponential moving average of the weights: what validation, checkpoints and tests see.

Lightning 2.6's ``EMAWeightAveraging`` keeps the average beside the model, swaps it in for
validation, writes it as a checkpoint's ``state_dict`` (the raw weights go to
``current_model_state``) and copies it into the model when training ends. One thing it gets
wrong for us: a checkpoint loaded by the same callback outside ``fit`` (``trainer.test(...,
ckpt_path="best")``, which ``fit --test_after_fit true`` runs) puts the raw weights back, so
the test would report the model that was not averaged. This subclass leaves the averaged
``state_dict`` in place there; resuming ``fit`` still restores both sides.

    trainer:
      callbacks:
        - class_path: lightning_cv.callbacks.weight_averaging.EMAWeightAveraging
          init_args: {decay: 0.999}
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import weight_averaging
from lightning.pytorch.trainer.states import TrainerFn

from lightning_cv.errors import ConfigError, check_range

__all__ = ["EMAWeightAveraging", "averaged_state_dict"]


class EMAWeightAveraging(weight_averaging.EMAWeightAveraging):
    """Lightning's EMA of the weights, evaluated as the averaged model after ``fit`` too.

    After each update ``average = decay * average + (1 - decay) * weights``; the first update
    copies the weights. Updates follow optimizer steps ``update_starting_at_step``,
    ``+ update_every_n_steps``, ... (zero-based; all of them by default).

    Args:
        decay: weight of the old average per update, in [0, 1).
        update_every_n_steps: update on every n-th optimizer step, >= 1.
        update_starting_at_step: first zero-based step to update after (None: step 0).
        update_starting_at_epoch: also update after each epoch from this one (None: never).
        device: where the average lives (None: the model's device).
        use_buffers: average the buffers too (batch-norm statistics), as Lightning does.

    Raises:
        ConfigError: a value outside the ranges above, e.g. ``"decay must be in [0, 1), got
            1.0"``.

    Example:
        >>> EMAWeightAveraging(decay=0.99).update_every_n_steps
        1
    """

    def __init__(
        self,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        device: str | None = None,
        use_buffers: bool = True,
    ) -> None:
        check_range("decay", decay, "[0, 1)")
        _check_count("update_every_n_steps", update_every_n_steps, 1)
        for name, value in (
            ("update_starting_at_step", update_starting_at_step),
            ("update_starting_at_epoch", update_starting_at_epoch),
        ):
            if value is not None:
                _check_count(name, value, 0)
        super().__init__(
            device=device,
            use_buffers=use_buffers,
            decay=decay,
            update_every_n_steps=update_every_n_steps,
            update_starting_at_step=update_starting_at_step,
            update_starting_at_epoch=update_starting_at_epoch,
        )
        self.decay = decay

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Resume both sides when fitting; otherwise keep the averaged ``state_dict`` loaded."""
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)


def _check_count(name: str, value: int, low: int) -> None:
    """Raise ConfigError unless ``value`` is an integer (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def averaged_state_dict(callback: weight_averaging.WeightAveraging) -> dict[str, torch.Tensor]:
    """The average's parameters and buffers under the model's own names (``module.`` cut).

    Raises:
        ConfigError: the callback has no average yet (it is made when ``fit`` starts).
    """
    if callback._average_model is None:
        raise ConfigError("the weight averaging callback has no average: it is made by fit")
    prefix = "module."
    state = callback._average_model.state_dict()
    return {name[len(prefix) :]: value for name, value in state.items() if name.startswith(prefix)}
