"""Upload a registered zoo checkpoint to Weights & Biases as a model artifact.

The artifact carries the entry's manifest record as metadata (metrics, recipe, sha256, class
names...). W&B gives every upload the aliases ``latest`` and ``v<N>``; the manifest names
the immutable ``v<N>``, and only after an upload that really happened: with
``WANDB_MODE=offline`` the artifact is staged in the offline run folder and
:func:`publish_checkpoint` returns no artifact name.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from lightning_cv.errors import ConfigError
from lightning_cv.zoo.hub import sha256_file
from lightning_cv.zoo.manifest import ZooEntry

__all__ = ["Published", "publish_checkpoint"]


class Published(NamedTuple):
    """What :func:`publish_checkpoint` did."""

    artifact: str | None  # "entity/project/name:v<N>", or None when W&B was offline
    run_dir: Path  # the W&B run folder (the staged artifact, offline)


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
        ConfigError: a file whose sha256 is not the entry's.

    Example:
        >>> publish_checkpoint(path, get_entry("lenet5.mnist"), entity="me", project="zoo")  # doctest: +SKIP
        Published(artifact='me/zoo/lenet5.mnist:v0', run_dir=PosixPath('wandb/run-.../files'))
    """  # noqa: E501
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
    import wandb  # imported on use: lightning-cv never imports wandb unless asked to publish

    metadata = {k: v for k, v in entry.to_dict().items() if k not in ("file", "wandb", "url")}
    run = wandb.init(entity=entity, project=project, job_type="zoo-publish", name=entry.name)
    try:
        artifact = wandb.Artifact(
            entry.name,
            type="model",
            description=f"{entry.architecture} on {entry.dataset}: "
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
