"""``lightning-cv fit --ckpt_path last``: continue the most recent run, in its own run folder.

Lightning resolves ``ckpt_path="last"`` inside the folder of the run being started, which is a
new ``version_N`` (or a new W&B run id), so on its own it never finds the checkpoint of the run
that was killed. :func:`resume_last_run` looks one level up, before anything is built: it picks
the newest ``checkpoints/last.ckpt`` among the logger's earlier runs and points both the logger
(its ``version`` or W&B ``id``) and ``ckpt_path`` at that run.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch.utilities import rank_zero_only

__all__ = ["find_last_checkpoint", "resume_last_run"]

log = logging.getLogger(__name__)  # shown by the command (cli.quiet_lightning)

# save_dir/name/version_N; RunCSVLogger is what a run's saved config.yaml names
VERSIONED_LOGGERS = ("CSVLogger", "RunCSVLogger", "TensorBoardLogger")
WANDB_LOGGER = "WandbLogger"  # save_dir/<project>/<run id>
_VERSION = re.compile(r"version_(\d+)")


def find_last_checkpoint(root: Path) -> Path | None:
    """The newest ``root/<run>/checkpoints/last.ckpt``, by modification time, or ``None``.

    Args:
        root: the folder that holds one sub-folder per run, e.g. ``runs/quickstart``.

    Returns:
        The checkpoint written last; on equal times the run whose name sorts last wins.

    Example:
        >>> find_last_checkpoint(Path("runs/quickstart"))  # doctest: +SKIP
        PosixPath('runs/quickstart/version_3/checkpoints/last.ckpt')
    """
    if not root.is_dir():
        return None
    found = [path for path in root.glob("*/checkpoints/last.ckpt") if path.is_file()]
    if not found:
        return None
    return max(found, key=lambda path: (path.stat().st_mtime_ns, path.parent.parent.name))


def _runs_root(trainer: Namespace, kind: str, init: Namespace) -> Path:
    """The folder of the logger's runs, where ModelCheckpoint puts ``<run>/checkpoints``."""
    if kind == WANDB_LOGGER:
        save_dir = init.get("save_dir") or init.get("dir") or trainer.get("default_root_dir")
        project = init.get("project") or os.environ.get("WANDB_PROJECT", "lightning_logs")
        return Path(save_dir or os.getcwd()) / project
    name = init.get("name")
    return Path(init.save_dir) / name if name else Path(init.save_dir)


def _logger_to_resume(config: Namespace) -> tuple[str, Namespace] | None:
    """(logger class name, its init_args) when ``--ckpt_path last`` is ours to resolve."""
    if config.get("ckpt_path") != "last":
        return None
    logger = config.trainer.get("logger")
    if isinstance(logger, list):  # ModelCheckpoint names the run folder after the first logger
        logger = logger[0] if logger else None
    if not isinstance(logger, Namespace) or not isinstance(logger.get("class_path"), str):
        return None
    kind = logger.class_path.rsplit(".", 1)[-1]
    init = logger.init_args
    if kind not in (*VERSIONED_LOGGERS, WANDB_LOGGER):
        return None
    if init.get("version") is not None or (kind == WANDB_LOGGER and init.get("id")):
        return None
    return kind, init


def resume_last_run(config: Namespace) -> Path | None:
    """Point ``fit --ckpt_path last`` at the newest earlier run of the same logger.

    Acts only when ``config.ckpt_path`` is ``"last"`` and the logger is a ``CSVLogger``,
    ``TensorBoardLogger`` or ``WandbLogger`` without an explicit ``version`` (or W&B ``id``);
    with an explicit one, Lightning's own lookup in that run folder already works. Then it
    sets ``ckpt_path`` to the newest ``<run>/checkpoints/last.ckpt`` and the logger's
    ``version`` (``version_N`` -> ``N``) or W&B ``id`` to that run, so the resumed run writes
    into the same folder and continues the same W&B run (with ``resume="allow"``). When no
    run has a ``last.ckpt`` it changes nothing: Lightning warns and starts a new run.

    Args:
        config: the parsed ``fit`` subcommand (``self.config.fit`` in the CLI), changed in
            place: ``ckpt_path`` and ``trainer.logger.init_args``.

    Returns:
        The checkpoint the run resumes from, or ``None`` when nothing was changed.

    Example:
        >>> resume_last_run(cli.config.fit)  # doctest: +SKIP
        PosixPath('runs/quickstart/version_0/checkpoints/last.ckpt')
    """
    logger = _logger_to_resume(config)
    if logger is None:
        return None
    kind, init = logger
    root = _runs_root(config.trainer, kind, init)
    checkpoint = find_last_checkpoint(root)
    if checkpoint is None:
        rank_zero_only(log.info)(
            f"--ckpt_path last: no {root}/*/checkpoints/last.ckpt; starting a new run"
        )
        return None
    run = checkpoint.parent.parent.name
    if kind == WANDB_LOGGER:
        init.id = run
        if init.get("resume") is None:  # jsonargparse passes resume=None, which drops "allow"
            init.resume = "allow"
    else:
        match = _VERSION.fullmatch(run)
        init.version = int(match[1]) if match else run
    config.ckpt_path = str(checkpoint)  # the run's header line names it once the run starts
    return checkpoint
