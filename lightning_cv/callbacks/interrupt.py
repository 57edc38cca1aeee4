"""Save ``checkpoints/last.ckpt`` when the job is told to stop (SIGTERM), so it can resume.

Schedulers (SLURM, Kubernetes, cloud spot instances) and ``timeout`` end a job with SIGTERM
and a grace period. Lightning turns the signal into a ``SIGTERMException`` after the current
batch; this callback saves the state at that step, mid-epoch, as the run's ``last.ckpt``, and
``lightning-cv fit ... --ckpt_path last`` continues from there.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_cv.callbacks._run_folder import run_folder

__all__ = ["SaveOnSigterm", "last_checkpoint_path"]


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


class SaveOnSigterm(L.Callback):
    """On SIGTERM during ``fit``, save the current state as the run's ``last.ckpt``, then exit.

    Only Lightning's ``SIGTERMException`` triggers a save: any other error (a NaN loss, a bad
    file, Ctrl+C) leaves the last checkpoint written at an epoch end untouched. A ``last.ckpt``
    that is a link (``ModelCheckpoint(save_last="link")``) is replaced, never written through.

    Example:
        >>> callbacks = [ModelCheckpoint(save_last=True), SaveOnSigterm()]
        >>> trainer = L.Trainer(callbacks=callbacks)  # doctest: +SKIP
    """

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        path = last_checkpoint_path(trainer)
        if trainer.is_global_zero and path.is_symlink():
            path.unlink()
        trainer.save_checkpoint(path)  # every rank calls it; rank 0 writes
        rank_zero_info(
            f"SIGTERM: saved {path} at step {trainer.global_step} (epoch {trainer.current_epoch}); "
            "continue with --ckpt_path last"
        )
