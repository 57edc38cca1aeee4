"""File plumbing shared by the data modules and the zoo: the cache root, atomic writes, sha256.

One home for each: every cache lives under :func:`cache_root`, every file lightning-cv writes
for the user goes through :func:`atomic_write`, so a reader never sees half a file and an
interrupted write leaves the old file (or nothing) under the real name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "cache_root", "sha256_file"]

HOME_ENV = "LIGHTNING_CV_HOME"


def cache_root() -> Path:
    """lightning-cv's cache folder: ``$LIGHTNING_CV_HOME``, else ``~/.cache/lightning_cv``.

    Example:
        >>> isinstance(cache_root(), Path)
        True
    """
    home = os.environ.get(HOME_ENV)
    return Path(home) if home else Path.home() / ".cache" / "lightning_cv"


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a staging path beside ``path``; on success it is renamed onto ``path`` at once.

    On an exception the staging file is removed and ``path`` is left as it was. The staging
    name ends in ``.tmp``: write through an open file (``np.save`` would add ``.npy``).

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target) as staging:
        ...     _ = staging.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    staging = Path(name)
    try:
        yield staging
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_write(path) as staging:
        staging.write_text(text, encoding="utf-8")
    return Path(path)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks.

    Example:
        >>> len(sha256_file(__file__))
        64
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
