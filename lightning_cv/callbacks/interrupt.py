"""Make a killed run resumable, exactly: ``last.ckpt`` on SIGTERM, random state in checkpoints.

Schedulers (SLURM, Kubernetes, spot instances) and ``timeout`` end a job with SIGTERM and a
grace period. Lightning turns the signal into a ``SIGTERMException`` after the current batch;
:class:`Resumable` then saves the state at that step, mid-epoch, as the run's ``last.ckpt``,
and ``lightning-cv fit ... --ckpt_path last`` continues from there.

Lightning's checkpoints hold the model, optimizer and loop counters but not the global random
generators, and the training loader draws each epoch's shuffle order from torch's generator.
A run resumed from an epoch-end checkpoint would shuffle as if it were at epoch 0 again (and
draw other dropout masks); with the generators' state in the checkpoint it trains on the same
batches as a run that was never stopped.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_cv.runs import run_folder

__all__ = ["Resumable", "last_checkpoint_path", "random_state", "set_random_state"]

log = logging.getLogger(__name__)  # shown by the command (cli.quiet_lightning)


def random_state() -> dict[str, Any]:
    """The state of torch's, NumPy's and Python's global generators, as tensors and ints.

    Only tensors, ints and lists are used, so a checkpoint holding it still loads with
    ``torch.load(..., weights_only=True)``.

    Example:
        >>> state = random_state(); a = torch.rand(1); set_random_state(state)
        >>> bool(torch.rand(1) == a)
        True
    """
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": [version, list(python_state), python_gauss],
    }


def set_random_state(state: dict[str, Any]) -> None:
    """Restore the generators from :func:`random_state` (CUDA only when there are GPUs)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, python_state, python_gauss = state["python"]
    random.setstate((version, tuple(python_state), python_gauss))


def last_checkpoint_path(trainer: L.Trainer) -> Path:
    """Where ``last.ckpt`` goes: the first ModelCheckpoint's folder, else ``<run>/checkpoints``.

    Example:
        >>> last_checkpoint_path(trainer)  # doctest: +SKIP
        PosixPath('runs/quickstart/version_0/checkpoints/last.ckpt')
    """
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.dirpath is not None:
        name = f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        return Path(callback.dirpath) / name
    return run_folder(trainer) / "checkpoints" / "last.ckpt"


class Resumable(L.Callback):
    """Save ``last.ckpt`` on SIGTERM and keep the random state in every checkpoint.

    Only Lightning's ``SIGTERMException`` (during ``fit``) triggers a save: any other error (a
    NaN loss, a bad file, Ctrl+C) leaves the last checkpoint of an epoch end untouched. A
    ``last.ckpt`` that is a link (``ModelCheckpoint(save_last="link")``) is replaced, never
    written through. The random state saved is rank 0's; with DDP every rank gets it back
    (after ``seed_everything`` all ranks draw alike anyway).

    A resume from an epoch-end checkpoint repeats the uninterrupted run exactly when the data
    loading draws from torch's generator (``num_workers=0``); one from a mid-epoch SIGTERM
    checkpoint runs the rest of that epoch on freshly shuffled batches (Lightning's loaders
    cannot restart mid-epoch).

    Example:
        >>> callbacks = [ModelCheckpoint(save_last=True), Resumable()]
        >>> trainer = L.Trainer(callbacks=callbacks)  # doctest: +SKIP
    """

    def state_dict(self) -> dict[str, Any]:
        return {"random_state": random_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_random_state(state_dict["random_state"])

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        path = last_checkpoint_path(trainer)
        if trainer.is_global_zero and path.is_symlink():
            path.unlink()
        trainer.save_checkpoint(path)  # every rank calls it; rank 0 writes
        rank_zero_only(log.info)(
            f"SIGTERM: saved {path} at step {trainer.global_step} (epoch {trainer.current_epoch}); "
            "continue with --ckpt_path last"
        )
