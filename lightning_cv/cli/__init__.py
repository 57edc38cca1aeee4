"""The ``lightning-cv`` command: the entry point and every subcommand.

``entry`` dispatches (``main``, the console script); ``lightning_cli`` holds the Lightning
subcommands (``fit | validate | test | predict``); ``recipes``, ``cv``, ``preview`` and ``zoo``
are the other commands; the ``_``-modules are their helpers. Lightning loads only when a
command needs it, so ``lightning-cv --help``, ``recipes`` and ``zoo list`` start fast:
:class:`LightningCVCLI` is imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lightning_cv.cli.entry import main

__all__ = ["LightningCVCLI", "main"]

if TYPE_CHECKING:
    from lightning_cv.cli.lightning_cli import LightningCVCLI


def __getattr__(name: str):
    if name != "LightningCVCLI":
        raise AttributeError(f"module 'lightning_cv.cli' has no attribute {name!r}")
    return importlib.import_module("lightning_cv.cli.lightning_cli").LightningCVCLI
