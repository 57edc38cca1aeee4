"""The run folder: one folder per run holding checkpoints, config, metrics and pictures.

One home for its path (:func:`run_folder`), its ``version_N`` numbering (:func:`next_version`),
who may write there (:func:`output_folder`: rank 0, never a ``fast_dev_run``) and who holds it
(:func:`lock_run_folder`). The CLI, the callbacks, resuming and cross-validation all ask here.
"""

from __future__ import annotations

import fcntl
import os
import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning.pytorch as L
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lightning_cv.errors import ConfigError

__all__ = ["LOCK_NAME", "lock_run_folder", "next_version", "output_folder", "run_folder"]

LOCK_NAME = ".lightning-cv.lock"  # holds the pid of the process writing the run folder

_VERSION = re.compile(r"version_(\d+)")
_UNLOGGED: weakref.WeakKeyDictionary[L.Trainer, Path] = weakref.WeakKeyDictionary()


def run_folder(trainer: L.Trainer) -> Path:
    """Where this run's files go: the folder ModelCheckpoint puts ``checkpoints/`` in.

    CSV and TensorBoard loggers have one (``save_dir/name/version_N``); for others, such as
    W&B, whose ``trainer.log_dir`` is shared by all runs, it is ``save_dir/name/version`` as
    in Lightning's ModelCheckpoint. A run without a logger gets a fresh
    ``default_root_dir/outputs/version_N``, chosen once per Trainer: its pictures and
    predictions never land on files that were there before it.
    """
    if not trainer.loggers:
        if trainer not in _UNLOGGED:
            _UNLOGGED[trainer] = next_version(Path(trainer.default_root_dir) / "outputs")
        return _UNLOGGED[trainer]
    logger = trainer.loggers[0]
    if isinstance(logger, CSVLogger | TensorBoardLogger):
        return Path(logger.log_dir)
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / version


def next_version(root: Path) -> Path:
    """``root/version_N`` with N one more than any version already there (Lightning's
    CSVLogger numbers its runs so too): a new run never lands in an earlier one's folder.

    Example:
        >>> next_version(Path("runs/cv"))  # doctest: +SKIP
        PosixPath('runs/cv/version_3')
    """
    taken = [
        int(match[1]) for path in root.glob("version_*") if (match := _VERSION.fullmatch(path.name))
    ]
    return root / f"version_{max(taken, default=-1) + 1}"


def output_folder(trainer: L.Trainer) -> Path | None:
    """The run folder, made if needed, where this process writes its pictures and tables; None
    where it writes none: a ``fast_dev_run`` (it checks the code, it writes nothing) or a rank
    other than 0 (rank 0 writes for all)."""
    if trainer.fast_dev_run or not trainer.is_global_zero:
        return None
    folder = run_folder(trainer)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def lock_run_folder(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for this process while the block runs: a second run pointed at the same
    folder (``fit --ckpt_path last`` started twice) stops instead of writing into it too.

    The lock is the kernel's (``flock``), so it ends with the process, even a killed one; the
    lock file is removed when the block ends, and so is a folder the block left empty.

    Raises:
        ConfigError: another process holds the folder, naming the folder and its pid.
    """
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    with open(path, "a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            raise ConfigError(
                f"run folder {str(folder)!r} is in use by another lightning-cv process (pid "
                f"{holder}); wait for it to end, or start a new run without --ckpt_path"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # before the lock ends: no one waits on a stale file
            if created and not any(folder.iterdir()):
                folder.rmdir()  # a run that failed before writing anything leaves no folder
