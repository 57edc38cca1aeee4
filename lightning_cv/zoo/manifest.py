"""The zoo manifest: one typed, validated record per checkpoint, and the table made from it.

The manifest is a YAML file with one key, ``entries``, holding one mapping per checkpoint
(torchvision's ``Weights.meta`` and timm's ``PretrainedCfg`` as data). It ships inside the
package (``lightning_cv/zoo/manifest.yaml``); ``$LIGHTNING_CV_ZOO_MANIFEST`` or a ``manifest``
argument points at another one. Bundled checkpoint paths (``file``) are relative to the
manifest's folder. The markdown table of ``zoo/README.md`` is generated from it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from lightning_cv.errors import ConfigError, DataFileError

__all__ = [
    "MANIFEST_ENV",
    "OPTIONAL_KEYS",
    "PACKAGE_MANIFEST",
    "REQUIRED_KEYS",
    "TABLE_BEGIN",
    "TABLE_END",
    "Metrics",
    "ZooEntry",
    "check_name",
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

REQUIRED_KEYS = (
    "name",
    "architecture",
    "dataset",
    "datamodule",
    "num_classes",
    "class_names",
    "in_channels",
    "image_size",
    "mean",
    "std",
    "transform",
    "metrics",
    "recipe",
    "sha256",
    "file_size",
)
OPTIONAL_KEYS = (
    "architecture_kwargs",
    "weights_dtype",
    "datamodule_kwargs",
    "training_time_s",
    "reference_top1",
    "reference",
    "note",
    "file",
    "wandb",
    "url",
)
WEIGHTS_DTYPES = ("float32", "float16")
NOT_APPLICABLE = "n/a"  # table cell of a value an entry does not have
_NAME = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*\.[a-z0-9_]+")
_CLASS_PATH = re.compile(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_WANDB = re.compile(r"[\w.-]+/[\w.-]+/[\w.-]+:[\w.-]+")  # entity/project/name:alias
_HEADER = """\
# The lightning-cv model zoo: one entry per checkpoint, named arch.dataset.
# Written by `lightning-cv zoo register`; the schema and the maintainers' steps are in
# zoo/README.md. Metrics are percentages on the official test split. `file` is relative to
# this folder; `wandb` is set only after `lightning-cv zoo publish` really uploaded the file.
"""


@dataclass(frozen=True)
class Metrics:
    """Scores of a checkpoint on its data set's official test split, in percent.

    Args:
        top1: top-1 accuracy.
        f1: macro-averaged F1 score.
        top5: top-5 accuracy, for data sets of more than five classes (else None).
    """

    top1: float
    f1: float
    top5: float | None = None

    def to_dict(self) -> dict[str, float]:
        """``{"top1", "top5" (when set), "f1"}``, as the manifest stores them."""
        scores = {"top1": self.top1, "top5": self.top5, "f1": self.f1}
        return {key: value for key, value in scores.items() if value is not None}


@dataclass(frozen=True)
class ZooEntry:
    """One zoo checkpoint: what it is, how well it does, and where its file lives.

    Build it with :meth:`from_dict` (which checks every field); :meth:`to_dict` gives the
    manifest record back. Treat the dict fields as read-only.

    Attributes:
        name: ``arch.dataset``, e.g. ``lenet5.mnist`` (``arch_variant.dataset`` for variants).
        architecture: the registry name (:func:`lightning_cv.models.list_models`).
        dataset: the data set's name, e.g. ``MNIST``.
        datamodule: class path of the data module that evaluates it.
        num_classes: outputs of the model.
        class_names: one name per class index.
        in_channels: image channels the model takes.
        image_size: ``(height, width)`` the model takes.
        mean: per-channel mean of the eval transform's ``Normalize``.
        std: per-channel std of the eval transform's ``Normalize``.
        transform: the eval transform, serialized by albumentations (``A.to_dict``).
        metrics: scores on the official test split.
        recipe: the recipe that trained it, relative to the repository.
        sha256: hex digest of the checkpoint file.
        file_size: bytes of the checkpoint file.
        architecture_kwargs: the architecture options it was built with.
        datamodule_kwargs: the data module's init arguments except ``root``.
        weights_dtype: how the file stores the floating-point weights: ``float32``, or
            ``float16`` to halve a large file (the metrics are measured on those weights; they
            load into float32 models).
        training_time_s: wall-clock training time in seconds, when recorded.
        reference_top1: the published or target top-1 it is compared against, in percent.
        reference: where ``reference_top1`` comes from (paper, table, leaderboard).
        note: an honest remark, e.g. why the target was missed.
        file: the bundled copy, relative to the manifest's folder.
        wandb: the W&B artifact, ``entity/project/name:alias``.
        url: an https URL of the file.

    Example:
        >>> entry = read_manifest()[0]  # doctest: +SKIP
        >>> entry.name, entry.metrics.top1  # doctest: +SKIP
        ('lenet5.mnist', 99.1)
    """

    name: str
    architecture: str
    dataset: str
    datamodule: str
    num_classes: int
    class_names: tuple[str, ...]
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    transform: dict[str, Any]
    metrics: Metrics
    recipe: str
    sha256: str
    file_size: int
    architecture_kwargs: dict[str, Any] = field(default_factory=dict)
    datamodule_kwargs: dict[str, Any] = field(default_factory=dict)
    weights_dtype: str = "float32"
    training_time_s: float | None = None
    reference_top1: float | None = None
    reference: str | None = None
    note: str | None = None
    file: str | None = None
    wandb: str | None = None
    url: str | None = None

    @classmethod
    def from_dict(cls, record: Any, *, source: str = "zoo manifest") -> ZooEntry:
        """Parse and check one manifest record.

        Args:
            record: the mapping read from the manifest.
            source: what holds it, for messages (e.g. the manifest path).

        Returns:
            The entry.

        Raises:
            DataFileError: a missing required key, an unknown key, or a value of the wrong
                type or range, naming the entry and the key.

        Example:
            >>> records = yaml.safe_load(open("manifest.yaml"))["entries"]  # doctest: +SKIP
            >>> ZooEntry.from_dict(records[0], source="manifest.yaml")  # doctest: +SKIP
            ZooEntry(name='lenet5.mnist', architecture='lenet5', ...)
        """
        if not isinstance(record, dict):
            raise DataFileError(f"{source}: an entry must be a mapping, got {record!r}")
        where = f"{source}: entry {record.get('name', '?')!r}"
        missing = [key for key in REQUIRED_KEYS if key not in record]
        if missing:
            raise DataFileError(f"{where} lacks required keys {missing}")
        unknown = sorted(set(record) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
        if unknown:
            raise DataFileError(
                f"{where} has unknown keys {unknown}; expected some of "
                f"{sorted(REQUIRED_KEYS + OPTIONAL_KEYS)}"
            )
        check = _Checker(where, record)
        architecture = check.text("architecture")
        try:
            name = check_name(check.text("name"), architecture)
        except DataFileError as error:
            raise DataFileError(f"{source}: {error}") from None
        num_classes = check.integer("num_classes")
        in_channels = check.integer("in_channels")
        class_names = check.strings("class_names", length=num_classes)
        datamodule_kwargs = check.mapping("datamodule_kwargs")
        if "root" in datamodule_kwargs:
            raise DataFileError(f"{where}: datamodule_kwargs must not hold root (it is local)")
        return cls(
            name=name,
            architecture=architecture,
            dataset=check.text("dataset"),
            datamodule=check.text("datamodule", _CLASS_PATH, "a class path like 'pkg.Class'"),
            num_classes=num_classes,
            class_names=class_names,
            in_channels=in_channels,
            image_size=check.size("image_size"),
            mean=check.numbers("mean", length=in_channels),
            std=check.numbers("std", length=in_channels, positive=True),
            transform=check.transform("transform"),
            metrics=check.metrics("metrics", with_top5=num_classes > 5),
            recipe=check.text("recipe"),
            sha256=check.text("sha256", _SHA256, "64 lowercase hex digits"),
            file_size=check.integer("file_size"),
            architecture_kwargs=check.mapping("architecture_kwargs"),
            datamodule_kwargs=datamodule_kwargs,
            weights_dtype=check.choice("weights_dtype", WEIGHTS_DTYPES, default="float32"),
            training_time_s=check.optional_number("training_time_s", upper=None),
            reference_top1=check.optional_number("reference_top1", upper=100.0),
            reference=check.optional_text("reference"),
            note=check.optional_text("note"),
            file=check.bundled_file("file"),
            wandb=check.optional_text("wandb", _WANDB, "entity/project/name:alias"),
            url=check.url("url"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The manifest record: plain lists, dicts and scalars, in the schema's key order."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "architecture_kwargs": dict(self.architecture_kwargs),
            "dataset": self.dataset,
            "datamodule": self.datamodule,
            "datamodule_kwargs": dict(self.datamodule_kwargs),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "in_channels": self.in_channels,
            "image_size": list(self.image_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "transform": self.transform,
            "weights_dtype": self.weights_dtype,
            "metrics": self.metrics.to_dict(),
            "reference_top1": self.reference_top1,
            "reference": self.reference,
            "note": self.note,
            "recipe": self.recipe,
            "training_time_s": self.training_time_s,
            "sha256": self.sha256,
            "file_size": self.file_size,
            "file": self.file,
            "wandb": self.wandb,
            "url": self.url,
        }

    @property
    def sources(self) -> list[str]:
        """Where the file can come from, in the order they are tried: bundled, W&B, URL."""
        named = (("bundled", self.file), ("W&B", self.wandb), ("URL", self.url))
        return [label for label, value in named if value is not None]


class _Checker:
    """Typed reads of one record's values; each failure names the entry, key and expectation."""

    def __init__(self, where: str, record: dict[str, Any]) -> None:
        self.where = where
        self.record = record

    def fail(self, key: str, expected: str) -> DataFileError:
        return DataFileError(f"{self.where}: {key} must be {expected}, got {self.record[key]!r}")

    def text(self, key: str, pattern: re.Pattern | None = None, expected: str = "") -> str:
        value = self.record[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "a non-empty string")
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(key, expected)
        return value

    def optional_text(self, key: str, pattern: re.Pattern | None = None, expected: str = ""):
        return None if self.record.get(key) is None else self.text(key, pattern, expected)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.record.get(key, default)
        if value not in choices:
            raise self.fail(key, f"one of {list(choices)}")
        return value

    def integer(self, key: str) -> int:
        value = self.record[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.fail(key, "a positive integer")
        return value

    def number(self, key: str, value: Any, upper: float | None) -> float:
        if not _is_number(value) or value < 0 or (upper is not None and value > upper):
            raise self.fail(key, "a number >= 0" if upper is None else f"a number in [0, {upper}]")
        return float(value)

    def optional_number(self, key: str, *, upper: float | None) -> float | None:
        value = self.record.get(key)
        return None if value is None else self.number(key, value, upper)

    def strings(self, key: str, *, length: int) -> tuple[str, ...]:
        value = self.record[key]
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(key, f"a list of {length} names (one per class)")
        if not all(isinstance(item, str) and item for item in value):
            raise self.fail(key, "a list of non-empty strings")
        return tuple(value)

    def numbers(self, key: str, *, length: int, positive: bool = False) -> tuple[float, ...]:
        value = self.record[key]
        ok = isinstance(value, list) and len(value) == length and all(map(_is_number, value))
        if not ok or (positive and min(value) <= 0):
            sign = "positive " if positive else ""
            raise self.fail(key, f"a list of {length} {sign}numbers (one per channel)")
        return tuple(float(item) for item in value)

    def size(self, key: str) -> tuple[int, int]:
        value = self.record[key]
        sides = [value, value] if isinstance(value, int) else value
        ok = isinstance(sides, list) and len(sides) == 2
        if not ok or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sides
        ):
            raise self.fail(key, "[height, width] in pixels")
        return tuple(sides)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.record.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(key, "a mapping of option names to values")
        return value

    def transform(self, key: str) -> dict[str, Any]:
        value = self.record[key]
        if not isinstance(value, dict) or not isinstance(value.get("transform"), dict):
            raise self.fail(key, "an albumentations pipeline as written by A.to_dict")
        return value

    def metrics(self, key: str, *, with_top5: bool) -> Metrics:
        value = self.record[key]
        names = {"top1", "f1", "top5"} if with_top5 else {"top1", "f1"}
        if not isinstance(value, dict) or set(value) != names:
            raise self.fail(key, f"a mapping with exactly the keys {sorted(names)}")
        scores = {name: self.number(key, value[name], 100.0) for name in names}
        return Metrics(**scores)

    def bundled_file(self, key: str) -> str | None:
        value = self.optional_text(key)
        if value is None:
            return None
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or path.suffix != ".ckpt":
            raise self.fail(key, "a .ckpt path relative to the manifest's folder")
        return value

    def url(self, key: str) -> str | None:
        value = self.optional_text(key)
        if value is not None and not value.startswith("https://"):
            raise self.fail(key, "an https:// URL")
        return value


def check_name(name: str, architecture: str) -> str:
    """Return ``name`` if it reads ``arch.dataset`` (or ``arch_variant.dataset``) for
    ``architecture``, in lowercase letters, digits and underscores.

    Raises:
        DataFileError: any other name.

    Example:
        >>> check_name("lenet5_tanh.mnist", "lenet5")
        'lenet5_tanh.mnist'
    """
    prefix = name.split(".")[0]
    if not _NAME.fullmatch(name) or (
        prefix != architecture and not prefix.startswith(f"{architecture}_")
    ):
        raise DataFileError(
            f"zoo entry name {name!r} must read {architecture}.dataset or "
            f"{architecture}_variant.dataset in lowercase letters, digits and underscores, "
            "e.g. 'lenet5.mnist'"
        )
    return name


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
    """Read and check every entry of a manifest.

    Args:
        manifest: the YAML file (default: :func:`manifest_path`).

    Returns:
        The entries in file order.

    Raises:
        DataFileError: a missing or unreadable file, a layout other than ``entries: [...]``,
            an invalid entry, or two entries of the same name.

    Example:
        >>> [entry.name for entry in read_manifest()]  # doctest: +SKIP
        ['lenet5.mnist', 'linear.mnist', 'mlp.mnist']
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
    entries = [ZooEntry.from_dict(record, source=str(path)) for record in data["entries"]]
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataFileError(f"zoo manifest {str(path)!r} lists {repeated} more than once")
    return entries


def write_manifest(entries: list[ZooEntry], manifest: str | Path | None = None) -> Path:
    """Write ``entries`` (sorted by name) atomically, with the manifest's header comment.

    Returns:
        The path written.
    """
    path = manifest_path(manifest)
    records = [entry.to_dict() for entry in sorted(entries, key=lambda entry: entry.name)]
    body = yaml.safe_dump(
        {"entries": records}, sort_keys=False, allow_unicode=True, default_flow_style=None
    )
    _write_atomic(path, _HEADER + body)
    return path


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as file:
        file.write(text)
    os.replace(file.name, path)


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
    for entry in sorted(entries, key=lambda entry: entry.name):
        cells = [
            f"`{entry.name}`",
            entry.dataset,
            _score(entry.metrics.top1),
            _score(entry.metrics.top5),
            _score(entry.metrics.f1),
            _score(entry.reference_top1),
            f"{entry.file_size / 1e6:.2f} MB",
            _duration(entry.training_time_s),
            f"`{entry.recipe}`",
            ", ".join(entry.sources) or "not published",
        ]
        lines.append(f"| {' | '.join(cells)} |")
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

    Example:
        >>> update_table("zoo/README.md", render_table(read_manifest()))  # doctest: +SKIP
        False
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
    if updated == text:
        return False
    if write:
        _write_atomic(path, updated)
    return True
