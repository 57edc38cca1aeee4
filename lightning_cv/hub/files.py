"""Zoo checkpoint files (cache, bundled copy, W&B artifact, https URL) and their weights.
Neither Lightning nor the task is imported here (the model builder,
:func:`lightning_cv.models.create_model`, loads zoo weights through
:func:`load_backbone_weights`).

Every file is checked against the manifest's sha256: a cached file that does not match is
removed, a bundled one refused but kept, and a download enters the cache only once it matches.
W&B is reached through :mod:`~lightning_cv.hub.wandb_api` (one-line failures, a timeout).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from lightning_cv._checkpoint import read_checkpoint
from lightning_cv._io import atomic_write, cache_root, remove_stale_staging, sha256_file
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.manifest import ZooEntry, get_entry, manifest_path
from lightning_cv.hub.wandb_api import TIMEOUT_S, download_artifact

__all__ = ["TIMEOUT_S", "cached_path", "checkpoint_file", "load_backbone_weights",
           "read_zoo_checkpoint"]  # fmt: skip


def cached_path(entry: ZooEntry) -> Path:
    """The cache file of ``entry``; its name holds the hash, so a new version never collides."""
    return cache_root() / "zoo" / f"{entry.name}-{entry.sha256[:12]}.ckpt"


def _verified(entry: ZooEntry, path: Path, what: str, consequence: str) -> Path:
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise DataFileError(
            f"zoo entry {entry.name!r}: {what} has sha256 {actual}, the manifest states "
            f"{entry.sha256}; {consequence}"
        )
    return path


def _local(entry: ZooEntry, bundled_root: Path) -> Path | None:
    """The verified cached or bundled file, or None when neither is there."""
    cached = cached_path(entry)
    if cached.is_file():
        try:
            return _verified(entry, cached, f"cached file {str(cached)!r}", "it was damaged or "
                             "tampered with and has been removed from the cache; run again to "
                             "fetch a fresh copy")  # fmt: skip
        except DataFileError:
            cached.unlink()
            raise
    bundled = bundled_root / entry.file if entry.file is not None else None
    if bundled is not None and bundled.is_file():
        consequence = "the file was changed: restore it (git checkout, or reinstall lightning-cv)"
        return _verified(entry, bundled, f"bundled file {str(bundled)!r}", consequence)
    return None


def _download(entry: ZooEntry) -> Path:
    """Its W&B artifact, else its URL, moved into the cache once the sha256 matches."""
    if entry.wandb is None and entry.url is None:
        reason = "it is not bundled" if entry.file is None else f"{entry.file!r} is missing"
        raise DataFileError(
            f"zoo entry {entry.name!r} cannot be loaded: {reason} and it has no W&B artifact "
            "or URL (not published yet)"
        )
    cached = cached_path(entry)
    remove_stale_staging(cached.parent)  # what a killed download left
    errors = []
    for source, download in ((entry.wandb, _download_artifact), (entry.url, _download_url)):
        if source is None:
            continue
        try:  # the exception leaves atomic_write: a failed download leaves nothing behind
            with atomic_write(cached) as staging:
                try:
                    download(source, entry, staging)
                except (OSError, ValueError, RuntimeError) as error:  # ValueError: ConfigError
                    raise _Unavailable(f"{source}: {' '.join(str(error).split())}") from error
                _verified(entry, staging, f"the file from {source}", "nothing was saved to the "
                          "cache")  # fmt: skip
        except _Unavailable as error:
            errors.append(str(error))
            continue
        return cached
    raise DataFileError(f"zoo entry {entry.name!r}: could not download it: {'; '.join(errors)}")


class _Unavailable(Exception):
    """A source that could not be reached or did not hold the file; the next one is tried."""


def _download_url(url: str, entry: ZooEntry, destination: Path) -> None:
    torch.hub.download_url_to_file(url, str(destination), hash_prefix=entry.sha256, progress=False)


def _download_artifact(artifact: str, entry: ZooEntry, destination: Path) -> None:
    # beside the staging file, named after it: remove_stale_staging knows it
    prefix = f"{destination.name}."
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=prefix) as folder:
        path, _ = download_artifact(artifact, Path(folder))
        os.replace(path, destination)


def checkpoint_file(
    name: str | ZooEntry, manifest: str | Path | None = None, *, download: bool = True
) -> Path | None:
    """The verified file of an entry (or its name): cached, bundled, or downloaded into the
    cache; with ``download=False``, None for a file that is not here.

    Raises:
        DataFileError: a file with another sha256, an entry with no source, or every source
            failing (each reason named).

    Example:
        >>> checkpoint_file("lenet5.mnist").name
        'lenet5.mnist.ckpt'
    """
    entry = name if isinstance(name, ZooEntry) else get_entry(name, manifest)
    local = _local(entry, manifest_path(manifest).parent)
    return local if local is not None or not download else _download(entry)


def read_zoo_checkpoint(path: str | Path) -> dict[str, Any]:
    """:func:`~lightning_cv._checkpoint.read_checkpoint`, requiring a registry backbone."""
    checkpoint = read_checkpoint(path)
    if not isinstance((checkpoint.get("hyper_parameters") or {}).get("backbone"), str):
        raise DataFileError(
            f"checkpoint {str(path)!r} is not an ImageClassifier checkpoint with a registry "
            "backbone (expected hyper_parameters with a backbone name)"
        )
    return checkpoint


def load_backbone_weights(
    name: str, *, architecture: str | None = None, manifest: str | Path | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The backbone's weights of a zoo entry and the hyperparameters it was trained with.

    Returns:
        ``(state_dict, hparams)``: the backbone's tensors (keys without ``backbone.``) and the
        checkpoint's ``hyper_parameters`` (``backbone``, ``backbone_kwargs``, ``num_classes``,
        ``in_channels``, ``image_size``, ``class_names``).

    Raises:
        ConfigError: an unknown name, or weights of another ``architecture`` than asked for.
        DataFileError: a file that cannot be fetched, has another sha256 or is unsafe.

    Example:
        >>> state, hparams = load_backbone_weights("lenet5.mnist")
        >>> hparams["backbone"], state["head.weight"].shape
        ('lenet5', torch.Size([10, 84]))
    """
    checkpoint = read_zoo_checkpoint(checkpoint_file(name, manifest))
    hparams = checkpoint["hyper_parameters"]
    if architecture is not None and architecture != hparams["backbone"]:
        raise ConfigError(
            f"zoo weights {name!r} are for {hparams['backbone']!r}, not {architecture!r}"
        )
    weights = checkpoint["state_dict"].items()
    return {
        k.removeprefix("backbone."): v for k, v in weights if k.startswith("backbone.")
    }, hparams
