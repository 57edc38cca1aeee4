"""Where a zoo checkpoint file comes from: the cache, the bundled copy, W&B or an https URL.

Every file is checked against the manifest's sha256 before it is used:

* a cached file that does not match is removed from the cache (and the error says so);
* a bundled file that does not match is refused but never deleted (it belongs to the clone
  or the installed package);
* a downloaded file is staged beside the cache and moved into it only once it matches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from lightning_cv.errors import DataFileError
from lightning_cv.zoo.manifest import ZooEntry

__all__ = ["cache_folder", "cached_path", "fetch", "sha256_file"]

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60


def cache_folder() -> Path:
    """Where downloaded checkpoints are kept: ``$LIGHTNING_CV_HOME/zoo``, else the platform's
    user cache (``platformdirs``, when installed) or ``~/.cache/lightning_cv``, plus ``/zoo``.

    Example:
        >>> cache_folder().name
        'zoo'
    """
    home = os.environ.get("LIGHTNING_CV_HOME")
    if home:
        return Path(home) / "zoo"
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".cache" / "lightning_cv" / "zoo"
    return platformdirs.user_cache_path("lightning_cv") / "zoo"


def cached_path(entry: ZooEntry) -> Path:
    """The cache file of ``entry``; its name holds the hash, so a new version never collides."""
    return cache_folder() / f"{entry.name}-{entry.sha256[:12]}.ckpt"


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


def _mismatch(entry: ZooEntry, what: str, actual: str, consequence: str) -> DataFileError:
    return DataFileError(
        f"zoo entry {entry.name!r}: {what} has sha256 {actual}, the manifest states "
        f"{entry.sha256}; {consequence}"
    )


def fetch(entry: ZooEntry, *, bundled_root: str | Path) -> Path:
    """The verified checkpoint file of ``entry``: cached, bundled, or downloaded into the cache.

    Args:
        entry: the zoo entry.
        bundled_root: the folder ``entry.file`` is relative to (the manifest's folder).

    Returns:
        The path of a file whose sha256 is the manifest's.

    Raises:
        DataFileError: a cached, bundled or downloaded file with another hash, an entry with
            no source, or every source failing (each reason named).

    Example:
        >>> fetch(get_entry("lenet5.mnist"), bundled_root=PACKAGE_MANIFEST.parent)  # doctest: +SKIP
        PosixPath('.../lightning_cv/zoo/checkpoints/lenet5.mnist.ckpt')
    """
    cached = cached_path(entry)
    if cached.is_file():
        actual = sha256_file(cached)
        if actual != entry.sha256:
            cached.unlink()
            raise _mismatch(
                entry,
                f"cached file {str(cached)!r}",
                actual,
                "it was damaged or tampered with and has been removed from the cache; run "
                "again to fetch a fresh copy",
            )
        return cached
    if entry.file is not None:
        bundled = Path(bundled_root) / entry.file
        if bundled.is_file():
            actual = sha256_file(bundled)
            if actual != entry.sha256:
                raise _mismatch(
                    entry,
                    f"bundled file {str(bundled)!r}",
                    actual,
                    "the file was changed: restore it (git checkout, or reinstall lightning-cv)",
                )
            return bundled
    downloads = [(entry.wandb, _download_wandb), (entry.url, _download_url)]
    if not any(source for source, _ in downloads):
        reason = "it is not bundled" if entry.file is None else f"{entry.file!r} is missing"
        raise DataFileError(
            f"zoo entry {entry.name!r} cannot be loaded: {reason} and it has no W&B artifact "
            "or URL (not published yet)"
        )
    errors = []
    for source, download in downloads:
        if source is None:
            continue
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cached.parent, prefix=".download-") as staging:
            try:
                path = download(entry, Path(staging))
            except (OSError, ValueError) as error:  # ValueError: DataFileError too
                errors.append(f"{source}: {' '.join(str(error).split())}")
                continue
            actual = sha256_file(path)
            if actual != entry.sha256:
                raise _mismatch(
                    entry, f"the file from {source}", actual, "nothing was saved to the cache"
                )
            os.replace(path, cached)
        log.info("zoo entry %s: saved %s from %s", entry.name, cached, source)
        return cached
    raise DataFileError(f"zoo entry {entry.name!r}: could not download it: {'; '.join(errors)}")


def _download_wandb(entry: ZooEntry, staging: Path) -> Path:
    """Download the W&B artifact into ``staging``; return its ``<name>.ckpt``."""
    import wandb  # imported on use: lightning-cv never imports wandb unless a W&B source is used

    try:
        folder = wandb.Api().artifact(entry.wandb, type="model").download(root=str(staging))
    except wandb.errors.Error as error:  # no such artifact, no access, not logged in
        raise DataFileError(str(error)) from error
    path = Path(folder) / f"{entry.name}.ckpt"
    if not path.is_file():
        found = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
        raise DataFileError(f"the artifact holds {found}, not {path.name!r}")
    return path


def _download_url(entry: ZooEntry, staging: Path) -> Path:
    """Stream ``entry.url`` into ``staging``."""
    path = staging / f"{entry.name}.ckpt"
    with (
        urllib.request.urlopen(entry.url, timeout=DOWNLOAD_TIMEOUT_S) as response,
        open(path, "wb") as file,
    ):
        shutil.copyfileobj(response, file)
    return path
