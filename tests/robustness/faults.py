"""Callbacks that put a fault at an exact training step, for runs started by the tests.

A test adds one to a ``lightning-cv fit`` run with ``--trainer.callbacks+=...`` (the run's
process needs the repository on ``PYTHONPATH``). None of them touches a random generator, so
a run with one trains exactly like a run without.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning.pytorch as L
import torch

__all__ = ["PauseAtStep", "PoisonAtStep"]


class PauseAtStep(L.Callback):
    """Before optimizer step ``step``, write ``marker`` and wait for a signal.

    The test that started the run waits for ``marker`` and then kills the process, so the kill
    lands at a known step in the middle of an epoch however slow the machine is. After a
    SIGTERM (which Lightning only records) the run goes on and stops after this batch; without
    any signal it goes on after ``timeout`` seconds.

    Args:
        step: the global step to pause before.
        marker: the file to create once paused.
        timeout: seconds to wait at most.
    """

    def __init__(self, step: int, marker: str, timeout: float = 600.0) -> None:
        self.step = step
        self.marker = Path(marker)
        self.timeout = timeout

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step != self.step:
            return
        self.marker.write_text(f"{trainer.current_epoch} {batch_idx}\n")
        deadline = time.monotonic() + self.timeout
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.05)


class PoisonAtStep(L.Callback):
    """Before optimizer step ``step``, set every weight of the module to NaN.

    The loss of that step is then NaN, so the run fails the way a diverging run does.

    Args:
        step: the global step whose loss becomes NaN.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(math.nan)
