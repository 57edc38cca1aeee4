"""The zoo manifest: one typed, validated record per checkpoint, and the table made from it.

The manifest is a YAML file with one key, ``entries``, holding one mapping per checkpoint. It
ships inside the package (``lightning_cv/zoo/manifest.yaml``); ``$LIGHTNING_CV_ZOO_MANIFEST``
or a ``manifest`` argument points at another one. An entry holds only what its checkpoint
does not: the architecture, class names and input size live in the checkpoint's
hyperparameters, the eval transform in its data module class. Bundled checkpoint paths
(``file``) are relative to the manifest's folder.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic import field_validator as _field_validator

from lightning_cv._io import atomic_write_text
from lightning_cv.errors import ConfigError, DataFileError, check_choice

__all__ = [
    "MANIFEST_ENV",
    "PACKAGE_MANIFEST",
    "TABLE_BEGIN",
    "TABLE_END",
    "Metrics",
    "ZooEntry",
    "get_entry",
    "list_entries",
    "manifest_path",
    "read_manifest",
    "render_table",
    "update_table",
    "write_manifest",
]

MANIFEST_ENV = "LIGHTNING_CV_ZOO_MANIFEST"
PACKAGE_MANIFEST = Path(__file__).with_name("manifest.yaml")
TABLE_BEGIN = "<!-- zoo-table:begin (generated from the manifest by `lightning-cv zoo table`) -->"
TABLE_END = "<!-- zoo-table:end -->"
NOT_APPLICABLE = "n/a"  # table cell of a value an entry does not have
_HEADER = """\
# The lightning-cv model zoo: one entry per checkpoint, named arch.dataset.
# Written by `lightning-cv zoo register`; the schema and the maintainers' steps are in
# zoo/README.md. Metrics are percentages on the official test split. `file` is relative to
# this folder; `wandb` is set only after `lightning-cv zoo publish` really uploaded the file.
"""

Percent = Annotated[float, Field(ge=0, le=100)]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
_RECORD = ConfigDict(frozen=True, extra="forbid")


class Metrics(BaseModel):
    """Scores of a checkpoint on its data set's official test split, in percent."""

    model_config = _RECORD
    top1: Percent = Field(description="a number in [0, 100]")
    top5: Percent | None = Field(None, description="a number in [0, 100]")
    f1: Percent = Field(description="a number in [0, 100]")


class ZooEntry(BaseModel):
    """One zoo checkpoint: its data set, how well it does, and where its file lives.

    Read one with :func:`read_manifest` or ``ZooEntry.model_validate(record)``;
    ``model_dump(exclude_none=True)`` gives the manifest record back.

    Example:
        >>> entry = get_entry("lenet5.mnist")
        >>> entry.dataset, entry.sources
        ('MNIST', ['bundled'])
    """

    model_config = _RECORD
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(_[a-z0-9]+)*\.[a-z0-9_]+$")] = (
        Field(description="arch.dataset in lowercase letters, digits and underscores")
    )
    dataset: Text = Field(description="a data set's name, e.g. 'MNIST'")
    datamodule: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")] = (
        Field(description="a class path like 'pkg.Class'")
    )
    metrics: Metrics = Field(description="a mapping of top1, f1 (and top5) in percent")
    recipe: Text = Field(description="the recipe's path")
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] = Field(
        description="64 lowercase hex digits"
    )
    file_size: int = Field(gt=0, description="a positive number of bytes")
    weights_dtype: Literal["float32", "float16"] = Field(
        "float32", description="one of ['float32', 'float16']"
    )
    training_time_s: float | None = Field(None, ge=0, description="a number >= 0")
    reference_top1: Percent | None = Field(None, description="a number in [0, 100]")
    reference: Text | None = None
    note: Text | None = None
    file: Text | None = Field(None, description="a .ckpt path relative to the manifest's folder")
    wandb: (
        Annotated[str, StringConstraints(pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+:[\w.-]+$")] | None
    ) = Field(None, description="entity/project/name:alias")
    url: Annotated[str, StringConstraints(pattern=r"^https://\S+$")] | None = Field(
        None, description="an https:// URL"
    )

    @_field_validator("file")
    @classmethod
    def _relative_checkpoint(cls, value: str | None) -> str | None:
        path = PurePosixPath(value) if value is not None else None
        if path is not None and (
            path.is_absolute() or ".." in path.parts or path.suffix != ".ckpt"
        ):
            raise ValueError("not a relative .ckpt path")
        return value

    @property
    def sources(self) -> list[str]:
        """Where the file can come from, in the order they are tried: bundled, W&B, URL."""
        named = (("bundled", self.file), ("W&B", self.wandb), ("URL", self.url))
        return [label for label, value in named if value is not None]

    @classmethod
    def parse(cls, record: Any, *, source: str = "zoo manifest") -> ZooEntry:
        """Validate one manifest record; a bad one raises DataFileError naming the entry,
        the key, the value and what was expected."""
        try:
            return cls.model_validate(record)
        except ValidationError as error:
            name = record.get("name", "?") if isinstance(record, dict) else "?"
            raise DataFileError(_problem(error, f"{source}: entry {name!r}")) from None


def _problem(error: ValidationError, where: str) -> str:
    """One line for pydantic's errors: missing keys, unknown keys, or the first bad value."""
    details = error.errors()
    for kind, problem in (
        ("missing", "lacks required keys"),
        ("extra_forbidden", "has unknown keys"),
    ):
        keys = sorted(".".join(map(str, d["loc"])) for d in details if d["type"] == kind)
        if keys:
            expected = (
                "" if kind == "missing" else f"; expected some of {sorted(ZooEntry.model_fields)}"
            )
            return f"{where} {problem} {keys}{expected}"
    first = details[0]
    if not first["loc"]:
        return f"{where}: an entry must be a mapping, got {first['input']!r}"
    key, model, field = ".".join(map(str, first["loc"])), ZooEntry, None
    for part in first["loc"]:
        field = model.model_fields.get(part) if isinstance(part, str) else field
        model = field.annotation if field is not None else model
    expected = field.description if field is not None and field.description else "a value"
    return f"{where}: {key} must be {expected}, got {first['input']!r}"


def manifest_path(manifest: str | Path | None = None) -> Path:
    """The manifest to use: ``manifest`` if given, else ``$LIGHTNING_CV_ZOO_MANIFEST``, else the
    one that ships in the package.

    Example:
        >>> manifest_path().name
        'manifest.yaml'
    """
    if manifest is not None:
        return Path(manifest)
    return Path(os.environ.get(MANIFEST_ENV) or PACKAGE_MANIFEST)


def read_manifest(manifest: str | Path | None = None) -> list[ZooEntry]:
    """Read and check every entry of a manifest, in file order.

    Raises:
        DataFileError: a missing or unreadable file, a layout other than ``entries: [...]``,
            an invalid entry, or two entries of the same name.
    """
    path = manifest_path(manifest)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataFileError(f"zoo manifest {str(path)!r} does not exist") from None
    except yaml.YAMLError as error:
        message = " ".join(str(error).split())
        raise DataFileError(f"zoo manifest {str(path)!r} is not valid YAML: {message}") from None
    if (
        not isinstance(data, dict)
        or set(data) != {"entries"}
        or not isinstance(data["entries"], list)
    ):
        raise DataFileError(
            f"zoo manifest {str(path)!r} must hold one key, entries, with a list of entries"
        )
    entries = [ZooEntry.parse(record, source=str(path)) for record in data["entries"]]
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataFileError(f"zoo manifest {str(path)!r} lists {repeated} more than once")
    return entries


def write_manifest(entries: list[ZooEntry], manifest: str | Path | None = None) -> Path:
    """Write ``entries`` (sorted by name) atomically, with the manifest's header comment."""
    records = [entry.model_dump(exclude_none=True) for entry in sorted(entries, key=_name)]
    body = yaml.safe_dump(
        {"entries": records}, sort_keys=False, allow_unicode=True, default_flow_style=None
    )
    return atomic_write_text(manifest_path(manifest), _HEADER + body)


def _name(entry: ZooEntry) -> str:
    return entry.name


def list_entries(manifest: str | Path | None = None) -> list[ZooEntry]:
    """Every zoo entry, sorted by name (no checkpoint is read, nothing heavy imported).

    Example:
        >>> "lenet5.mnist" in [entry.name for entry in list_entries()]
        True
    """
    return sorted(read_manifest(manifest), key=_name)


def get_entry(name: str, manifest: str | Path | None = None) -> ZooEntry:
    """The entry called ``name``.

    Raises:
        ConfigError: no entry of that name (the message lists the names there are).
    """
    entries = {entry.name: entry for entry in read_manifest(manifest)}
    check_choice("zoo entry", name, entries)
    return entries[name]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return NOT_APPLICABLE
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _score(value: float | None) -> str:
    return NOT_APPLICABLE if value is None else f"{value:.2f}"


def _row(entry: ZooEntry) -> str:
    cells = [
        f"`{entry.name}`",
        entry.dataset,
        *map(_score, (entry.metrics.top1, entry.metrics.top5, entry.metrics.f1)),
        _score(entry.reference_top1),
        f"{entry.file_size / 1e6:.2f} MB",
        _duration(entry.training_time_s),
        f"`{entry.recipe}`",
        ", ".join(entry.sources) or "not published",
    ]
    return f"| {' | '.join(cells)} |"


def render_table(entries: list[ZooEntry]) -> str:
    """The markdown table of the zoo (one row per entry, sorted by name), with notes below.

    Example:
        >>> print(render_table([]))
        _No checkpoints yet: maintainers add them with `lightning-cv zoo register` (see zoo/README.md)._
    """  # noqa: E501
    if not entries:
        return (
            "_No checkpoints yet: maintainers add them with `lightning-cv zoo register` "
            "(see zoo/README.md)._"
        )
    lines = [
        "| Entry | Data set | Top-1 % | Top-5 % | Macro F1 % | Target top-1 % | Size "
        "| Training | Recipe | Files |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    notes = []
    for entry in sorted(entries, key=_name):
        lines.append(_row(entry))
        remarks = [f"target from {entry.reference}." if entry.reference else "", entry.note or ""]
        if any(remarks):
            notes.append(f"- `{entry.name}`: {' '.join(part for part in remarks if part)}")
    return "\n".join(lines + (["", *notes] if notes else []))


def update_table(path: str | Path, table: str, *, write: bool = True) -> bool:
    """Put ``table`` between the zoo-table markers of a markdown file.

    Args:
        path: the markdown file (``zoo/README.md``, a docs page).
        table: from :func:`render_table`.
        write: False only reports whether the file is out of date.

    Returns:
        True when the file's table differed from ``table`` (and, with ``write``, was replaced).

    Raises:
        ConfigError: a missing file, or a file without the two marker lines.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"table file {str(path)!r} does not exist")
    text = path.read_text()
    start, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ConfigError(
            f"{str(path)!r} has no zoo table markers; add the lines {TABLE_BEGIN!r} and "
            f"{TABLE_END!r} where the table goes"
        )
    updated = f"{text[: start + len(TABLE_BEGIN)]}\n{table}\n{text[end:]}"
    if updated != text and write:
        atomic_write_text(path, updated)
    return updated != text
