"""The zoo manifest (``entries: [...]``): one frozen pydantic record per checkpoint, holding
only what the checkpoint does not know, and the markdown table made from it."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from lightning_cv._io import atomic_write_text
from lightning_cv.errors import ConfigError, DataFileError, check_choice

__all__ = ["TTA", "Metrics", "ZooEntry", "get_entry", "list_entries", "manifest_path",
           "read_manifest", "render_table", "update_table", "write_manifest"]  # fmt: skip

MANIFEST_ENV = "LIGHTNING_CV_ZOO_MANIFEST"
# the data (manifest and bundled checkpoints) ships in the zoo folder, beside the apps that use it
PACKAGE_MANIFEST = Path(__file__).parents[1] / "zoo" / "manifest.yaml"
NAME_PATTERN = r"^[a-z0-9]+(_[a-z0-9]+)*\.[a-z0-9_]+$"  # arch.dataset or arch_variant.dataset
TABLE_BEGIN = "<!-- zoo-table:begin (generated from the manifest by `lightning-cv zoo table`) -->"
TABLE_END = "<!-- zoo-table:end -->"
_HEADER = """\
# The lightning-cv model zoo: one entry per checkpoint, named arch.dataset.
# Written by `lightning-cv zoo register`; the schema and the maintainers' steps are in
# zoo/README.md. Metrics are percentages on the official test split. `file` is relative to
# this folder; `wandb` is set only after `lightning-cv zoo publish` really uploaded the file.
"""
_RECORD = ConfigDict(frozen=True, extra="forbid")
_PERCENT = "a number in [0, 100]"


def _relative_ckpt(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or path.suffix != ".ckpt":
        raise ValueError("not a relative .ckpt path")
    return value


Percent = Annotated[float, Field(ge=0, le=100)]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ClassPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Artifact = Annotated[str, StringConstraints(pattern=r"^[\w.-]+/[\w.-]+/[\w.-]+:[\w.-]+$")]
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^https://\S+$")]


class Metrics(BaseModel):
    """Scores of a checkpoint on its data set's official test split, in percent, named as the
    task logs them (``test/acc``, ``test/acc_top5``, ``test/f1``, ``test/acc_tta``)."""

    model_config = _RECORD
    acc: Percent = Field(description=_PERCENT)
    acc_top5: Percent | None = Field(None, description=_PERCENT)
    f1: Percent = Field(description=_PERCENT)
    acc_tta: Percent | None = Field(None, description=_PERCENT)


def _is_tta(spec: object) -> bool:
    """A recipe's callback entry for TestTimeAugmentation, by its full or short class path."""
    name = str(spec.get("class_path")).split(".")[-1] if isinstance(spec, dict) else None
    return name == "TestTimeAugmentation"


class TTA(BaseModel):
    """The test-time augmentation an entry's ``acc_tta`` was measured with: the arguments of
    :class:`~lightning_cv.callbacks.TestTimeAugmentation`, as its recipe gives them.

    Example:
        >>> TTA.from_recipe({"trainer": {"callbacks": [{"class_path":
        ...     "lightning_cv.callbacks.TestTimeAugmentation", "init_args": {"shifts": 1}}]}})
        TTA(flip=False, shifts=1, padding='reflect')
    """

    model_config = _RECORD
    flip: bool = Field(False, description="true or false")
    shifts: int = Field(0, ge=0, description="an int >= 0")
    padding: Literal["reflect", "zeros"] = Field(
        "reflect", description="one of ['reflect', 'zeros']"
    )

    @classmethod
    def from_recipe(cls, config: dict[str, Any]) -> TTA | None:
        """The TestTimeAugmentation among a recipe's (or a fit run's config's)
        ``trainer.callbacks``, or None."""
        callbacks = (config.get("trainer") or {}).get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        specs = [spec for spec in callbacks if _is_tta(spec)]
        if not specs:
            return None
        try:
            return cls.model_validate(specs[0].get("init_args") or {})
        except ValidationError as error:
            raise ConfigError(_tta_problem(error)) from None


class ZooEntry(BaseModel):
    """One zoo checkpoint: its data set, how well it does, and where its file lives.

    Each field's ``description`` is what a bad value's error says was expected.

    Example:
        >>> entry = get_entry("lenet5.mnist")
        >>> entry.dataset, entry.sources
        ('MNIST', ['bundled'])
    """

    model_config = _RECORD
    name: Name = Field(description="arch.dataset in lowercase letters, digits and underscores")
    dataset: Text = Field(description="a data set's name, e.g. 'MNIST'")
    datamodule: ClassPath = Field(description="a class path like 'pkg.Class'")
    metrics: Metrics = Field(description="a mapping of acc, f1 (and acc_top5, acc_tta) in percent")
    recipe: Text = Field(description="the recipe's path")
    sha256: Sha256 = Field(description="64 lowercase hex digits")
    file_size: int = Field(gt=0, description="a positive number of bytes")
    weights_dtype: Literal["float32", "float16"] = Field(
        "float32", description="one of ['float32', 'float16']"
    )
    training_time_s: float | None = Field(None, ge=0, description="a number >= 0")
    reference_acc: Percent | None = Field(None, description=_PERCENT)
    reference: Text | None = None
    tta: TTA | None = Field(
        None, description="a mapping of flip, shifts and padding (TestTimeAugmentation's)"
    )
    trained_on: Text | None = Field(None, description="the machine, in words")
    note: Text | None = None
    file: Annotated[Text, AfterValidator(_relative_ckpt)] | None = Field(
        None, description="a .ckpt path relative to the manifest's folder"
    )
    wandb: Artifact | None = Field(None, description="entity/project/name:alias")
    url: HttpsUrl | None = Field(None, description="an https:// URL")

    @property
    def sources(self) -> list[str]:
        """Where the file can come from, in the order they are tried: bundled, W&B, URL."""
        named = (("bundled", self.file), ("W&B", self.wandb), ("URL", self.url))
        return [label for label, value in named if value is not None]

    @classmethod
    def parse(cls, record: Any, *, source: str = "zoo manifest") -> ZooEntry:
        """Validate a record; DataFileError names the entry, key, value and what was expected."""
        try:
            return cls.model_validate(record)
        except ValidationError as error:
            name = record.get("name", "?") if isinstance(record, dict) else "?"
            raise DataFileError(_problem(error, f"{source}: entry {name!r}")) from None


def _tta_problem(error: ValidationError) -> str:
    first, where = error.errors()[0], "a recipe's TestTimeAugmentation"
    key = ".".join(map(str, first["loc"]))
    if key not in TTA.model_fields:
        return f"{where} has no option {key!r}; expected some of {sorted(TTA.model_fields)}"
    return f"{where}: {key} must be {TTA.model_fields[key].description}, got {first['input']!r}"


_NESTED = {"metrics": Metrics, "tta": TTA}  # ZooEntry's fields that are records themselves


def _known_keys(keys: list[str]) -> list[str]:
    """Every key of the records that ``keys`` lie in (``metrics.acc`` for a nested one)."""
    records = {key.partition(".")[0] if "." in key else "" for key in keys}
    return sorted(f"{record}.{name}" if record else name for record in records
                  for name in (_NESTED[record] if record else ZooEntry).model_fields)  # fmt: skip


def _problem(error: ValidationError, where: str) -> str:
    """One line for pydantic's errors: missing and unknown keys, or the first bad value."""
    details = error.errors()
    missing, unknown = (
        sorted(".".join(map(str, d["loc"])) for d in details if d["type"] == kind)
        for kind in ("missing", "extra_forbidden")
    )
    if unknown:  # a misspelt key, or one of an older manifest, is missing too when required
        lacks = f"lacks required keys {missing} and " if missing else ""
        return f"{where} {lacks}has unknown keys {unknown}; expected some of {_known_keys(unknown)}"
    if missing:
        return f"{where} lacks required keys {missing}"
    first = details[0]
    if not first["loc"]:
        return f"{where}: an entry must be a mapping, got {first['input']!r}"
    field = ZooEntry.model_fields[first["loc"][0]]
    record = _NESTED.get(first["loc"][0])
    if len(first["loc"]) > 1 and record and first["loc"][1] in record.model_fields:
        field = record.model_fields[first["loc"][1]]
    key = ".".join(map(str, first["loc"]))
    return f"{where}: {key} must be {field.description or 'a value'}, got {first['input']!r}"


def manifest_path(manifest: str | Path | None = None) -> Path:
    """``manifest`` if given, else ``$LIGHTNING_CV_ZOO_MANIFEST``, else the package's."""
    return Path(manifest or os.environ.get(MANIFEST_ENV) or PACKAGE_MANIFEST)


def read_manifest(manifest: str | Path | None = None) -> list[ZooEntry]:
    """Every entry of a manifest (``manifest_path(manifest)``), checked, in file order.

    Raises:
        DataFileError: a missing or unreadable file, a layout other than ``entries: [...]``,
            an invalid entry, or two entries of the same name.
    """
    path = manifest_path(manifest)
    where = f"zoo manifest {str(path)!r}"
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataFileError(f"{where} does not exist") from None
    except yaml.YAMLError as error:
        raise DataFileError(f"{where} is not valid YAML: {' '.join(str(error).split())}") from None
    layout = isinstance(data, dict) and set(data) == {"entries"} and data["entries"]
    if not isinstance(layout, list):
        raise DataFileError(f"{where} must hold one key, entries, with a list of entries")
    entries = [ZooEntry.parse(record, source=str(path)) for record in data["entries"]]
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataFileError(f"{where} lists {repeated} more than once")
    return entries


def write_manifest(entries: list[ZooEntry], manifest: str | Path | None = None) -> Path:
    """Write ``entries``, sorted by name, atomically under the manifest's header comment."""
    records = [entry.model_dump(exclude_none=True) for entry in list_entries(entries=entries)]
    body = yaml.safe_dump({"entries": records}, sort_keys=False, allow_unicode=True,
                          default_flow_style=None)  # fmt: skip
    return atomic_write_text(manifest_path(manifest), _HEADER + body)


def list_entries(
    manifest: str | Path | None = None, *, entries: list[ZooEntry] | None = None
) -> list[ZooEntry]:
    """Every entry (of the manifest, or ``entries``) sorted by name; nothing heavy imported.

    Example:
        >>> "lenet5.mnist" in [entry.name for entry in list_entries()]
        True
    """
    return sorted(read_manifest(manifest) if entries is None else entries, key=lambda e: e.name)


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
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _tta_words(tta: TTA) -> str:
    """E.g. 'mean of 6 views: the image, its mirror, 1-pixel shifts four ways (reflect padding)'."""
    views = ["the image", *["its mirror"] * tta.flip]
    if tta.shifts:
        views.append(f"{tta.shifts}-pixel shifts four ways ({tta.padding} padding)")
    return f"mean of {1 + tta.flip + 4 * bool(tta.shifts)} views: {', '.join(views)}"


def _row(entry: ZooEntry) -> str:
    metrics = entry.metrics
    scores = (metrics.acc, metrics.acc_tta, metrics.acc_top5, metrics.f1, entry.reference_acc)
    cells = [f"`{entry.name}`", entry.dataset,
             *("n/a" if score is None else f"{score:.2f}" for score in scores),
             f"{entry.file_size / 1e6:.2f} MB", _duration(entry.training_time_s),
             f"`{entry.recipe}`", ", ".join(entry.sources) or "not published"]  # fmt: skip
    return f"| {' | '.join(cells)} |"


def render_table(entries: list[ZooEntry]) -> str:
    """The markdown table of the zoo (one row per entry, sorted by name), with notes below.

    Example:
        >>> render_table([]).startswith("_No checkpoints yet")
        True
    """
    if not entries:
        return ("_No checkpoints yet: maintainers add them with `lightning-cv zoo register` "
                "(see zoo/README.md)._")  # fmt: skip
    lines = [
        "| Entry | Data set | Top-1 % | Top-1 with TTA % | Top-5 % | Macro F1 % | Target top-1 % "
        "| Size | Training | Recipe | Files |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|",
        *map(_row, list_entries(entries=entries)),
    ]
    notes = []
    for entry in list_entries(entries=entries):
        remarks = [
            f"target from {entry.reference}." if entry.reference else "",
            f"TTA: {_tta_words(entry.tta)}." if entry.tta else "",
            f"Trained on {entry.trained_on}." if entry.trained_on else "",
            entry.note or "",
        ]
        if any(remarks):
            notes.append(f"- `{entry.name}`: {' '.join(part for part in remarks if part)}")
    return "\n".join(lines + (["", *notes] if notes else []))


def update_table(path: str | Path, table: str, *, write: bool = True) -> bool:
    """Put ``table`` between the zoo-table markers of a markdown file (with ``write=False``,
    only check); return whether the file's table differed.

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
