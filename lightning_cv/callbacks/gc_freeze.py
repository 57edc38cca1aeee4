"""Training without full garbage collections over what existed before it (``gc.freeze``)."""

from __future__ import annotations

import gc

import lightning.pytorch as L

__all__ = ["GCFreeze"]


class GCFreeze(L.Callback):
    """Move every object alive when training starts to Python's permanent generation, where the
    garbage collector never looks, and back when training ends or fails.

    A full collection walks every tracked object: about half a million once torch, Lightning
    and a Trainer are set up, 0.3 s on a CPU, and the allocations of a Trainer's steps set one
    off every thousand or so steps (3% of two LeNet-5 epochs on MNIST). The objects a step
    makes die young and are still collected; cycles among the frozen ones wait for the end.
    ``lightning-cv fit`` adds it. It does nothing when something else froze the heap first.

    Example:
        >>> trainer = L.Trainer(callbacks=[GCFreeze()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.froze = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.froze = gc.get_freeze_count() == 0
        if self.froze:
            gc.freeze()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._unfreeze()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception) -> None:
        self._unfreeze()

    def _unfreeze(self) -> None:
        if self.froze:
            gc.unfreeze()
            self.froze = False
