"""Zoo checkpoint files (cache, bundled copy, W&B artifact, https URL), their weights, and
publishing one to W&B. Neither Lightning nor the task is imported here (the model builder,
:func:`lightning_cv.models.create_model`, loads zoo weights through
:func:`load_backbone_weights`); ``wandb``, a slow import, only on use.

Every file is checked against the manifest's sha256: a cached file that does not match is
removed, a bundled one refused but kept, and a download enters the cache only once it matches.
What cannot reach a W&B server fails in one line before any network call; then W&B gets
:data:`TIMEOUT_S` seconds to answer instead of its default of about two minutes.
"""

from __future__ import annotations

import netrc
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import torch

from lightning_cv._checkpoint import read_checkpoint
from lightning_cv._io import atomic_write, cache_root, remove_stale_staging, sha256_file
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.manifest import ZooEntry, get_entry, manifest_path

__all__ = ["TIMEOUT_S", "cached_path", "checkpoint_file", "load_backbone_weights",
           "publish_checkpoint", "read_zoo_checkpoint"]  # fmt: skip

TIMEOUT_S = 15  # seconds W&B may take to answer before a zoo command gives up
OFFLINE_MODES = ("offline", "dryrun", "disabled")


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


def _has_api_key(base_url: str) -> bool:
    """``WANDB_API_KEY``, an identity token file, or ``wandb login``'s entry in ``$NETRC``."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        return netrc.netrc(path).authenticators(urlparse(base_url).hostname) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _wandb(action: str, *, offline_ok: bool = False) -> tuple[ModuleType, str]:
    """``wandb`` and the server it dials, once offline mode and a missing key have been
    refused in one line. The server is W&B's own choice (``WANDB_BASE_URL``, ``wandb login
    --host``, else its default), so a message names the host it really dialled."""
    mode = os.environ.get("WANDB_MODE", "")
    if mode in OFFLINE_MODES and not offline_ok:
        raise ConfigError(
            f"{action} needs a W&B server, but W&B is in offline mode (WANDB_MODE={mode})"
        )
    import wandb  # on use only: a slow import (module docstring)

    # silent: the command's one line says what failed, not W&B's own lines around it
    base_url = wandb.setup(wandb.Settings(silent=True)).settings.base_url
    if mode not in OFFLINE_MODES and not _has_api_key(base_url):
        raise ConfigError(
            f"{action} needs a W&B API key for {base_url}: run `wandb login` or set WANDB_API_KEY"
        )
    return wandb, base_url


def _unreachable(action: str, base_url: str, error: Exception) -> ConfigError:
    detail = " ".join(str(error).split()) or "no answer"
    return ConfigError(
        f"{action}: W&B at {base_url} failed within {TIMEOUT_S} s ({type(error).__name__}: "
        f"{detail}); check the network, the API key and WANDB_BASE_URL"
    )


@contextmanager
def _cleaned_on_failure(folder: Path) -> Iterator[None]:
    """Remove what a failed W&B call left in ``folder`` (its ``wandb/`` run folders), and the
    folder itself if the call made it: a failed publish leaves the working folder as it was."""
    existed = folder.exists()
    before = set(os.listdir(folder)) if existed else set()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        elif folder.is_dir():
            for name in set(os.listdir(folder)) - before:
                path = folder / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


def _download_artifact(artifact: str, entry: ZooEntry, destination: Path) -> None:
    action = f"downloading the W&B artifact {artifact}"
    wandb, base_url = _wandb(action)
    # beside the staging file, named after it: remove_stale_staging knows it
    prefix = f"{destination.name}."
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=prefix) as folder:
        try:
            wandb.Api(timeout=TIMEOUT_S).artifact(artifact, type="model").download(root=folder)
        except wandb.errors.Error as error:  # no such artifact, no access, no answer
            raise _unreachable(action, base_url, error) from error
        path = Path(folder) / f"{entry.name}.ckpt"
        if not path.is_file():
            found = sorted(
                str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()
            )
            raise DataFileError(f"the artifact holds {found}, not {path.name!r}")
        os.replace(path, destination)


def publish_checkpoint(
    checkpoint: str | Path, entry: ZooEntry, *, entity: str, project: str
) -> tuple[str | None, Path]:
    """Log ``checkpoint`` (``zoo register``'s file for ``entry``) as the W&B model artifact
    ``entity/project/<entry.name>`` with the entry as metadata; return ``entity/project/
    name:v<N>`` (None offline: only staged for ``wandb sync``) and the run folder.

    Raises:
        ConfigError: a missing file or another sha256 than the entry's; no API key, or no
            answer from W&B within :data:`TIMEOUT_S` seconds.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ConfigError(f"checkpoint {str(checkpoint)!r} does not exist")
    actual = sha256_file(checkpoint)
    if actual != entry.sha256:
        raise ConfigError(
            f"checkpoint {str(checkpoint)!r} has sha256 {actual}, the entry {entry.name!r} states "
            f"{entry.sha256}; publish the file `lightning-cv zoo register` wrote "
            f"(`lightning-cv zoo download {entry.name}` prints its path)"
        )
    action = f"publishing {entry.name}"
    wandb, base_url = _wandb(action, offline_ok=True)
    metadata = entry.model_dump(exclude_none=True, exclude={"file", "wandb", "url"})
    settings = wandb.Settings(init_timeout=TIMEOUT_S, silent=True)
    runs = Path(os.environ.get("WANDB_DIR") or os.getcwd()) / "wandb"  # where init writes
    with _cleaned_on_failure(runs):
        try:
            run = wandb.init(entity=entity, project=project, job_type="zoo-publish",
                             name=entry.name, settings=settings)  # fmt: skip
        except wandb.errors.Error as error:
            raise _unreachable(action, base_url, error) from error
        try:
            description = f"{entry.name} on {entry.dataset}: top-1 {entry.metrics.acc:.2f}%"
            artifact = wandb.Artifact(entry.name, type="model", description=description,
                                      metadata=metadata)  # fmt: skip
            artifact.add_file(str(checkpoint), name=f"{entry.name}.ckpt")
            logged = run.log_artifact(artifact, aliases=["latest"])
            if run.offline:
                return None, Path(run.dir).parent
            logged.wait()  # the server assigns v<N>
            return f"{entity}/{project}/{entry.name}:{logged.version}", Path(run.dir).parent
        finally:
            run.finish()
