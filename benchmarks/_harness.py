"""What every benchmark script shares: paths, a quiet Trainer, interleaved repeats, the result.

Each script compares lightning-cv with a baseline run side by side in one process: the
sides take turns going first (:func:`interleaved`) so drift of a shared machine hits all of
them, torch runs the same number of threads on every side (:func:`use_threads`), and the last
line printed is one JSON object (:func:`print_result`) that ``run_all.py`` reads.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning.pytorch as L
import torch

from lightning_cv.cli import LightningCVCLI

__all__ = [
    "DEFAULT_ROOT",
    "REPO",
    "from_recipe",
    "interleaved",
    "print_result",
    "quiet_lightning",
    "quiet_trainer",
    "use_device",
    "use_threads",
]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "datasets"
"""The offline data sets beside the repository: ``MNIST/``, ``CIFAR-10-images/``."""


def quiet_lightning() -> None:
    """Silence Lightning's start-up lines and the warnings a benchmark's setup expects."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # "GPU available: ..."
    warnings.filterwarnings(
        "ignore", ".*(does not have many workers|no `val_dataloader`|LeafSpec|val_dataloader).*"
    )


def use_threads(threads: int) -> None:
    """Run torch with ``threads`` intra-op threads, the same on every side.

    One by default in every script: on a small shared machine a second thread mostly waits
    for a core, unevenly between the sides.
    """
    torch.set_num_threads(threads)


_ACCELERATOR = {"name": "cpu"}


def use_device(accelerator: str) -> None:
    """Run every :func:`quiet_trainer` on ``accelerator`` (``cpu``, the default, or ``cuda``):
    ``gpu_check.py`` measures the other scripts' sides on a GPU this way."""
    _ACCELERATOR["name"] = accelerator


def quiet_trainer(
    max_epochs: int, callbacks: Sequence[L.Callback] = (), precision: str = "32-true"
) -> L.Trainer:
    """A one-device Trainer (the CPU unless :func:`use_device` said otherwise) without logger,
    progress bar, checkpoints, summary or validation.

    Those are I/O or extra work, not the cost a benchmark compares.
    """
    return L.Trainer(
        max_epochs=max_epochs,
        precision=precision,
        accelerator=_ACCELERATOR["name"],
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )


def from_recipe(recipe: Path, root: Path, *options: str) -> LightningCVCLI:
    """The recipe's model, data module and trainer as ``lightning-cv`` builds them, not run.

    Args:
        recipe: a recipe YAML, e.g. ``recipes/mnist_lenet5_fast.yaml``.
        root: the data sets' folder, given as ``--data.root``.
        options: more command-line options, e.g. ``"--data.val_fraction", "0"``.

    Returns:
        The CLI object: ``.model`` (seeded by the recipe's ``seed_everything``),
        ``.datamodule``, ``.trainer`` and ``.config``.
    """
    args = ["--config", str(recipe), "--data.root", str(root), *options]
    args += ["--trainer.logger", "false", "--trainer.enable_checkpointing", "false"]
    return LightningCVCLI(args=args, run=False)


def interleaved(names: Sequence[str], repeats: int) -> Iterator[tuple[int, str]]:
    """``(repeat, side)`` pairs: every side once per repeat, who goes first rotating.

    Example:
        >>> list(interleaved(["a", "b", "c"], 2))
        [(0, 'a'), (0, 'b'), (0, 'c'), (1, 'b'), (1, 'c'), (1, 'a')]
    """
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in [*names[shift:], *names[:shift]]:
            yield repeat, name


def print_result(benchmark: str, figures: dict) -> dict:
    """Print the result line, ``{"benchmark": benchmark, **figures}`` as JSON; return it."""
    result = {"benchmark": benchmark, **figures}
    print(json.dumps(result))
    return result
