"""Zoo checkpoints as Weights & Biases model artifacts: download one, or publish one.

The artifact carries the entry's manifest record as metadata. W&B gives every upload the
aliases ``latest`` and ``v<N>``; the manifest names the immutable ``v<N>``, and only after an
upload that really happened: with ``WANDB_MODE=offline`` the artifact is staged in the offline
run folder and :func:`publish_checkpoint` returns no artifact name.

``wandb`` is imported inside :func:`_connect`: lightning-cv never imports it (a slow import)
unless a W&B source or ``zoo publish`` is used. Before any network call, what cannot reach a
server fails in one line: offline mode (``WANDB_MODE=offline``) for a download, and a missing
API key (neither ``WANDB_API_KEY`` nor a ``wandb login`` entry in ``~/.netrc``). W&B then gets
:data:`TIMEOUT_S` seconds to answer (``wandb.Api(timeout=)``, ``wandb.Settings(init_timeout=)``)
instead of its default of about two minutes.
"""

from __future__ import annotations

import netrc
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NamedTuple
from urllib.parse import urlparse

from lightning_cv._io import sha256_file
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.zoo.manifest import ZooEntry

__all__ = ["TIMEOUT_S", "Published", "download_artifact", "publish_checkpoint"]

TIMEOUT_S = 15  # seconds W&B may take to answer before a zoo command gives up
OFFLINE_MODES = ("offline", "dryrun", "disabled")


class Published(NamedTuple):
    """What :func:`publish_checkpoint` did."""

    artifact: str | None  # "entity/project/name:v<N>", or None when W&B was offline
    run_dir: Path  # the W&B run folder (the staged artifact, offline)


def _base_url() -> str:
    return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


def _has_api_key() -> bool:
    """Whether W&B has credentials here: ``WANDB_API_KEY``, an identity token file, or the
    ``~/.netrc`` (``$NETRC``) entry for the server that ``wandb login`` writes."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        return netrc.netrc(path).authenticators(urlparse(_base_url()).hostname) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def _connect(action: str, *, offline_ok: bool = False) -> ModuleType:
    """``wandb``, once offline mode and a missing key have been refused in one line."""
    mode = os.environ.get("WANDB_MODE", "")
    if mode in OFFLINE_MODES and not offline_ok:
        raise ConfigError(
            f"{action} needs a W&B server, but W&B is in offline mode (WANDB_MODE={mode})"
        )
    if mode not in OFFLINE_MODES and not _has_api_key():
        raise ConfigError(
            f"{action} needs a W&B API key for {_base_url()}: run `wandb login` or set "
            "WANDB_API_KEY"
        )
    import wandb  # on use only (module docstring)

    return wandb


def _unreachable(action: str, error: Exception) -> ConfigError:
    detail = " ".join(str(error).split()) or "no answer"
    return ConfigError(
        f"{action}: W&B at {_base_url()} failed within {TIMEOUT_S} s ({type(error).__name__}: "
        f"{detail}); check the network, the API key and WANDB_BASE_URL"
    )


def download_artifact(artifact: str, entry: ZooEntry, destination: Path) -> None:
    """Download the W&B model artifact holding ``<entry.name>.ckpt`` to ``destination``.

    Raises:
        ConfigError: offline mode, no API key, or no answer within :data:`TIMEOUT_S`.
        DataFileError: an artifact without that file.
    """
    action = f"downloading the W&B artifact {artifact}"
    wandb = _connect(action)
    folder = destination.parent / f".{destination.name}.artifact"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        wandb.Api(timeout=TIMEOUT_S).artifact(artifact, type="model").download(root=str(folder))
    except wandb.errors.Error as error:  # no such artifact, no access, no answer
        raise _unreachable(action, error) from error
    try:
        path = folder / f"{entry.name}.ckpt"
        if not path.is_file():
            found = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
            raise DataFileError(f"the artifact holds {found}, not {path.name!r}")
        path.replace(destination)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish_checkpoint(
    checkpoint: str | Path, entry: ZooEntry, *, entity: str, project: str
) -> Published:
    """Log ``checkpoint`` (the clean file ``zoo register`` wrote for ``entry``) as the W&B model
    artifact ``entity/project/<entry.name>``; return the artifact name for the manifest (None
    offline) and the run folder.

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
    wandb = _connect(action, offline_ok=True)  # offline, the artifact is staged for `wandb sync`
    metadata = entry.model_dump(exclude_none=True, exclude={"file", "wandb", "url"})
    try:
        run = wandb.init(
            entity=entity,
            project=project,
            job_type="zoo-publish",
            name=entry.name,
            settings=wandb.Settings(init_timeout=TIMEOUT_S),
        )
    except wandb.errors.Error as error:
        raise _unreachable(action, error) from error
    try:
        artifact = wandb.Artifact(
            entry.name,
            type="model",
            description=f"{entry.name} on {entry.dataset}: "
            f"top-1 {entry.metrics.top1:.2f}% on the official test split",
            metadata=metadata,
        )
        artifact.add_file(str(checkpoint), name=f"{entry.name}.ckpt")
        logged = run.log_artifact(artifact, aliases=["latest"])
        if run.offline:
            return Published(None, Path(run.dir).parent)
        logged.wait()  # the server assigns v<N>
        return Published(f"{entity}/{project}/{entry.name}:{logged.version}", Path(run.dir).parent)
    finally:
        run.finish()
