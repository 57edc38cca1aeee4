"""File plumbing shared by the data modules and the zoo: the cache root, atomic writes, sha256.

One home for each: every cache lives under :func:`cache_root`, every file lightning-cv writes
for the user goes through :func:`atomic_write`, so a reader never sees half a file and an
interrupted write leaves the old file (or nothing) under the real name.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning_cv.errors import ConfigError

__all__ = [
    "STAGING_MARK",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "cache_root",
    "check_new_file",
    "remove_stale_staging",
    "save_figure",
    "sha256_file",
    "write_csv",
]

HOME_ENV = "LIGHTNING_CV_HOME"
STAGING_MARK = ".lightning-cv-"
# ".<target>.lightning-cv-<pid>-<mkstemp's 8 characters>.tmp", and whatever a writer derives
# from that name (torch.hub's "<staging>.<uuid>.partial", a W&B download folder)
_STAGING = re.compile(rf"^\..+{re.escape(STAGING_MARK)}(\d+)-[a-z0-9_]{{8}}\.tmp(\..+)?$")
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # only a write fails so
NEW_FILE_HINT = "move it or choose another output path"


def cache_root() -> Path:
    """lightning-cv's cache folder: ``$LIGHTNING_CV_HOME``, else ``~/.cache/lightning_cv``.

    Example:
        >>> isinstance(cache_root(), Path)
        True
    """
    home = os.environ.get(HOME_ENV)
    return Path(home) if home else Path.home() / ".cache" / "lightning_cv"


def check_new_file(path: str | Path, hint: str = NEW_FILE_HINT) -> None:
    """Raise ConfigError when ``path`` exists: a command never replaces a file it did not create.

    Raises:
        ConfigError: ``"refusing to overwrite 'x/last.pt', which this command did not create;
            move it or choose another output path"`` (``hint`` after the semicolon).
    """
    if os.path.lexists(path):
        raise ConfigError(
            f"refusing to overwrite {str(path)!r}, which this command did not create; {hint}"
        )


@contextmanager
def atomic_write(
    path: str | Path, *, replace: bool = True, hint: str = NEW_FILE_HINT
) -> Iterator[Path]:
    """Yield a staging path beside ``path``; on success it is fsynced and renamed onto ``path``.

    A reader sees the old file or the new one, never a part. On an exception the staging file
    is removed and ``path`` is left as it was; a killed process leaves the staging file, which
    :func:`remove_stale_staging` recognises (it holds :data:`STAGING_MARK` and the process id).
    The staging name ends in ``.tmp``: write through an open file (``np.save`` would add
    ``.npy``).

    Args:
        path: the file to write.
        replace: False: refuse (before and at the rename) when ``path`` exists, see
            :func:`check_new_file`.
        hint: what the refusal tells the user to do.

    Raises:
        ConfigError: ``path`` exists and ``replace`` is False.
        OSError: writing or renaming failed (a full disk...); it names ``path``, not the
            staging file.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_write(target) as staging:
        ...     _ = staging.write_text("done")
        >>> target.read_text()
        'done'
    """
    path = Path(path)
    if not replace:
        check_new_file(path, hint)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}{STAGING_MARK}{os.getpid()}-"
    try:
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from error
    os.close(descriptor)
    staging = Path(name)
    try:
        yield staging
        _fsync(staging)
        if replace:
            os.replace(staging, path)
        else:
            _rename_new(staging, path, hint)
        _fsync(path.parent)
    except OSError as error:
        if error.errno not in _FULL and not _names(error, staging):
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error
    finally:
        staging.unlink(missing_ok=True)


def _names(error: OSError, staging: Path) -> bool:
    """Whether ``error`` is about the staging file (or a file named after it)."""
    names = (error.filename, error.filename2)
    return any(name is not None and os.fsdecode(name).startswith(str(staging)) for name in names)


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder's entries on POSIX) to the disk."""
    if path.is_dir() and os.name != "posix":
        return  # only POSIX can open a folder
    descriptor = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
    try:
        os.fsync(descriptor)
    except OSError:
        if not path.is_dir():  # some file systems cannot sync a folder: not worth a failure
            raise
    finally:
        os.close(descriptor)


def _rename_new(staging: Path, path: Path, hint: str) -> None:
    """Give ``staging`` the name ``path`` unless ``path`` exists, in one step (a hard link)."""
    try:
        os.link(staging, path)
    except FileExistsError:
        check_new_file(path, hint)
    except OSError:  # a file system without hard links: check, then rename
        check_new_file(path, hint)
        os.replace(staging, path)


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":  # elsewhere os.kill would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_staging(folder: str | Path) -> list[Path]:
    """Remove the staging files (and what was derived from them) that a killed
    :func:`atomic_write` left in ``folder``; those of running processes stay. POSIX only.

    Returns:
        What was removed.

    Example:
        >>> remove_stale_staging(tempfile.mkdtemp())
        []
    """
    if not os.path.isdir(folder):
        return []
    with os.scandir(folder) as entries:
        stale = [e for e in entries if (m := _STAGING.match(e.name)) and not _alive(int(m[1]))]
    for entry in stale:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
    return [Path(entry.path) for entry in stale]


def atomic_write_bytes(
    path: str | Path, data: bytes | memoryview, *, replace: bool = True, hint: str = NEW_FILE_HINT
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`) and return the path.

    Serialize to memory first, then write with this: torch's own file writer reports a full
    disk as a RuntimeError without errno (or aborts the process, ``torch.jit.save``).
    """
    with atomic_write(path, replace=replace, hint=hint) as staging:
        staging.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_write(path) as staging:
        staging.write_text(text, encoding="utf-8")
    return Path(path)


def write_csv(path: str | Path, rows: Iterable[Sequence[Any]]) -> Path:
    """Write ``rows`` (the header first) as CSV to ``path`` atomically and return the path."""
    table = io.StringIO(newline="")
    csv.writer(table).writerows(rows)
    return atomic_write_text(path, table.getvalue())


def save_figure(figure: Any, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure to ``path`` atomically (its format from the suffix)."""
    path = Path(path)
    with atomic_write(path) as staging:
        figure.savefig(staging, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path


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
