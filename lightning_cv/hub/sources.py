"""Where a model comes from: one resolver from a source string to a verified local checkpoint.

The accepted forms, tried in this order:

- an ``https://`` URL with its sha256, as ``#sha256=<64 hex digits>`` or ``sha256=``
  (``http://`` only for ``localhost`` and ``127.0.0.1``);
- a W&B Registry path, ``wandb-registry-model/<collection>:<alias>`` (an organization may
  lead: ``<org>/wandb-registry-model/...``);
- a W&B artifact, ``<entity>/<project>/<name>:<alias>``;
- a checkpoint file, ``*.ckpt`` (or any existing file);
- a zoo name, ``<arch>.<dataset>`` (e.g. ``lenet5.mnist``).

Downloads enter the cache (:func:`lightning_cv._io.cache_root`) ``downloads/`` folder only
once their sha256 matches, under a name that starts with it, so a file is fetched once.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch

from lightning_cv._io import (
    STAGING_MARK,
    atomic_write,
    cache_root,
    remove_stale_staging,
    sha256_file,
)
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.files import checkpoint_file
from lightning_cv.hub.manifest import NAME_PATTERN, ZooEntry, get_entry
from lightning_cv.hub.wandb_api import download_artifact

__all__ = ["SOURCE_FORMS", "resolve_source"]

SOURCE_FORMS = (
    "a zoo name (arch.dataset, e.g. lenet5.mnist), a .ckpt file, an https:// URL with "
    "#sha256=<hex>, a W&B artifact entity/project/name:alias or a W&B Registry path "
    "wandb-registry-model/collection:alias"
)
_PART = r"[\w.-]+"
_REGISTRY = re.compile(rf"^(?:{_PART}/)?wandb-registry-{_PART}/{_PART}:{_PART}$")
_ARTIFACT = re.compile(rf"^{_PART}/{_PART}/{_PART}:{_PART}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LOCAL_HOSTS = ("localhost", "127.0.0.1")


def resolve_source(
    source: str | Path, *, sha256: str | None = None, manifest: str | Path | None = None
) -> tuple[Path, ZooEntry | None]:
    """The verified local checkpoint of ``source`` and its zoo entry (None when it has none).

    Args:
        source: one of the forms in this module's docstring (:data:`SOURCE_FORMS`).
        sha256: the file's expected sha256; required for a URL (or in its ``#sha256=``),
            checked for every other form when given.
        manifest: another zoo manifest, for zoo names.

    Raises:
        ConfigError: a source of no accepted form, a URL without its sha256, or W&B offline,
            without a key or not answering.
        DataFileError: a missing file, a download that fails, or another sha256.

    Example:
        >>> path, entry = resolve_source("lenet5.mnist")
        >>> path.name, entry.dataset
        ('lenet5.mnist.ckpt', 'MNIST')
    """
    if sha256 is not None and not _SHA256.match(sha256):
        raise ConfigError(f"sha256 {sha256!r} is not 64 lowercase hex digits")
    text = str(source)
    if isinstance(source, str) and "://" in text:
        return _from_url(text, sha256), None
    if isinstance(source, str) and (_REGISTRY.match(text) or _ARTIFACT.match(text)):
        return _from_wandb(text, sha256)
    if isinstance(source, Path) or text.endswith(".ckpt") or os.path.isfile(text):
        return _checked(_local_file(Path(source)), sha256, text), None
    if re.match(NAME_PATTERN, text):
        entry = get_entry(text, manifest)
        return _checked(checkpoint_file(entry, manifest), sha256, text), entry
    raise ConfigError(f"model source {text!r} is not {SOURCE_FORMS}")


def _checked(path: Path, sha256: str | None, source: str) -> Path:
    if sha256 is not None and (actual := sha256_file(path)) != sha256:
        raise DataFileError(f"{source}: the file {str(path)!r} has sha256 {actual}, not {sha256}")
    return path


def _local_file(path: Path) -> Path:
    if not path.is_file():
        raise DataFileError(f"checkpoint {str(path)!r} does not exist; expected {SOURCE_FORMS}")
    return path


def _url_and_sha256(url: str, sha256: str | None) -> tuple[str, str]:
    """The URL without its fragment and the one sha256 it must have."""
    address, _, fragment = url.partition("#")
    stated = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None
    if stated is not None and not _SHA256.match(stated):
        raise ConfigError(f"URL {url!r}: sha256 {stated!r} is not 64 lowercase hex digits")
    if stated and sha256 and stated != sha256:
        raise ConfigError(f"URL {url!r} states sha256 {stated}, but sha256= is {sha256}")
    if not (stated or sha256):
        raise ConfigError(
            f"URL {url!r} has no sha256: append #sha256=<64 hex digits> or pass sha256= (a "
            "download is kept only when its hash matches)"
        )
    parts = urlsplit(address)
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS)):
        raise ConfigError(
            f"URL {url!r} is not https:// (http:// is accepted only for localhost and 127.0.0.1)"
        )
    return address, stated or sha256


def _downloaded(sha256: str, name: str) -> Path:
    """The cache file of a download: its hash first, so another file never collides."""
    return cache_root() / "downloads" / f"{sha256[:16]}-{name}"


def _from_url(url: str, sha256: str | None) -> Path:
    address, sha256 = _url_and_sha256(url, sha256)
    cached = _downloaded(sha256, Path(urlsplit(address).path).name or "model.ckpt")
    if cached.is_file() and sha256_file(cached) == sha256:
        return cached
    remove_stale_staging(cached.parent)  # what a killed download left
    with atomic_write(cached) as staging:  # an exception leaves nothing in the cache
        try:
            torch.hub.download_url_to_file(address, str(staging), hash_prefix=sha256,
                                           progress=False)  # fmt: skip
        except (OSError, RuntimeError) as error:  # RuntimeError: torch.hub's hash check
            raise DataFileError(f"{address}: {' '.join(str(error).split())}") from error
    return cached


def _from_wandb(path: str, sha256: str | None) -> tuple[Path, ZooEntry | None]:
    folder = cache_root() / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(folder)
    # a staging name (see lightning_cv._io): remove_stale_staging clears what a kill left
    prefix = f".wandb{STAGING_MARK}{os.getpid()}-"
    with tempfile.TemporaryDirectory(dir=folder, prefix=prefix, suffix=".tmp") as download:
        file, artifact = download_artifact(path, Path(download))
        _checked(file, sha256, path)
        entry = _entry(artifact.metadata or {})
        actual = sha256_file(file)
        if entry is not None and actual != entry.sha256:
            raise DataFileError(
                f"{path}: the file has sha256 {actual}, its metadata states {entry.sha256}"
            )
        cached = _downloaded(actual, file.name)
        os.replace(file, cached)
    return cached, entry


def _entry(metadata: dict[str, Any]) -> ZooEntry | None:
    """The zoo entry that ``lightning-cv zoo publish`` stored in the artifact's metadata (it
    names a ``datamodule``), or None for another artifact (Lightning's ``log_model``...)."""
    if "datamodule" not in metadata:
        return None
    record = {key: value for key, value in metadata.items() if key in ZooEntry.model_fields}
    return ZooEntry.parse(record, source="the W&B artifact's metadata")
