"""Honest file handling: clear errors for bad files, atomic downloads, safe unpacking.

Nothing here deletes or overwrites a file the user already has.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from torchvision.datasets.utils import calculate_md5, download_url

from lightning_cv.errors import DataFileError

__all__ = ["download_file", "require_files", "safe_extract", "verify_md5"]


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


def download_file(urls: str | Sequence[str], path: Path, md5: str, *, dataset: str) -> None:
    """Download ``path`` from the first mirror that works, atomically, and check its MD5.

    The bytes go to a temporary folder beside ``path`` and are renamed into place only once
    the MD5 matches, so an interrupted download never leaves a partial file under the real
    name. A file already at ``path`` is kept: verified if good, reported if not.
    """
    if path.exists():
        verify_md5(path, md5, dataset=dataset)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in [urls] if isinstance(urls, str) else urls:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as staging:
            try:
                download_url(url, staging, filename=path.name)
            except OSError as error:  # no network, HTTP error, refused connection
                errors.append(f"{url}: {error}")
                continue
            actual = calculate_md5(Path(staging) / path.name)
            if actual != md5:
                errors.append(f"{url} sent a file with MD5 {actual}, expected {md5}")
                continue
            os.replace(Path(staging) / path.name, path)
            return
    raise DataFileError(
        f"{dataset}: could not download {path.name} (nothing was saved): {'; '.join(errors)}"
    )


def safe_extract(archive: Path, folder: Path) -> None:
    """Unpack a tar or zip archive, refusing members with absolute paths, ``..`` or links, and
    members that would replace a file already in ``folder`` (nothing is unpacked then)."""
    folder.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            _check_member_names(archive, bundle.namelist())
            files = [name for name in bundle.namelist() if not name.endswith("/")]
            _refuse_replacing(archive, folder, files)
            bundle.extractall(folder)
        return
    with tarfile.open(archive) as bundle:
        members = bundle.getmembers()
        _check_member_names(archive, [member.name for member in members])
        links = [member.name for member in members if member.issym() or member.islnk()]
        if links:
            raise DataFileError(f"{str(archive)!r}: refusing to unpack links {links}")
        _refuse_replacing(archive, folder, [member.name for member in members if member.isfile()])
        bundle.extractall(folder, filter="data")


def _refuse_replacing(archive: Path, folder: Path, names: list[str]) -> None:
    existing = [name for name in names if (folder / name).exists()]
    if existing:
        shown = ", ".join(repr(str(folder / name)) for name in existing[:3])
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise DataFileError(
            f"{str(archive)!r}: refusing to unpack over files that are already there: "
            f"{shown}{more}; move them away or unpack into an empty folder"
        )


def _check_member_names(archive: Path, names: list[str]) -> None:
    unsafe = [name for name in names if Path(name).is_absolute() or ".." in Path(name).parts]
    if unsafe:
        raise DataFileError(
            f"{str(archive)!r}: refusing to unpack members outside the target folder: {unsafe}"
        )
