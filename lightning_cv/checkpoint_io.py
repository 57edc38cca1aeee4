"""AtomicCheckpointIO: checkpoints written beside their target and renamed, never copied over it.

Lightning's ``TorchCheckpointIO`` writes a local checkpoint through an fsspec transaction:
the bytes go to a temporary file in ``$TMPDIR``, then ``shutil.move`` puts it over the target.
When ``$TMPDIR`` is on another file system (a tmpfs), that move is a copy over the target, so
a process killed during it leaves a truncated ``last.ckpt`` (the previous good one gone) and a
full-size file in ``$TMPDIR``. This plugin writes through :func:`~lightning_cv._io.atomic_write`
instead: a staging file in the checkpoint's own folder, fsynced, then renamed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from fsspec.utils import get_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lightning_cv._io import atomic_write_bytes, remove_stale_staging

__all__ = ["AtomicCheckpointIO"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local checkpoints are replaced in one step: a reader (or a
    resumed run) finds the old checkpoint or the new one, never a part.

    The first save into a folder removes the staging files a killed run left there. Remote
    paths (``s3://``...) and ``storage_options`` go to Lightning's ``TorchCheckpointIO``.

    Example:
        >>> trainer = L.Trainer(plugins=[AtomicCheckpointIO()])  # doctest: +SKIP
    """

    def __init__(self) -> None:
        super().__init__()
        self._cleaned: set[Path] = set()

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        """``torch.save`` ``checkpoint`` to ``path`` atomically (local paths)."""
        if storage_options is not None or get_protocol(str(path)) != "file":
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        folder = Path(path).parent
        if folder not in self._cleaned:
            remove_stale_staging(folder)
            self._cleaned.add(folder)
        buffer = io.BytesIO()  # as Lightning does; a full disk then fails with its errno
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getbuffer())
