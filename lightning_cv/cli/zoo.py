"""``lightning-cv zoo``: list, inspect, fetch, evaluate, export and run zoo models; maintainers
also register and publish checkpoints.

Each subcommand is the function of the same name below, parsed by jsonargparse from its
signature: positional parameters are positional arguments, keyword-only ones options, and a
dataclass a group of dotted options (``--data.root``, ``--trainer.accelerator``).
"""

from __future__ import annotations

import json
import sys
import warnings
from argparse import ArgumentError
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import yaml
from jsonargparse import ArgumentParser

from lightning_cv import zoo  # the Lightning-bound names load on first use (zoo/__init__)
from lightning_cv._io import atomic_write_bytes, check_new_file
from lightning_cv.cli._output import quiet_lightning
from lightning_cv.errors import ConfigError
from lightning_cv.hub.manifest import TABLE_BEGIN

__all__ = ["DataOptions", "TrainerOptions", "table_files", "zoo_main"]

NEW_OUTPUT = "pass --output NEWPATH or move it"  # export and predict never replace a file


@dataclass
class DataOptions:
    """The data set to measure on: its folder (``root``), whether to fetch missing files
    (``download``) and loader workers (``num_workers``, default: the checkpoint's)."""

    root: Path
    download: bool = False
    num_workers: int | None = None


@dataclass
class TrainerOptions:
    """The Lightning Trainer that measures: its ``accelerator`` (``auto``, ``cpu``, ``gpu``...)."""

    accelerator: str = "auto"


def table_files(root: str | Path = ".") -> list[Path]:
    """``zoo/README.md`` below ``root`` and every page under ``docs/`` with the table markers."""
    pages = sorted((Path(root) / "docs").rglob("*.md"))
    return [Path(root) / "zoo" / "README.md", *(p for p in pages if TABLE_BEGIN in p.read_text())]


def _dump(record: object) -> None:
    print(yaml.safe_dump(record, sort_keys=False, allow_unicode=True, default_flow_style=None),
          end="")  # fmt: skip


def list_(*, manifest: Path | None = None) -> None:
    """List the zoo's entries with their test metrics."""
    entries = zoo.list_entries(manifest)
    if not entries:
        print(f"no zoo entries in {zoo.manifest_path(manifest)}")
        return
    rows = [("name", "dataset", *zoo.Metrics.model_fields, "size", "files")]
    for e in entries:
        scores = [None if s is None else f"{s:.2f}" for s in e.metrics.model_dump().values()]
        files = ", ".join(e.sources) or "not published"
        rows.append(
            (e.name, e.dataset, *(s or "-" for s in scores), f"{e.file_size / 1e6:.2f} MB", files)
        )
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def info(name: str, *, manifest: Path | None = None) -> None:
    """Print an entry of the manifest and, when its file is here, what its checkpoint holds."""
    entry = zoo.get_entry(name, manifest)
    record = entry.model_dump(exclude_none=True)
    local = zoo.checkpoint_file(entry, manifest, download=False)
    if local is not None:
        from lightning_cv.preprocessing import CHECKPOINT_KEY  # torch: only for a file here

        checkpoint = zoo.read_zoo_checkpoint(local)
        hparams = checkpoint["hyper_parameters"]
        facts = ("backbone", "backbone_kwargs", "num_classes", "in_channels", "image_size")
        facts = {key: hparams.get(key) for key in (*facts, "class_names")}
        facts["preprocessing"] = checkpoint.get(CHECKPOINT_KEY)
        record["checkpoint"] = json.loads(json.dumps(facts))  # tuples as YAML lists
    _dump(record)


def download(name: str, *, manifest: Path | None = None) -> None:
    """Fetch and verify a checkpoint; print its path."""
    print(zoo.checkpoint_file(name, manifest))


def evaluate(
    name: str, *, data: DataOptions, trainer: TrainerOptions | None = None,
    manifest: Path | None = None,
) -> None:  # fmt: skip
    """Re-measure an entry on its official test split, or an export (a .pt2 or .onnx file)
    against its checkpoint there; exit 1 when top-1 is off."""
    from lightning_cv.zoo.evaluate import saved_data_options, task_of

    if name.endswith((".pt2", ".onnx")):
        _evaluate_export(Path(name), data, manifest)
        return
    pretrained = zoo.load(name, manifest=manifest)
    workers = {} if data.num_workers is None else {"num_workers": data.num_workers}
    options = saved_data_options(pretrained.entry, manifest)
    datamodule = zoo.build_datamodule(pretrained.entry, data.root, options,
                                      download=data.download, **workers)  # fmt: skip
    accelerator = (trainer or TrainerOptions()).accelerator
    measured = zoo.measure(task_of(pretrained), datamodule, accelerator=accelerator,
                           tta=pretrained.entry.tta)  # fmt: skip
    report = zoo.compare(pretrained.entry, measured)
    print(json.dumps(report, indent=2))
    for key, label in (("acc", "top-1"), ("acc_tta", "top-1 with TTA")):
        if abs(report.get(f"{key}_difference", 0)) > zoo.TOLERANCE:
            print(
                f"lightning-cv zoo evaluate: {name}: measured {label} "
                f"{getattr(measured, key):.2f} differs from the manifest's "
                f"{getattr(pretrained.entry.metrics, key):.2f} by more than {zoo.TOLERANCE} points",
                file=sys.stderr,
            )
    if not report["ok"]:
        raise SystemExit(1)


def _evaluate_export(path: Path, data: DataOptions, manifest: Path | None) -> None:
    """``evaluate`` of an export: its top-1 beside its checkpoint's, on the same test images."""
    from lightning_cv.zoo.evaluate import (
        EXPORT_TOLERANCE,
        compare_export,
        load_export,
        saved_data_options,
    )

    exported = load_export(path)
    source, made_from = exported.metadata["name"], exported.metadata["sha256"]
    if source not in {entry.name for entry in zoo.list_entries(manifest)}:
        raise ConfigError(
            f"export {str(path)!r} comes from {source!r}, which is not a zoo entry; evaluate "
            "measures exports of zoo entries, on their official test split"
        )
    pretrained = zoo.load(source, manifest=manifest)
    if pretrained.sha256 != made_from:
        raise ConfigError(
            f"export {str(path)!r} was made from a checkpoint with sha256 {made_from}, but zoo "
            f"entry {source!r} is now {pretrained.sha256}; export it again"
        )
    workers = {} if data.num_workers is None else {"num_workers": data.num_workers}
    options = saved_data_options(pretrained.entry, manifest)
    datamodule = zoo.build_datamodule(pretrained.entry, data.root, options,
                                      download=data.download, **workers)  # fmt: skip
    datamodule.prepare_data()
    transform = datamodule.build_transform(pretrained.preprocessing.eval_transform)
    report = compare_export(exported, pretrained.model, datamodule, transform=transform,
                            reference_acc=pretrained.entry.metrics.acc)  # fmt: skip
    print(json.dumps(report, indent=2))
    if not report["ok"]:
        print(
            f"lightning-cv zoo evaluate: {path}: top-1 {report['export_acc']:.2f} differs from "
            f"its checkpoint's {report['checkpoint_acc']:.2f} by more than {EXPORT_TOLERANCE} "
            "points",
            file=sys.stderr,
        )
        raise SystemExit(1)


def export(
    name: str, *, format: Literal["pt2", "onnx", "torchscript"] = "pt2", preprocess: bool = False,
    output: Path | None = None, manifest: Path | None = None,
) -> None:  # fmt: skip
    """Export a zoo entry or a checkpoint file as a torch.export program (.pt2) or ONNX,
    normalized float images in and logits out, or with --preprocess true uint8 images in and
    probabilities out; a model card (NAME.md) is written beside it. An existing file is never
    replaced. TorchScript (.pt) is deprecated."""
    from lightning_cv.zoo.export import FORMATS, BakedPreprocessing, export_metadata, export_model
    from lightning_cv.zoo.model_card import render_model_card

    stem = Path(name).name.removesuffix(".ckpt")
    output = output or Path(stem + (".uint8" if preprocess else "") + FORMATS[format])
    card = output.parent / f"{stem}.md"
    check_new_file(output, NEW_OUTPUT)  # before the slow part
    if format == "torchscript":
        print("lightning-cv zoo export: --format torchscript is deprecated (torch.jit is, "
              "upstream) and will be removed; use --format pt2", file=sys.stderr)  # fmt: skip
    pretrained = zoo.load(name, manifest=manifest)
    record, text = pretrained.preprocessing, render_model_card(pretrained)
    new_card = _card_to_write(card, text)
    model = pretrained.model
    if preprocess:
        model = BakedPreprocessing(model, mean=record.mean, std=record.std)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torchscript's: said above in one line
        metadata = export_metadata(pretrained, preprocess=preprocess)
        export_model(model, output, format=format, input_shape=record.input_shape,
                     metadata=metadata, replace=False)  # fmt: skip
    shape, classes = ", ".join(map(str, record.input_shape)), len(record.class_names)
    given = (f"uint8 images (B, {shape}) -> probabilities" if preprocess else
             f"images (B, {shape}) normalized with mean {list(record.mean)} and std "
             f"{list(record.std)} -> logits")  # fmt: skip
    print(f"wrote {output}: {given} (B, {classes})")
    if new_card:
        atomic_write_bytes(card, text.encode(), replace=False, hint=NEW_OUTPUT)
    print(f"{'wrote' if new_card else 'kept'} model card {card}")


def _card_to_write(card: Path, text: str) -> bool:
    """Whether the model card must be written: False when ``card`` holds this very text; a
    ConfigError (before any export) when it holds another."""
    if card.is_file() and not card.is_symlink() and card.read_bytes() == text.encode():
        return False
    check_new_file(card, "move it, or pass --output into another folder")
    return True


def predict(
    name: str, images: Path, *, top_k: int = 5, output: Path = Path("predictions.csv"),
    tta: bool = False, strict: bool = False, manifest: Path | None = None,
) -> None:  # fmt: skip
    """Predict an image or every image in a folder with a zoo entry or a checkpoint file
    alone: print the top-k classes and write them (and the true class of class sub-folders,
    with the accuracy) to a CSV; with --tta true, averaged over the test-time augmentation
    recorded in the checkpoint. Files that cannot be read are skipped and listed (--strict
    true stops at the first). An existing CSV is never replaced."""
    check_new_file(output, NEW_OUTPUT)
    pretrained = zoo.load(name, manifest=manifest)
    done = zoo.predict_images(pretrained, images, output=output, top_k=top_k, tta=tta,
                              strict=strict)  # fmt: skip
    for row in done.rows:
        print(row["path"])
        for rank in range(1, sum(key.startswith("class_") for key in row) + 1):
            print(f"  {100 * float(row[f'prob_{rank}']):6.2f}%  {row[f'class_{rank}']}")
    for _, reason in done.skipped:
        print(f"skipped {reason}", file=sys.stderr)
    if done.skipped:
        print(f"skipped {len(done.skipped)} of {len(done.rows) + len(done.skipped)} files "
              "that could not be read", file=sys.stderr)  # fmt: skip
    if done.accuracy is not None:
        print(f"accuracy: {done.accuracy:.2f}% of {len(done.rows)} images in class folders")
    print(f"wrote {output}")


def publish(
    checkpoint: Path, *, name: str, entity: str, project: str, collection: str | None = None,
    aliases: list[str] | None = None, manifest: Path | None = None,
) -> None:  # fmt: skip
    """Upload a registered checkpoint to W&B as a model artifact with its model card and link
    it to the W&B Registry collection wandb-registry-model/COLLECTION (default: the entry's
    name) with --aliases (maintainers)."""
    from lightning_cv.hub.publish import publish_checkpoint

    entry = zoo.get_entry(name, manifest)
    pretrained = replace(zoo.load(checkpoint), name=entry.name, entry=entry)
    done = publish_checkpoint(
        checkpoint, entry, entity=entity, project=project, collection=collection,
        aliases=aliases, model_card=zoo.render_model_card(pretrained),
        preprocessing=pretrained.preprocessing.to_checkpoint(),
    )  # fmt: skip
    target = f"wandb-registry-model/{done.collection}"
    if done.artifact is None:
        print(
            f"W&B is in offline mode: the artifact {entry.name} was logged to the offline run "
            f"{done.run_dir}, not published (publishing needs a server): run `wandb sync "
            f"{done.run_dir}`, then run this publish again online to link it to {target} "
            "(W&B links only online; the same bytes make no new version), and set `wandb: "
            f"{entity}/{project}/{entry.name}:v<N>` in the manifest entry (the "
            "manifest was not changed)"
        )
        return
    aliases = ", ".join(("latest", *done.aliases))
    print(f"published {done.artifact}, linked as {done.linked} (aliases: {aliases})")
    print(f"manifest entry to use in {zoo.manifest_path(manifest)} (then run `lightning-cv zoo "
          "table`):")  # fmt: skip
    _dump([{**entry.model_dump(exclude_none=True), "wandb": done.artifact}])


def register(
    checkpoint: Path, *, name: str, recipe: Path, data: DataOptions, bundle: bool = False,
    half: bool = False, training_time_s: float | None = None, note: str | None = None,
    reference: str | None = None, reference_acc: float | None = None,
    trained_on: str | None = None, trainer: TrainerOptions | None = None,
    table: list[Path] | None = None, manifest: Path | None = None,
) -> None:  # fmt: skip
    """Strip, measure and record a checkpoint (maintainers); see zoo/README.md."""
    tables = table or table_files()
    entry, path = zoo.register_checkpoint(
        checkpoint, name=name, recipe=recipe, root=data.root, bundle=bundle, half=half,
        manifest=manifest, tables=tables, accelerator=(trainer or TrainerOptions()).accelerator,
        training_time_s=training_time_s, note=note, reference=reference,
        reference_acc=reference_acc, trained_on=trained_on,
    )  # fmt: skip
    metrics = entry.metrics
    top5 = "" if metrics.acc_top5 is None else f", top-5 {metrics.acc_top5:.2f}%"
    tta = "" if metrics.acc_tta is None else f", top-1 with TTA {metrics.acc_tta:.2f}%"
    print(f"registered {entry.name}: top-1 {metrics.acc:.2f}%{top5}, macro F1 "
          f"{metrics.f1:.2f}%{tta} on the test split")  # fmt: skip
    print(f"checkpoint {path} ({entry.file_size} bytes, sha256 {entry.sha256})")
    print(f"updated {zoo.manifest_path(manifest)} and {', '.join(map(str, tables))}")


def table(
    *, table: list[Path] | None = None, check: bool = False, manifest: Path | None = None
) -> None:
    """Regenerate the zoo tables from the manifest; with --check true, exit 1 if one is stale."""
    rendered = zoo.render_table(zoo.read_manifest(manifest))
    stale = [p for p in table or table_files() if zoo.update_table(p, rendered, write=not check)]
    if check and stale:
        print(f"out of date: {', '.join(map(str, stale))}; run `lightning-cv zoo table`",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(1)
    for path in stale:
        print(f"updated {path}")


LIGHTNING_COMMANDS = ("evaluate", "register")  # they run a Trainer
COMMANDS = {"list": list_, "info": info, "download": download, "evaluate": evaluate,
            "export": export, "predict": predict, "publish": publish, "register": register,
            "table": table}  # fmt: skip


def zoo_main(args: list[str]) -> None:
    """Run ``lightning-cv zoo ARGS`` (e.g. ``["predict", "lenet5.mnist", "seven.png"]``).

    Raises:
        ConfigError: bad input or a bad file (DataFileError), in one line.
        SystemExit: a usage error, printed as one line (2); ``evaluate`` off by more than 0.1
            top-1 points, or ``table --check true`` finding a stale table (1).
    """
    parser = ArgumentParser(prog="lightning-cv zoo", description="Pretrained models of the "
                            "lightning-cv zoo.", exit_on_error=False)  # fmt: skip
    commands = parser.add_subcommands(dest="command")
    for name, function in COMMANDS.items():
        command = ArgumentParser(description=function.__doc__, exit_on_error=False)
        command.add_function_arguments(function, as_positional=True)
        commands.add_subcommand(name, command, help=function.__doc__.splitlines()[0])
    try:
        config = parser.parse_args(args)
    except ArgumentError as error:
        command = next((arg for arg in args if arg in COMMANDS), None)
        see = f"lightning-cv zoo {command} --help" if command else "lightning-cv zoo --help"
        print(f"lightning-cv zoo: error: {' '.join(str(error).split())} (see {see})",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2) from None
    if config.command in LIGHTNING_COMMANDS:
        quiet_lightning()
    COMMANDS[config.command](**parser.instantiate(config)[config.command])
