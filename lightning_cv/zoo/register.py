"""Add a trained checkpoint to the zoo (``lightning-cv zoo register``, a maintainer's step).

Nothing is written until the checkpoint has been read safely, matched against its recipe and
measured on the official test split.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from lightning_cv._io import atomic_write_bytes, check_new_file, sha256_file
from lightning_cv._sizes import to_size
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.files import cached_path, read_zoo_checkpoint
from lightning_cv.hub.manifest import (
    NAME_PATTERN,
    TTA,
    ZooEntry,
    manifest_path,
    read_manifest,
    render_table,
    update_table,
    write_manifest,
)
from lightning_cv.preprocessing import CHECKPOINT_KEY
from lightning_cv.task import ImageClassifier
from lightning_cv.zoo.evaluate import data_module, measure

__all__ = ["BUNDLE_LIMIT", "KEPT_KEYS", "add_preprocessing", "register_checkpoint",
           "strip_checkpoint"]  # fmt: skip

BUNDLE_LIMIT = 30_000_000  # bytes of all bundled checkpoints together, so a clone stays small
# What a zoo checkpoint keeps of a Lightning one: enough for load_from_checkpoint, and the
# recipe's data options without root; optimizer, scheduler, loop and callback states go.
KEPT_KEYS = ("pytorch-lightning_version", "epoch", "global_step", "hparams_name",
             "hyper_parameters", "state_dict", "datamodule_hyper_parameters",
             CHECKPOINT_KEY)  # fmt: skip


def strip_checkpoint(
    checkpoint: dict[str, Any], *, data_options: dict[str, Any], half: bool = False
) -> dict[str, Any]:
    """:data:`KEPT_KEYS` of ``checkpoint`` on the CPU, with ``data_options`` as the data
    module's hyperparameters; every tensor cloned (a view saves its own elements only), and
    floating-point ones stored as float16 with ``half`` (they load into float32 models)."""
    clean = {key: checkpoint[key] for key in KEPT_KEYS if key in checkpoint}
    clean["datamodule_hyper_parameters"] = data_options
    clean["state_dict"] = {
        name: tensor.detach().cpu().half() if half and tensor.is_floating_point()
        else tensor.detach().cpu().clone()
        for name, tensor in checkpoint["state_dict"].items()
    }  # fmt: skip
    return clean


def _check_name(name: str, architecture: str) -> None:
    prefix = name.split(".")[0]
    if not re.fullmatch(NAME_PATTERN, name) or (
        prefix != architecture and not prefix.startswith(f"{architecture}_")
    ):
        raise DataFileError(
            f"zoo entry name {name!r} must read {architecture}.dataset or "
            f"{architecture}_variant.dataset in lowercase letters, digits and underscores, "
            "e.g. 'lenet5.mnist'"
        )


def _read_recipe(recipe: Path) -> dict[str, Any]:
    if not recipe.is_file():
        raise ConfigError(f"recipe {str(recipe)!r} does not exist")
    return yaml.safe_load(recipe.read_text()) or {}


def _recipe_data(config: dict[str, Any], source: str, root: str | Path, hparams: dict) -> tuple:
    """The recipe's data module over ``root``, its class path and options without root, once
    the recipe (``config``, read from ``source``) is found to build the checkpoint's
    architecture and data facts."""
    spec, model = config.get("data") or {}, config.get("model") or {}
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ConfigError(f"{source} has no data class_path")
    options = {k: v for k, v in (spec.get("init_args") or {}).items() if k != "root"}
    data = data_module(spec["class_path"], {**options, "root": str(root)}, source=source)
    model = model.get("init_args", model)
    default = inspect.signature(ImageClassifier).parameters["backbone"].default
    trained = (hparams["backbone"], hparams.get("backbone_kwargs") or {})
    built = (model.get("backbone", default), model.get("backbone_kwargs") or {})
    if trained != built:
        raise ConfigError(
            f"the checkpoint is {trained[0]} {trained[1]} but {source} builds {built[0]} "
            f"{built[1]}; pass the recipe that trained it"
        )
    expected = (hparams["num_classes"], hparams["in_channels"], to_size(hparams["image_size"]))
    found = (data.num_classes, data.in_channels, to_size(data.image_size))
    if expected != found:
        raise ConfigError(
            f"the checkpoint takes (num_classes, in_channels, image_size) = {expected} but "
            f"{source} gives {found}; pass the recipe that trained it"
        )
    return data, spec["class_path"], options


def _check_bundle(entries: dict[str, ZooEntry], name: str, size: int) -> None:
    total = size + sum(e.file_size for e in entries.values() if e.file and e.name != name)
    if total > BUNDLE_LIMIT:
        raise ConfigError(
            f"bundling {name} ({size / 1e6:.1f} MB) would make the bundled checkpoints "
            f"{total / 1e6:.1f} MB, over the {BUNDLE_LIMIT / 1e6:.0f} MB limit; register it "
            "without --bundle and publish it to W&B"
        )


def _bundle_path(manifest: Path, entries: dict[str, ZooEntry], name: str) -> Path:
    """Where ``bundle`` writes the checkpoint of ``name``; a file there that the manifest does
    not record as that entry's is not the zoo's: refused."""
    relative = f"checkpoints/{name}.ckpt"
    if name not in entries or entries[name].file != relative:
        check_new_file(manifest.parent / relative, "move it, or register under another name")
    return manifest.parent / relative


def register_checkpoint(
    checkpoint: str | Path, *, name: str, recipe: str | Path, root: str | Path,
    bundle: bool = False, half: bool = False, manifest: str | Path | None = None,
    tables: Sequence[str | Path] = (), accelerator: str = "auto", **facts: Any,
) -> tuple[ZooEntry, Path]:  # fmt: skip
    """Strip a checkpoint, measure it on the test split and record it in the manifest and
    ``tables``; return the entry and the clean file (beside the manifest with ``bundle``, all
    bundled files <= 30 MB; else in the cache). ``recipe`` must build the checkpoint's model
    over ``root``; ``half`` stores float16 weights; ``facts``: ``training_time_s``, ``note``,
    ``reference``, ``reference_acc``, ``trained_on``. A TestTimeAugmentation among the
    recipe's callbacks is recorded as ``tta``, and top-1 with it as ``metrics.acc_tta``."""
    path = manifest_path(manifest)
    entries = {entry.name: entry for entry in read_manifest(path)}
    for table in tables:  # fail before the slow part when a table file is wrong
        update_table(table, render_table([*entries.values()]), write=False)
    bundled = _bundle_path(path, entries, name) if bundle else None
    raw = read_zoo_checkpoint(checkpoint)
    _check_name(name, raw["hyper_parameters"]["backbone"])
    recipe = Path(recipe)
    config = _read_recipe(recipe)
    source = f"recipe {str(recipe)!r}"
    data, class_path, options = _recipe_data(config, source, root, raw["hyper_parameters"])
    tta = TTA.from_recipe(config)
    clean = strip_checkpoint(raw, data_options=options, half=half)
    if CHECKPOINT_KEY not in clean:  # a checkpoint older than the record: the recipe's data
        clean[CHECKPOINT_KEY] = _record(data, raw["hyper_parameters"], tta)
    clean[CHECKPOINT_KEY]["tta"] = None if tta is None else tta.model_dump()  # as measured
    staged = io.BytesIO()  # hashed and measured before a file is written
    torch.save(clean, staged)
    size, sha256 = staged.tell(), hashlib.sha256(staged.getbuffer()).hexdigest()
    if bundle:
        _check_bundle(entries, name, size)
    staged.seek(0)
    model = ImageClassifier.load_from_checkpoint(staged, weights_only=True)
    metrics = measure(model, data, accelerator=accelerator, tta=tta).model_dump()
    old = entries.get(name)  # W&B and URL: same file only
    kept = {} if old is None or old.sha256 != sha256 else {"wandb": old.wandb, "url": old.url}
    entry = ZooEntry.parse(
        {"name": name, "dataset": type(data).__name__.removesuffix("DataModule"),
         "datamodule": class_path, "recipe": recipe.as_posix(), "metrics": metrics,
         "sha256": sha256, "file_size": size, "weights_dtype": "float16" if half else "float32",
         "tta": None if tta is None else tta.model_dump(),
         "file": f"checkpoints/{name}.ckpt" if bundle else None,
         **kept, **{key: value for key, value in facts.items() if value is not None}},
        source=f"new entry for {str(path)!r}",
    )  # fmt: skip
    destination = bundled or cached_path(entry)
    atomic_write_bytes(destination, staged.getbuffer())
    entries[name] = entry
    write_manifest([*entries.values()], path)
    for table in tables:
        update_table(table, render_table([*entries.values()]))
    return entry, destination


def _record(data: Any, hparams: dict[str, Any], tta: TTA | None) -> dict[str, Any]:
    """The preprocessing record of a data module as a recipe builds it (before ``setup``)."""
    record = data.preprocessing(tta=tta, class_names=hparams.get("class_names"))
    if record is None:
        raise ConfigError(
            f"{type(data).__name__}'s evaluation pipeline cannot be recorded (no mean and std, "
            "or a batch augmentation); retrain with --data.mean, --data.std and a preset"
        )
    return record.to_checkpoint()


def add_preprocessing(
    names: Sequence[str] | None = None, *, manifest: str | Path | None = None
) -> list[ZooEntry]:
    """Add the preprocessing record to bundled zoo checkpoints written before it existed, and
    update their sha256 and size in the manifest (rerunnable: entries that have it are left
    alone). The record comes from the entry's data module and options and its ``tta``; every
    tensor of the new file is checked equal (values and dtype) to the old one's first.

    Args:
        names: the entries; by default every bundled one.
        manifest: another manifest file.

    Returns:
        The entries whose files were rewritten.

    Raises:
        ConfigError: an entry without a bundled file (its W&B or URL copy could not follow).

    Example:
        >>> add_preprocessing(["lenet5.mnist"])  # doctest: +SKIP
    """
    path = manifest_path(manifest)
    entries = {entry.name: entry for entry in read_manifest(path)}
    changed = []
    for name in names or [name for name, entry in entries.items() if entry.file]:
        entry = entries[name]
        if entry.file is None:
            raise ConfigError(f"zoo entry {name!r} has no bundled file to add a record to")
        file = path.parent / entry.file
        if sha256_file(file) != entry.sha256:
            raise DataFileError(f"zoo entry {name!r}: {str(file)!r} is not the manifest's file")
        checkpoint = read_zoo_checkpoint(file)
        if CHECKPOINT_KEY in checkpoint:
            continue
        options = checkpoint.get("datamodule_hyper_parameters") or {}
        data = data_module(entry.datamodule, options, source=f"zoo entry {name!r}")
        record = _record(data, checkpoint["hyper_parameters"], entry.tta)
        staged = io.BytesIO()
        torch.save({**checkpoint, CHECKPOINT_KEY: record}, staged)
        _check_same_weights(
            checkpoint["state_dict"],
            torch.load(io.BytesIO(staged.getvalue()), weights_only=True)["state_dict"],
            name,
        )
        update = {"sha256": hashlib.sha256(staged.getbuffer()).hexdigest(),
                  "file_size": staged.tell(), "wandb": None, "url": None}  # fmt: skip
        entries[name] = entry.model_copy(update=update)
        atomic_write_bytes(file, staged.getbuffer())
        write_manifest([*entries.values()], path)
        changed.append(entries[name])
    return changed


def _check_same_weights(old: dict[str, Any], new: dict[str, Any], name: str) -> None:
    same = old.keys() == new.keys() and all(
        old[k].dtype == new[k].dtype and torch.equal(old[k], new[k]) for k in old
    )
    if not same:
        raise DataFileError(f"zoo entry {name!r}: the rewritten weights differ; nothing written")
