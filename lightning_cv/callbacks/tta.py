"""Test-time augmentation: class probabilities averaged over flipped and shifted views.

The plain view's metrics stay what the model logs (``test/acc``); the averaged ones are logged
beside them with a ``_tta`` suffix (``test/acc_tta``, ``test/f1_tta``, ...). In ``predict`` the
batch's ``probs`` and ``preds`` become the averaged ones, so a prediction writer that writes
at the epoch's end (``lightning-cv predict``'s :class:`PredictionWriter`) writes them; one that
writes every batch must come after this callback.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Literal

import lightning.pytorch as L
import torch

from lightning_cv.data.pipelines import check_flip
from lightning_cv.errors import ConfigError, check_choice
from lightning_cv.metrics import eval_metrics
from lightning_cv.tta import PADDINGS, averaged_probabilities, tta_views

__all__ = ["TestTimeAugmentation", "tta_views"]


class TestTimeAugmentation(L.Callback):
    """Average the model's softmax probabilities over :func:`~lightning_cv.tta.tta_views` in
    test and predict (by :func:`~lightning_cv.tta.averaged_probabilities`, which needs no
    Lightning).

    Args:
        flip: add the horizontal mirror; refused for data whose module sets
            ``allows_flip = False`` (digits: a mirrored 2 is no digit).
        shifts: pixels of the four translations (right, left, down, up); 0 for none.
        padding: ``"reflect"`` or ``"zeros"`` for the uncovered border.

    Raises:
        ConfigError: no view besides the plain one, negative ``shifts``, unknown ``padding``;
            at setup, ``flip`` for data that forbids flips.

    Example:
        >>> trainer = L.Trainer(callbacks=[TestTimeAugmentation(flip=True, shifts=2)])
    """

    __test__ = False  # not a pytest class, whatever its name

    def __init__(
        self, flip: bool = False, shifts: int = 0, padding: Literal["reflect", "zeros"] = "reflect"
    ) -> None:
        check_choice("padding", padding, PADDINGS)
        if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 0:
            raise ConfigError(f"TestTimeAugmentation: shifts must be an int >= 0, got {shifts!r}")
        if not flip and not shifts:
            raise ConfigError("TestTimeAugmentation needs a view to add: flip=True or shifts >= 1")
        self.flip, self.shifts, self.padding = flip, shifts, padding
        self.metrics = None  # built at setup, for the model's class count

    def check_data(self, data: object) -> None:
        """Refuse ``flip`` for data whose classes change when mirrored (``allows_flip =
        False``), by :func:`~lightning_cv.data.datamodule.check_flip`: at setup here, and where
        a checkpoint's data module meets its test-time augmentation at prediction."""
        check_flip(data, "TestTimeAugmentation", "flip=True" if self.flip else None)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.check_data(trainer.datamodule)
        metrics = eval_metrics(pl_module.hparams.num_classes)
        self.metrics = metrics.clone(prefix="test/", postfix="_tta").to(pl_module.device)

    def probabilities(self, pl_module: L.LightningModule, images: torch.Tensor) -> torch.Tensor:
        """``(B, num_classes)``: the mean of the model's probabilities over the views."""
        views = {"flip": self.flip, "shifts": self.shifts, "padding": self.padding}
        trainer = pl_module._trainer  # None outside a Trainer
        with trainer.precision_plugin.forward_context() if trainer else nullcontext():
            return averaged_probabilities(pl_module, images, **views)

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.metrics.reset()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        images, targets = batch
        self.metrics.update(self.probabilities(pl_module, images), targets)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # computed here (synced over ranks by torchmetrics), logged as plain values
        for name, value in self.metrics.compute().items():
            pl_module.log(name, value, on_epoch=True)

    def on_predict_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        images = batch[0] if isinstance(batch, list | tuple) else batch
        probs = self.probabilities(pl_module, images)
        outputs.update(probs=probs, preds=probs.argmax(dim=1))
