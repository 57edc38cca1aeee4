"""Fine-tuning in two phases: the head first, then the whole backbone at a lower rate.

Example (a recipe)::

    trainer:
      callbacks:
        - class_path: lightning_cv.callbacks.HeadFirstFinetuning
          init_args: {unfreeze_backbone_at_epoch: 3}
"""

from __future__ import annotations

from types import SimpleNamespace

import lightning.pytorch as L
from lightning.pytorch.callbacks import BackboneFinetuning

from lightning_cv.errors import ConfigError, check_range
from lightning_cv.models import body_modules

__all__ = ["HeadFirstFinetuning"]

_FINETUNING_RANGES = {  # BackboneFinetuning's arguments that are numbers
    "unfreeze_backbone_at_epoch": ">= 0",
    "backbone_initial_ratio_lr": "> 0",
    "backbone_initial_lr": "> 0",
    "initial_denom_lr": "> 0",
    "rounding": ">= 0",
}


class HeadFirstFinetuning(BackboneFinetuning):
    """Lightning's :class:`~lightning.pytorch.callbacks.BackboneFinetuning` for
    :class:`~lightning_cv.ImageClassifier`: only the head trains until
    ``unfreeze_backbone_at_epoch``, then the rest joins the optimizer as a second parameter
    group at a lower, growing rate.

    Lightning's callback freezes ``pl_module.backbone`` whole, and ours holds the head too, so
    nothing would train; this one freezes the backbone's modules outside its head. It takes
    Lightning's arguments, and checks them: Lightning passes them on unchecked (a negative
    epoch never unfreezes; a rate factor <= 0 fails in torch epochs later).

    Raises:
        ConfigError: ``unfreeze_backbone_at_epoch`` or ``rounding`` below 0, a learning-rate
            ratio, rate or divisor that is not a finite number > 0, ``lambda_func`` that is no
            function.

    Example:
        >>> finetuning = HeadFirstFinetuning(unfreeze_backbone_at_epoch=2)
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, bounds in _FINETUNING_RANGES.items():
            if getattr(self, name) is not None:  # backbone_initial_lr None: lr times the ratio
                check_range(f"HeadFirstFinetuning {name}", getattr(self, name), bounds)
        if not callable(self.lambda_func):
            raise ConfigError(
                f"HeadFirstFinetuning lambda_func must be a function of the epoch, got "
                f"{self.lambda_func!r}"
            )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if pl_module.hparams.get("freeze_backbone"):
            raise ConfigError(
                "HeadFirstFinetuning unfreezes the backbone itself: leave freeze_backbone false"
            )
        super().on_fit_start(trainer, pl_module)

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.freeze(body_modules(pl_module.backbone))

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer) -> None:
        # what Lightning unfreezes: the body, not the head
        body = SimpleNamespace(backbone=body_modules(pl_module.backbone))
        super().finetune_function(body, epoch, optimizer)
