"""Publishing a zoo checkpoint to W&B: a ``model`` artifact (the checkpoint, its model card as
``README.md``, the entry and the preprocessing as metadata) linked to a W&B Registry
collection, ``wandb-registry-model/<collection>``.

Offline (``WANDB_MODE=offline``) W&B stages the artifact in an offline run; it cannot link
offline, so the link is made by publishing again once online (the same bytes make no new
version).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_cv._io import sha256_file
from lightning_cv.errors import ConfigError
from lightning_cv.hub.files import read_zoo_checkpoint
from lightning_cv.hub.manifest import ZooEntry
from lightning_cv.hub.wandb_api import TIMEOUT_S, cleaned_on_failure, connect, unreachable

__all__ = ["MODEL_REGISTRY", "Publication", "publish_checkpoint"]

MODEL_REGISTRY = "wandb-registry-model"  # W&B's Registry for models (it replaced Model Registry)
CARD_FILE = "README.md"  # the model card's name inside the artifact
_NAME = re.compile(r"^[\w.-]+$")  # W&B collection names and aliases: no '/', ':' or spaces
ARCHITECTURE = ("backbone", "backbone_kwargs", "num_classes", "in_channels", "image_size")


@dataclass(frozen=True)
class Publication:
    """Where a published checkpoint went: the project artifact ``entity/project/name:v<N>``
    and its Registry version ``wandb-registry-model/<collection>:v<M>`` (both None offline),
    the collection, the aliases asked for, and the W&B run folder."""

    artifact: str | None
    linked: str | None
    collection: str
    aliases: tuple[str, ...]
    run_dir: Path


def _checked_names(collection: str, aliases: list[str]) -> None:
    for what, value in (("collection", collection), *(("alias", a) for a in aliases)):
        if not _NAME.match(value):
            raise ConfigError(
                f"W&B {what} {value!r} is not a valid name; expected letters, digits, '-', '_' "
                "and '.' (no '/', ':' or spaces)"
            )


def _metadata(checkpoint: Path, entry: ZooEntry, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """The entry (what :func:`~lightning_cv.hub.sources.resolve_source` reads back), the
    architecture and the preprocessing record."""
    hparams = read_zoo_checkpoint(checkpoint)["hyper_parameters"]
    record = entry.model_dump(mode="json", exclude_none=True, exclude={"file", "wandb", "url"})
    return {**record, "architecture": {key: hparams.get(key) for key in ARCHITECTURE},
            "preprocessing": preprocessing}  # fmt: skip


def _verified_file(checkpoint: Path, entry: ZooEntry) -> None:
    if not checkpoint.is_file():
        raise ConfigError(f"checkpoint {str(checkpoint)!r} does not exist")
    actual = sha256_file(checkpoint)
    if actual != entry.sha256:
        raise ConfigError(
            f"checkpoint {str(checkpoint)!r} has sha256 {actual}, the entry {entry.name!r} states "
            f"{entry.sha256}; publish the file `lightning-cv zoo register` wrote "
            f"(`lightning-cv zoo download {entry.name}` prints its path)"
        )


def publish_checkpoint(
    checkpoint: str | Path, entry: ZooEntry, *, entity: str, project: str,
    collection: str | None = None, aliases: list[str] | None = None, model_card: str,
    preprocessing: dict[str, Any],
) -> Publication:  # fmt: skip
    """Log ``checkpoint`` (``zoo register``'s file for ``entry``) as the W&B model artifact
    ``entity/project/<entry.name>`` with ``model_card`` as its ``README.md`` and its
    ``preprocessing`` record (``Preprocessing.to_checkpoint()``) in the metadata, and link it to
    ``wandb-registry-model/<collection>`` (default: the entry's name) with ``aliases`` (W&B
    adds ``latest``). Offline, the artifact is staged in an offline run with the aliases.

    Raises:
        ConfigError: a missing file or another sha256 than the entry's; a collection or alias
            W&B would refuse; no API key, or no answer from W&B within :data:`TIMEOUT_S` s.
    """
    checkpoint, collection, aliases = Path(checkpoint), collection or entry.name, aliases or []
    _checked_names(collection, aliases)
    _verified_file(checkpoint, entry)
    action = f"publishing {entry.name}"
    wandb, base_url = connect(action, offline_ok=True)
    metadata = _metadata(checkpoint, entry, preprocessing)
    settings = wandb.Settings(init_timeout=TIMEOUT_S, silent=True)
    runs = Path(os.environ.get("WANDB_DIR") or os.getcwd()) / "wandb"  # where init writes
    with cleaned_on_failure(runs):
        try:
            run = wandb.init(entity=entity, project=project, job_type="zoo-publish",
                             name=entry.name, settings=settings)  # fmt: skip
        except wandb.errors.Error as error:
            raise unreachable(action, base_url, error) from error
        try:
            return _log_and_link(wandb, run, checkpoint, entry, metadata, model_card,
                                 collection, aliases)  # fmt: skip
        except wandb.errors.Error as error:
            raise unreachable(action, base_url, error) from error
        finally:
            run.finish()


def _log_and_link(
    wandb: Any, run: Any, checkpoint: Path, entry: ZooEntry, metadata: dict[str, Any],
    model_card: str, collection: str, aliases: list[str],
) -> Publication:  # fmt: skip
    description = f"{entry.name} on {entry.dataset}: top-1 {entry.metrics.acc:.2f}%"
    artifact = wandb.Artifact(entry.name, type="model", description=description,
                              metadata=metadata)  # fmt: skip
    artifact.add_file(str(checkpoint), name=f"{entry.name}.ckpt")
    with artifact.new_file(CARD_FILE, mode="w", encoding="utf-8") as card:
        card.write(model_card)
    run_dir, target = Path(run.dir).parent, f"{MODEL_REGISTRY}/{collection}"
    if run.offline:  # W&B links only online: the aliases travel with the staged artifact
        run.log_artifact(artifact, aliases=["latest", *aliases])
        return Publication(None, None, collection, tuple(aliases), run_dir)
    logged = run.log_artifact(artifact, aliases=["latest"])
    logged.wait()  # the server assigns v<N>
    linked = run.link_artifact(logged, target, aliases=aliases)
    return Publication(f"{run.entity}/{run.project}/{entry.name}:{logged.version}",
                       f"{target}:{linked.version}", collection, tuple(aliases),
                       run_dir)  # fmt: skip
