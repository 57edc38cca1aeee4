"""Where a zoo checkpoint file comes from (cache, bundled copy, W&B, https URL), and its weights.

Every file is checked against the manifest's sha256 before it is used:

* a cached file that does not match is removed from the cache (and the error says so);
* a bundled file that does not match is refused but never deleted (it belongs to the clone
  or the installed package);
* a downloaded file is staged beside the cache and moved into it only once it matches.

Nothing here imports Lightning or :mod:`lightning_cv.task`: :class:`~lightning_cv.ImageClassifier`
loads zoo weights through :func:`load_backbone_weights`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from lightning_cv._checkpoint import read_checkpoint
from lightning_cv._io import atomic_write, cache_root, sha256_file
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.zoo.manifest import ZooEntry, get_entry, manifest_path
from lightning_cv.zoo.wandb_artifacts import download_artifact

__all__ = [
    "cache_folder",
    "cached_path",
    "checkpoint_file",
    "fetch",
    "load_backbone_weights",
    "local_file",
    "read_zoo_checkpoint",
]

log = logging.getLogger(__name__)


def cache_folder() -> Path:
    """Where downloaded checkpoints are kept: ``cache_root() / "zoo"``.

    Example:
        >>> cache_folder().name
        'zoo'
    """
    return cache_root() / "zoo"


def cached_path(entry: ZooEntry) -> Path:
    """The cache file of ``entry``; its name holds the hash, so a new version never collides."""
    return cache_folder() / f"{entry.name}-{entry.sha256[:12]}.ckpt"


def _verified(entry: ZooEntry, path: Path, what: str, consequence: str) -> Path:
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise DataFileError(
            f"zoo entry {entry.name!r}: {what} has sha256 {actual}, the manifest states "
            f"{entry.sha256}; {consequence}"
        )
    return path


def local_file(entry: ZooEntry, *, bundled_root: str | Path) -> Path | None:
    """The verified cached or bundled file of ``entry``, or None when neither is there."""
    cached = cached_path(entry)
    if cached.is_file():
        try:
            return _verified(entry, cached, f"cached file {str(cached)!r}", "it was damaged or "
                             "tampered with and has been removed from the cache; run again to "
                             "fetch a fresh copy")  # fmt: skip
        except DataFileError:
            cached.unlink()
            raise
    bundled = Path(bundled_root) / entry.file if entry.file is not None else None
    if bundled is not None and bundled.is_file():
        consequence = "the file was changed: restore it (git checkout, or reinstall lightning-cv)"
        return _verified(entry, bundled, f"bundled file {str(bundled)!r}", consequence)
    return None


def fetch(entry: ZooEntry, *, bundled_root: str | Path) -> Path:
    """The verified checkpoint file of ``entry``: cached, bundled, or downloaded into the cache.

    Raises:
        DataFileError: a cached, bundled or downloaded file with another hash, an entry with
            no source, or every source failing (each reason named).
    """
    local = local_file(entry, bundled_root=bundled_root)
    if local is not None:
        return local
    if entry.wandb is None and entry.url is None:
        reason = "it is not bundled" if entry.file is None else f"{entry.file!r} is missing"
        raise DataFileError(
            f"zoo entry {entry.name!r} cannot be loaded: {reason} and it has no W&B artifact "
            "or URL (not published yet)"
        )
    errors = []
    for source, download in ((entry.wandb, download_artifact), (entry.url, _download_url)):
        if source is None:
            continue
        cached = cached_path(entry)
        with atomic_write(cached) as staging:
            try:
                download(source, entry, staging)
            except (OSError, ValueError, RuntimeError) as error:  # ValueError: DataFileError too
                errors.append(f"{source}: {' '.join(str(error).split())}")
                continue
            _verified(entry, staging, f"the file from {source}", "nothing was saved to the cache")
        log.info("zoo entry %s: saved %s from %s", entry.name, cached, source)
        return cached
    raise DataFileError(f"zoo entry {entry.name!r}: could not download it: {'; '.join(errors)}")


def _download_url(url: str, entry: ZooEntry, destination: Path) -> None:
    """Stream ``url`` to ``destination`` with torch.hub, which checks the hash as it reads (the
    caller checks the finished file again)."""
    torch.hub.download_url_to_file(url, str(destination), hash_prefix=entry.sha256, progress=False)


def checkpoint_file(name: str, manifest: str | Path | None = None) -> Path:
    """The verified checkpoint file of an entry (cache, bundled copy, W&B or URL).

    Example:
        >>> checkpoint_file("lenet5.mnist").name
        'lenet5.mnist.ckpt'
    """
    return fetch(get_entry(name, manifest), bundled_root=manifest_path(manifest).parent)


def read_zoo_checkpoint(path: str | Path) -> dict[str, Any]:
    """:func:`~lightning_cv._checkpoint.read_checkpoint`, and a registry backbone's name in
    its hyperparameters, as every zoo checkpoint has."""
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

    Args:
        name: an entry name, e.g. ``"lenet5.mnist"``.
        architecture: the registry name the weights are for; another entry's architecture
            raises.
        manifest: another manifest file.

    Returns:
        ``(state_dict, hparams)``: the backbone's parameters and buffers (keys without the
        ``backbone.`` prefix) and the checkpoint's ``hyper_parameters`` (``backbone``,
        ``backbone_kwargs``, ``num_classes``, ``in_channels``, ``image_size``, ``class_names``).

    Raises:
        ConfigError: an unknown name, or weights of another architecture.
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
    prefix = "backbone."
    state = {
        key.removeprefix(prefix): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
    return state, hparams
