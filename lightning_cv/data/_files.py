"""Honest file handling: clear errors for bad files, atomic downloads, safe unpacking.

Nothing here deletes or overwrites a file the user already has.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from torch.hub import download_url_to_file
from torchvision.datasets.utils import calculate_md5

from lightning_cv._io import atomic_write, cache_root, remove_stale_staging
from lightning_cv.errors import DataFileError

__all__ = ["DATA_ENV", "data_root", "download_file", "require_files", "safe_extract", "verify_md5"]

DATA_ENV = "LIGHTNING_CV_DATA"


def data_root() -> Path:
    """Where the data sets live when no ``root`` is given: ``$LIGHTNING_CV_DATA``, else
    ``data`` in lightning-cv's cache (``$LIGHTNING_CV_HOME``, else ``~/.cache/lightning_cv``).

    Example:
        >>> data_root().is_absolute() or DATA_ENV in os.environ
        True
    """
    folder = os.environ.get(DATA_ENV)
    return Path(folder) if folder else cache_root() / "data"


def require_files(folder: Path, names: Iterable[str], *, dataset: str, hint: str) -> None:
    """Raise one DataFileError listing every missing file of ``dataset`` in ``folder``.

    Args:
        folder: where the files should be.
        names: file names relative to ``folder``.
        dataset: the data set's name, for the message.
        hint: how to get the files, e.g. "pass download=True or copy them there".
    """
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DataFileError(f"{dataset}: missing {missing} in {str(folder)!r}; {hint}")


def verify_md5(path: Path, md5: str, *, dataset: str) -> None:
    """Raise DataFileError when ``path`` does not have the official MD5 (truncated or corrupt)."""
    actual = calculate_md5(path)
    if actual != md5:
        raise DataFileError(
            f"{dataset}: {str(path)!r} is corrupt or truncated (MD5 {actual}, expected {md5}); "
            "the file was left untouched: delete it and download it again"
        )


class _WrongBytes(Exception):
    """A mirror answered with a file of another MD5 (an error page, a moved file)."""


def download_file(urls: str | Sequence[str], path: Path, md5: str, *, dataset: str) -> None:
    """Download ``path`` from the first mirror that works, atomically, and check its MD5.

    The bytes go to a staging file beside ``path`` (:func:`~lightning_cv._io.atomic_write`)
    that takes the real name only once the MD5 matches, so an interrupted or wrong download
    never leaves a file under the real name; what a killed one left is removed next time. A
    file already at ``path`` is kept: verified if good, reported if not.
    """
    if path.exists():
        verify_md5(path, md5, dataset=dataset)
        return
    remove_stale_staging(path.parent)
    errors = []
    for url in [urls] if isinstance(urls, str) else urls:
        try:
            with atomic_write(path) as staging:
                download_url_to_file(url, str(staging))
                actual = calculate_md5(staging)
                if actual != md5:
                    raise _WrongBytes(f"{url} sent a file with MD5 {actual}, expected {md5}")
            return
        except OSError as error:  # no network, HTTP error, refused connection
            errors.append(f"{url}: {error}")
        except _WrongBytes as error:
            errors.append(str(error))
    raise DataFileError(
        f"{dataset}: could not download {path.name} (nothing was saved): {'; '.join(errors)}"
    )


def safe_extract(archive: Path, folder: Path) -> None:
    """Unpack a tar or zip archive into ``folder``, all or nothing.

    Members are checked by tarfile's ``data`` filter (Python's rules for untrusted archives:
    nothing outside ``folder``, no links leaving it, no device files) before anything is
    written. Refused too: an absolute name (the filter would quietly make it relative), a
    ``..`` that stays inside (zipfile would write the member elsewhere) and a member that
    would replace a file already in ``folder``. Zip members go through the same check;
    zipfile writes them as plain files, cleaning their names again.

    Raises:
        DataFileError: naming the archive and every refused member.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            members = [tarfile.TarInfo(name) for name in bundle.namelist()]
            _check_members(archive, folder, [m for m in members if not m.name.endswith("/")])
            bundle.extractall(folder)
        return
    if not hasattr(tarfile, "data_filter"):  # added in Python 3.10.12 and 3.11.4
        raise DataFileError(
            f"{str(archive)!r}: this Python lacks tarfile's data filter, needed to unpack "
            "archives safely; use Python 3.10.12, 3.11.4 or newer"
        )
    with tarfile.open(archive) as bundle:
        members = bundle.getmembers()
        _check_members(archive, folder, members)
        bundle.extractall(folder, filter="data")


def _check_members(archive: Path, folder: Path, members: list[tarfile.TarInfo]) -> None:
    refused = []
    for member in members:
        try:
            kept = tarfile.data_filter(member, str(folder))
        except tarfile.FilterError as error:
            refused.append(str(error))
            continue
        if kept.name != member.name:  # the filter strips a leading "/"
            refused.append(f"member {member.name!r} has an absolute path")
        elif ".." in member.name.split("/"):  # inside, but zipfile would write it elsewhere
            refused.append(f"member {member.name!r} has '..' in its path")
    if refused:
        raise DataFileError(f"{str(archive)!r}: refusing to unpack: {'; '.join(refused)}")
    existing = [m.name for m in members if not m.isdir() and (folder / m.name).exists()]
    if existing:
        shown = ", ".join(repr(str(folder / name)) for name in existing[:3])
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise DataFileError(
            f"{str(archive)!r}: refusing to unpack over files that are already there: "
            f"{shown}{more}; move them away or unpack into an empty folder"
        )
