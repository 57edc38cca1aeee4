"""W&B access for the zoo: what cannot reach a server fails in one line before any network call,
then W&B gets :data:`TIMEOUT_S` seconds to answer instead of its default of about two minutes.

``wandb``, a slow import, is imported on use only.
"""

from __future__ import annotations

import netrc
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

from lightning_cv.errors import ConfigError, DataFileError

__all__ = ["OFFLINE_MODES", "TIMEOUT_S", "cleaned_on_failure", "connect", "download_artifact",
           "unreachable"]  # fmt: skip

TIMEOUT_S = 15  # seconds W&B may take to answer before a zoo command gives up
OFFLINE_MODES = ("offline", "dryrun", "disabled")


def _has_api_key(base_url: str) -> bool:
    """``WANDB_API_KEY``, an identity token file, or ``wandb login``'s entry in ``$NETRC``."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc").expanduser()
    try:
        return netrc.netrc(path).authenticators(urlparse(base_url).hostname) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def connect(action: str, *, offline_ok: bool = False) -> tuple[ModuleType, str]:
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


def unreachable(action: str, base_url: str, error: Exception) -> ConfigError:
    """The one line for a W&B call that failed or did not answer in time."""
    detail = " ".join(str(error).split()) or "no answer"
    return ConfigError(
        f"{action}: W&B at {base_url} failed within {TIMEOUT_S} s ({type(error).__name__}: "
        f"{detail}); check the network, the API key and WANDB_BASE_URL"
    )


@contextmanager
def cleaned_on_failure(folder: Path) -> Iterator[None]:
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


def download_artifact(path: str, folder: Path) -> tuple[Path, Any]:
    """Download the ``model`` artifact ``path`` (``entity/project/name:alias`` or
    ``wandb-registry-model/collection:alias``) into ``folder``; return its one ``.ckpt`` file
    and the ``wandb.Artifact`` (its ``metadata``, ``version``...). Inside an active run
    (``wandb.run``) the artifact is the run's input (``run.use_artifact``): W&B records the
    lineage.

    Raises:
        ConfigError: offline, no API key, or W&B failing or silent for :data:`TIMEOUT_S` s.
        DataFileError: an artifact without exactly one ``.ckpt`` file.
    """
    action = f"downloading the W&B artifact {path}"
    wandb, base_url = connect(action)
    run = wandb.run
    if run is not None and run.offline:
        raise ConfigError(f"{action} needs a W&B server, but the active W&B run is offline")
    try:
        if run is not None:
            artifact = run.use_artifact(path, type="model")
        else:
            artifact = wandb.Api(timeout=TIMEOUT_S).artifact(path, type="model")
        artifact.download(root=str(folder))
    except wandb.errors.Error as error:  # no such artifact, no access, no answer
        raise unreachable(action, base_url, error) from error
    found = sorted(p for p in folder.rglob("*") if p.is_file())
    checkpoints = [p for p in found if p.suffix == ".ckpt"]
    if len(checkpoints) != 1:
        names = [str(p.relative_to(folder)) for p in found]
        raise DataFileError(f"the W&B artifact {path} holds {names}; expected one .ckpt file")
    return checkpoints[0], artifact
