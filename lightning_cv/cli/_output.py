"""What a ``lightning-cv`` command prints: its own lines, Lightning's warnings, and nothing of
Lightning's notices (devices found, seed set, tips, checkpoints restored)."""

from __future__ import annotations

import logging
import sys

__all__ = ["quiet_lightning"]

_OURS = "lightning_cv"
_LIGHTNING = ("lightning", "lightning.pytorch", "lightning.fabric")


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass  # always sys.stderr


def _handler(level: int) -> _Stderr:
    handler = _Stderr()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def quiet_lightning() -> None:
    """lightning-cv's notices on stderr, one line each; Lightning's below its warnings.

    Lightning sets its loggers to INFO when it is imported, so this imports it first and
    then raises them to warnings; the root logger gets a handler for the warnings of others.
    """
    import lightning  # noqa: F401  (its import sets its loggers to INFO: raised below)

    root, ours = logging.getLogger(), logging.getLogger(_OURS)
    if not any(isinstance(handler, _Stderr) for handler in ours.handlers):
        ours.addHandler(_handler(logging.INFO))
        ours.setLevel(logging.INFO)
    if not any(isinstance(handler, _Stderr) for handler in root.handlers):
        warnings_only = _handler(logging.WARNING)
        warnings_only.addFilter(lambda record: not record.name.startswith(_OURS))  # shown above
        root.addHandler(warnings_only)
    for name in _LIGHTNING:
        logging.getLogger(name).setLevel(logging.WARNING)
