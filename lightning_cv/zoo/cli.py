"""``lightning-cv zoo``: list, inspect, fetch, evaluate, export and run zoo models; maintainers
also register and publish checkpoints.

Example:
    >>> zoo_main(["list"])  # doctest: +SKIP
    name          data set  top-1  top-5  macro F1  size     files
    lenet5.mnist  MNIST     99.12  99.99  99.11     0.25 MB  bundled
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from lightning_cv.data.folder import IMAGE_EXTENSIONS, ImageFiles
from lightning_cv.errors import DataFileError
from lightning_cv.zoo.evaluate import TOLERANCE, build_datamodule, compare, measure
from lightning_cv.zoo.export import EXPORTERS, export_model
from lightning_cv.zoo.manifest import (
    TABLE_BEGIN,
    manifest_path,
    read_manifest,
    render_table,
    update_table,
)
from lightning_cv.zoo.pretrained import checkpoint_file, get_entry, list_entries, load
from lightning_cv.zoo.publish import publish_checkpoint
from lightning_cv.zoo.register import register_checkpoint

__all__ = ["table_files", "zoo_main"]

SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


def table_files(root: str | Path = ".") -> list[Path]:
    """The markdown files that show the zoo table: ``zoo/README.md`` and every page under
    ``docs/`` with the zoo-table markers, below ``root`` (the repository).

    Example:
        >>> table_files()  # doctest: +SKIP
        [PosixPath('zoo/README.md'), PosixPath('docs/zoo.md')]
    """
    root = Path(root)
    pages = sorted((root / "docs").rglob("*.md"))
    return [
        root / "zoo" / "README.md",
        *(page for page in pages if TABLE_BEGIN in page.read_text()),
    ]


def _list(options: argparse.Namespace) -> None:
    entries = list_entries(options.manifest)
    if not entries:
        print(f"no zoo entries in {manifest_path(options.manifest)}")
        return
    rows = [("name", "data set", "top-1", "top-5", "macro F1", "size", "files")]
    for entry in entries:
        top5 = "-" if entry.metrics.top5 is None else f"{entry.metrics.top5:.2f}"
        rows.append(
            (
                entry.name,
                entry.dataset,
                f"{entry.metrics.top1:.2f}",
                top5,
                f"{entry.metrics.f1:.2f}",
                f"{entry.file_size / 1e6:.2f} MB",
                ", ".join(entry.sources) or "not published",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _info(options: argparse.Namespace) -> None:
    entry = get_entry(options.name, options.manifest)
    record = entry.to_dict()
    print(
        yaml.safe_dump(record, sort_keys=False, allow_unicode=True, default_flow_style=None), end=""
    )


def _download(options: argparse.Namespace) -> None:
    print(checkpoint_file(options.name, options.manifest))


def _evaluate(options: argparse.Namespace) -> None:
    pretrained = load(options.name, options.manifest)
    data = build_datamodule(
        pretrained.entry, options.root, download=options.download, num_workers=options.num_workers
    )
    report = compare(
        pretrained.entry, measure(pretrained.model, data, accelerator=options.accelerator)
    )
    print(json.dumps(report, indent=2))
    if not report["ok"]:
        print(
            f"lightning-cv zoo evaluate: {options.name}: measured top-1 "
            f"{report['measured']['top1']:.2f} differs from the manifest's "
            f"{report['manifest']['top1']:.2f} by more than {TOLERANCE} points",
            file=sys.stderr,
        )
        raise SystemExit(1)


def _export(options: argparse.Namespace) -> None:
    pretrained = load(options.name, options.manifest)
    entry = pretrained.entry
    output = options.output or Path(f"{entry.name}{SUFFIXES[options.format]}")
    metadata = {
        "name": entry.name,
        "class_names": list(entry.class_names),
        "mean": list(entry.mean),
        "std": list(entry.std),
        "image_size": list(entry.image_size),
        "in_channels": entry.in_channels,
        "sha256": entry.sha256,
    }
    export_model(
        pretrained.model.backbone,
        output,
        format=options.format,
        input_shape=(entry.in_channels, *entry.image_size),
        metadata=metadata,
    )
    print(
        f"wrote {output}: images (B, {entry.in_channels}, {entry.image_size[0]}, "
        f"{entry.image_size[1]}) normalized with mean {list(entry.mean)} and std "
        f"{list(entry.std)} -> logits (B, {entry.num_classes})"
    )


def _image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataFileError(f"image or folder {str(path)!r} does not exist")
    files = sorted(
        file
        for file in path.rglob("*")
        if file.is_file()
        and file.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    if not files:
        raise DataFileError(
            f"folder {str(path)!r} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return files


def _predict(options: argparse.Namespace) -> None:
    pretrained = load(options.name, options.manifest)
    paths = _image_files(options.images)
    # decoded with the data sets' colour policy: converted to the model's channel count
    images = ImageFiles(paths, channels=pretrained.entry.in_channels)
    for path, image in zip(paths, images, strict=True):
        print(path)
        for name, probability in pretrained.predict(image, top_k=options.top_k):
            print(f"  {100 * probability:6.2f}%  {name}")


def _publish(options: argparse.Namespace) -> None:
    entry = get_entry(options.name, options.manifest)
    published = publish_checkpoint(
        options.checkpoint, entry, entity=options.entity, project=options.project
    )
    if published.artifact is None:
        print(
            f"W&B is offline: the artifact {entry.name} was logged to the offline run "
            f"{published.run_dir}. Upload it with `wandb sync {published.run_dir}`, then set "
            f"`wandb: {options.entity}/{options.project}/{entry.name}:v<N>` (N: the version W&B "
            f"shows) in the manifest entry {entry.name}; the manifest was not changed."
        )
        return
    record = {**entry.to_dict(), "wandb": published.artifact}
    print(f"published {published.artifact} (aliases: latest, {published.artifact.split(':')[-1]})")
    print(
        f"manifest entry to use in {manifest_path(options.manifest)} (then run "
        "`lightning-cv zoo table`):"
    )
    print(yaml.safe_dump([record], sort_keys=False, allow_unicode=True), end="")


def _register(options: argparse.Namespace) -> None:
    tables = options.table or table_files()
    entry, path = register_checkpoint(
        options.checkpoint,
        name=options.name,
        recipe=options.recipe,
        root=options.root,
        bundle=options.bundle,
        half=options.half,
        training_time_s=options.training_time_s,
        note=options.note,
        reference=options.reference,
        reference_top1=options.reference_top1,
        manifest=options.manifest,
        tables=tables,
        accelerator=options.accelerator,
    )
    top5 = "" if entry.metrics.top5 is None else f", top-5 {entry.metrics.top5:.2f}%"
    print(
        f"registered {entry.name}: top-1 {entry.metrics.top1:.2f}%{top5}, macro F1 "
        f"{entry.metrics.f1:.2f}% on the test split"
    )
    print(f"checkpoint {path} ({entry.file_size} bytes, sha256 {entry.sha256})")
    print(f"updated {manifest_path(options.manifest)} and {', '.join(map(str, tables))}")


def _table(options: argparse.Namespace) -> None:
    table = render_table(read_manifest(options.manifest))
    stale = [
        path
        for path in options.table or table_files()
        if update_table(path, table, write=not options.check)
    ]
    if options.check and stale:
        print(
            f"out of date: {', '.join(map(str, stale))}; run `lightning-cv zoo table`",
            file=sys.stderr,
        )
        raise SystemExit(1)
    for path in stale:
        print(f"updated {path}")


def _table_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table",
        type=Path,
        action="append",
        help="a markdown file with the zoo-table markers (repeatable; default: zoo/README.md "
        "and the docs pages that have the markers)",
    )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="zoo manifest (default: $LIGHTNING_CV_ZOO_MANIFEST, else the package's)",
    )
    parser = argparse.ArgumentParser(
        prog="lightning-cv zoo", description="Pretrained models of the lightning-cv zoo."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    command("list", _list, "List the zoo's entries with their test metrics.")
    command("info", _info, "Print an entry of the manifest.").add_argument("name")
    command("download", _download, "Fetch and verify a checkpoint; print its path.").add_argument(
        "name"
    )

    sub = command("evaluate", _evaluate, "Re-measure an entry on its official test split.")
    sub.add_argument("name")
    sub.add_argument("--root", type=Path, required=True, help="the data set's folder")
    sub.add_argument("--download", action="store_true", help="fetch missing data files")
    sub.add_argument("--num_workers", type=int, default=None)
    sub.add_argument("--accelerator", default="auto")

    sub = command("export", _export, "Export an entry to ONNX or TorchScript.")
    sub.add_argument("name")
    sub.add_argument("--format", choices=sorted(EXPORTERS), required=True)
    sub.add_argument("--output", type=Path, default=None, help="default: NAME.onnx or NAME.pt")

    sub = command("predict", _predict, "Print the top-k classes of images.")
    sub.add_argument("name")
    sub.add_argument("images", type=Path, help="an image file or a folder of images")
    sub.add_argument("--top_k", type=int, default=5)

    sub = command("publish", _publish, "Upload a registered checkpoint to W&B (maintainers).")
    sub.add_argument("checkpoint", type=Path)
    sub.add_argument("--name", required=True)
    sub.add_argument("--entity", required=True)
    sub.add_argument("--project", required=True)

    sub = command("register", _register, "Strip, measure and record a checkpoint (maintainers).")
    sub.add_argument("checkpoint", type=Path)
    sub.add_argument("--name", required=True, help="arch.dataset, e.g. lenet5.mnist")
    sub.add_argument("--recipe", type=Path, required=True, help="the recipe that trained it")
    sub.add_argument("--root", type=Path, required=True, help="the data set's folder")
    sub.add_argument("--bundle", action="store_true", help="keep the file in the package")
    sub.add_argument("--half", action="store_true", help="store the weights as float16")
    sub.add_argument("--training_time_s", type=float, default=None)
    sub.add_argument("--note", default=None, help="e.g. why the target was missed")
    sub.add_argument("--reference", default=None, help="where the target top-1 comes from")
    sub.add_argument("--reference_top1", type=float, default=None, help="target top-1, percent")
    sub.add_argument("--accelerator", default="auto")
    _table_option(sub)

    sub = command("table", _table, "Regenerate the zoo tables from the manifest (maintainers).")
    _table_option(sub)
    sub.add_argument("--check", action="store_true", help="exit 1 if a table is out of date")
    return parser


def zoo_main(args: list[str]) -> None:
    """Run ``lightning-cv zoo ARGS``.

    Args:
        args: the arguments after ``zoo``, e.g. ``["predict", "lenet5.mnist", "seven.png"]``.

    Raises:
        ConfigError: bad input (an unknown entry, a bad option value), one line.
        DataFileError: a bad file (checkpoint, image, manifest), one line.
        SystemExit: argparse's usage errors (2); ``evaluate`` off by more than 0.1 top-1
            points, or ``table --check`` finding a stale table (1).
    """
    options = _parser().parse_args(args)
    options.handler(options)
