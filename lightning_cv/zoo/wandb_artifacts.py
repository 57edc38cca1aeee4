"""Zoo checkpoints as Weights & Biases model artifacts: download one, or publish one.

The artifact carries the entry's manifest record as metadata. W&B gives every upload the
aliases ``latest`` and ``v<N>``; the manifest names the immutable ``v<N>``, and only after an
upload that really happened: with ``WANDB_MODE=offline`` the artifact is staged in the offline
run folder and :func:`publish_checkpoint` returns no artifact name.

``wandb`` is imported inside the two functions: lightning-cv never imports it (a slow import)
unless a W&B source or ``zoo publish`` is used.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple

from lightning_cv._io import sha256_file
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.zoo.manifest import ZooEntry

__all__ = ["Published", "download_artifact", "publish_checkpoint"]


class Published(NamedTuple):
    """What :func:`publish_checkpoint` did."""

    artifact: str | None  # "entity/project/name:v<N>", or None when W&B was offline
    run_dir: Path  # the W&B run folder (the staged artifact, offline)


def download_artifact(artifact: str, entry: ZooEntry, destination: Path) -> None:
    """Download the W&B model artifact holding ``<entry.name>.ckpt`` to ``destination``.

    Raises:
        DataFileError: no such artifact, no access, or an artifact without that file.
    """
    import wandb  # on use only (module docstring)

    folder = destination.parent / f".{destination.name}.artifact"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        wandb.Api().artifact(artifact, type="model").download(root=str(folder))
    except wandb.errors.Error as error:  # no such artifact, no access, not logged in
        raise DataFileError(str(error)) from error
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
    """Log ``checkpoint`` as the W&B model artifact ``entity/project/<entry.name>``.

    Args:
        checkpoint: the clean file ``lightning-cv zoo register`` wrote for ``entry``.
        entry: its manifest entry.
        entity: the W&B user or team.
        project: the W&B project.

    Returns:
        The artifact name to put in the manifest (None offline) and the run folder.

    Raises:
        ConfigError: a missing file, or one whose sha256 is not the entry's.
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
    import wandb  # on use only (module docstring)

    metadata = entry.model_dump(exclude_none=True, exclude={"file", "wandb", "url"})
    run = wandb.init(entity=entity, project=project, job_type="zoo-publish", name=entry.name)
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
