"""Add a trained checkpoint to the zoo: strip it, measure it, record it, regenerate the tables.

A maintainer's step (``lightning-cv zoo register``). Nothing is written until the checkpoint
has been read safely, matched against its recipe and measured on the official test split.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import torch

from lightning_cv.data import ImageDataModule
from lightning_cv.errors import ConfigError
from lightning_cv.models._registry import to_size
from lightning_cv.zoo.checkpoint import (
    classifier_from_checkpoint,
    read_checkpoint,
    strip_checkpoint,
)
from lightning_cv.zoo.evaluate import measure
from lightning_cv.zoo.hub import cached_path, sha256_file
from lightning_cv.zoo.manifest import (
    ZooEntry,
    check_name,
    manifest_path,
    read_manifest,
    render_table,
    update_table,
    write_manifest,
)

__all__ = ["BUNDLE_LIMIT", "register_checkpoint"]

BUNDLE_LIMIT = 30_000_000  # bytes of all bundled checkpoints together, so a clone stays small


def _plain(value: Any) -> Any:
    """``value`` as JSON-able lists, dicts and scalars (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, default=str))


def _read_recipe(recipe: Path, root: str | Path) -> tuple[ImageDataModule, dict[str, Any], Any]:
    """The recipe's data module over ``root``, its class path and init args, and its model."""
    from lightning_cv.cli import LightningCVCLI  # here: the CLI module dispatches to the zoo

    if not recipe.is_file():
        raise ConfigError(f"recipe {str(recipe)!r} does not exist")
    with warnings.catch_warnings():  # the recipe is parsed from Python, not from sys.argv
        warnings.filterwarnings("ignore", "LightningCLI's args parameter is intended")
        cli = LightningCVCLI(args=["--config", str(recipe), "--data.root", str(root)], run=False)
    config = cli.config["data"]
    options = {k: v for k, v in config["init_args"].as_dict().items() if k != "root"}
    return cli.datamodule, {"class_path": config["class_path"], "init_args": options}, cli.model


def _check_recipe(recipe: Path, hparams: dict[str, Any], data, model) -> None:
    """Raise unless the recipe builds the checkpoint's architecture and data facts."""
    trained = (hparams["backbone"], hparams.get("backbone_kwargs") or {})
    recipe_hparams = getattr(model, "hparams", {})
    built = (recipe_hparams.get("backbone"), recipe_hparams.get("backbone_kwargs") or {})
    if trained != built:
        raise ConfigError(
            f"the checkpoint is {trained[0]} {trained[1]} but recipe {str(recipe)!r} builds "
            f"{built[0]} {built[1]}; pass the recipe that trained it"
        )
    expected = (hparams["num_classes"], hparams["in_channels"], to_size(hparams["image_size"]))
    found = (data.num_classes, data.in_channels, to_size(data.image_size))
    if expected != found:
        raise ConfigError(
            f"the checkpoint takes (num_classes, in_channels, image_size) = {expected} but "
            f"recipe {str(recipe)!r} gives {found}; pass the recipe that trained it"
        )


def _install(source: Path, destination: Path) -> None:
    """Copy ``source`` to ``destination`` atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, staging)
    os.replace(staging, destination)


def register_checkpoint(
    checkpoint: str | Path,
    *,
    name: str,
    recipe: str | Path,
    root: str | Path,
    bundle: bool = False,
    half: bool = False,
    training_time_s: float | None = None,
    note: str | None = None,
    reference: str | None = None,
    reference_top1: float | None = None,
    manifest: str | Path | None = None,
    tables: Sequence[str | Path] = (),
    accelerator: str = "auto",
) -> tuple[ZooEntry, Path]:
    """Strip a trained checkpoint, measure it on the official test split and record it.

    The clean file (weights and hyperparameters only) goes to ``checkpoints/<name>.ckpt``
    beside the manifest with ``bundle``, else into the cache (:func:`~.hub.cached_path`),
    ready for ``lightning-cv zoo publish``. An entry of the same name is replaced; its W&B
    artifact and URL are kept only if the file is the same.

    Args:
        checkpoint: a Lightning checkpoint of an ImageClassifier with a registry backbone.
        name: ``arch.dataset``, e.g. ``lenet5.mnist``.
        recipe: the recipe that trained it (recorded as given, so pass a repository path).
        root: the data folder of the recipe's data set.
        bundle: keep the file in the package (all bundled files together <= 30 MB).
        half: store the weights as float16 (half the file; measured as stored).
        training_time_s: wall-clock training time, if known.
        note: an honest remark, e.g. why a target was missed.
        reference: where ``reference_top1`` comes from.
        reference_top1: the published or target top-1 in percent.
        manifest: the manifest to update (default: ``$LIGHTNING_CV_ZOO_MANIFEST`` or the
            package's).
        tables: markdown files whose zoo table is regenerated (e.g. ``zoo/README.md``).
        accelerator: Lightning accelerator for the measurement.

    Returns:
        The new entry and the path of its clean checkpoint file.

    Raises:
        ConfigError: a bad name, a recipe that does not match the checkpoint, bundled files
            over the limit, or a table file without markers.
        DataFileError: an unreadable or unsafe checkpoint, a broken manifest, missing data.

    Example:
        >>> register_checkpoint(  # doctest: +SKIP
        ...     "runs/mnist_lenet5/version_0/checkpoints/best.ckpt", name="lenet5.mnist",
        ...     recipe="recipes/mnist_lenet5.yaml", root="data", bundle=True,
        ...     tables=["zoo/README.md"])
    """
    path = manifest_path(manifest)
    entries = {entry.name: entry for entry in read_manifest(path)}
    for table in tables:  # fail before the slow part when a table file is wrong
        update_table(table, render_table(list(entries.values())), write=False)
    raw = read_checkpoint(checkpoint)
    hparams = raw["hyper_parameters"]
    check_name(name, hparams["backbone"])
    clean = strip_checkpoint(raw, half=half)
    with tempfile.TemporaryDirectory() as staging:
        staged = Path(staging) / f"{name}.ckpt"
        torch.save(clean, staged)
        sha256, size = sha256_file(staged), staged.stat().st_size
        if bundle:
            others = sum(e.file_size for e in entries.values() if e.file and e.name != name)
            if others + size > BUNDLE_LIMIT:
                raise ConfigError(
                    f"bundling {name} ({size / 1e6:.1f} MB) would make the bundled checkpoints "
                    f"{(others + size) / 1e6:.1f} MB, over the {BUNDLE_LIMIT / 1e6:.0f} MB "
                    "limit; register it without --bundle and publish it to W&B"
                )
        recipe = Path(recipe)
        data, data_config, recipe_model = _read_recipe(recipe, root)
        _check_recipe(recipe, hparams, data, recipe_model)
        model = classifier_from_checkpoint(clean, source=str(checkpoint))
        metrics = measure(model, data, accelerator=accelerator)
        old = entries.get(name)
        same_file = old is not None and old.sha256 == sha256
        record = {
            "name": name,
            "architecture": hparams["backbone"],
            "architecture_kwargs": _plain(hparams.get("backbone_kwargs") or {}),
            "dataset": type(data).__name__.removesuffix("DataModule"),
            "datamodule": data_config["class_path"],
            "datamodule_kwargs": _plain(data_config["init_args"]),
            "weights_dtype": "float16" if half else "float32",
            "num_classes": model.hparams.num_classes,
            "class_names": list(model.class_names or data.class_names),
            "in_channels": model.hparams.in_channels,
            "image_size": list(to_size(model.hparams.image_size)),
            "mean": list(data.mean),
            "std": list(data.std),
            "transform": _plain(A.to_dict(data.test_set.transform)),
            "metrics": metrics.to_dict(),
            "recipe": recipe.as_posix(),
            "training_time_s": training_time_s,
            "reference_top1": reference_top1,
            "reference": reference,
            "note": note,
            "sha256": sha256,
            "file_size": size,
            "file": f"checkpoints/{name}.ckpt" if bundle else None,
            "wandb": old.wandb if same_file else None,
            "url": old.url if same_file else None,
        }
        entry = ZooEntry.from_dict(record, source=f"new entry for {str(path)!r}")
        destination = path.parent / entry.file if bundle else cached_path(entry)
        _install(staged, destination)
    entries[name] = entry
    write_manifest(list(entries.values()), path)
    for table in tables:
        update_table(table, render_table(list(entries.values())))
    return entry, destination
