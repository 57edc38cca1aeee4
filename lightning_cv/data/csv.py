"""Images listed in a CSV file: one row per image with its path, class name and maybe split/group.

Handy when labels live in a spreadsheet rather than in folder names, or when several images
of one patient, plant or session must stay on the same side of a split (``group_column``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lightning_cv.data.datamodule import ImageDataModule
from lightning_cv.data.folder import (
    TEST_SEED,
    ImageFiles,
    check_image_files,
    check_image_options,
    image_stats,
)
from lightning_cv.data.splits import split_indices
from lightning_cv.errors import DataFileError

__all__ = ["CSVDataModule"]

SPLITS = ("train", "val", "test")


class CSVDataModule(ImageDataModule):
    """Images and labels from a CSV file; paths are relative to the CSV file's folder.

    Class names are the sorted distinct values of ``label_column``. With ``split_column``, its
    values (``train``, ``val``, ``test``) are the official splits; without it a fixed
    stratified ``test_fraction`` share (by group when ``group_column`` is set) is the test split.
    ``group_column`` also feeds ``split_strategy="group"``, so no group straddles train and
    validation.
    ``mean`` and ``std`` default to those of the training images (computed at setup, cached).

    Args:
        csv_file: the CSV file, with a header row.
        image_column: column of image paths.
        label_column: column of class names.
        group_column: column of group ids (patient, plant, session, ...), optional.
        split_column: column of ``train`` / ``val`` / ``test``, optional.
        image_size: side the images are resized (and cropped) to.
        in_channels: 1 (grey) or 3 (RGB); files of other modes are converted.
        mean: per-channel mean in [0, 1] (default: computed).
        std: per-channel std in [0, 1] (default: computed).
        test_fraction: the held-out test share when there is no split column.
        **kwargs: the :class:`ImageDataModule` options.

    Raises:
        ConfigError: bad ``in_channels``, ``mean``/``std`` or ``test_fraction``.
        DataFileError: a missing CSV file or column, empty cells, an unknown split value, a
            split without rows, missing or empty image files.

    Example:
        >>> data = CSVDataModule("leaves/labels.csv", group_column="plant", split_strategy="group")
        ... # doctest: +SKIP
    """

    default_train_transform = "imagenet"
    default_eval_transform = "eval"

    def __init__(
        self,
        csv_file: str | Path,
        image_column: str = "image",
        label_column: str = "label",
        group_column: str | None = None,
        split_column: str | None = None,
        image_size: int = 224,
        in_channels: int = 3,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        test_fraction: float = 0.2,
        **kwargs,
    ) -> None:
        stats = check_image_options(mean, std, in_channels, test_fraction)
        super().__init__(**kwargs)
        self.csv_file = Path(csv_file)
        self.image_size = image_size
        self.in_channels = in_channels
        self.mean, self.std = stats
        self.test_fraction = test_fraction
        self.split_column = split_column
        columns = {
            "image": image_column,
            "label": label_column,
            "group": group_column,
            "split": split_column,
        }
        table = self._read({role: name for role, name in columns.items() if name is not None})
        self.class_names = tuple(sorted(set(table["label"])))
        self.num_classes = len(self.class_names)
        paths = [self.csv_file.parent / name for name in table["image"]]
        check_image_files(paths, dataset=f"CSV {str(self.csv_file)!r}")
        self._paths = np.asarray(paths, dtype=object)
        self._labels = np.searchsorted(self.class_names, table["label"]).astype(np.int64)
        groups = table.get("group")
        self._groups = None if groups is None else np.unique(groups, return_inverse=True)[1]
        self._rows = self._split_rows(table.get("split"))
        self.has_val_split = len(self._rows["val"]) > 0

    def _read(self, columns: dict[str, str]) -> dict[str, list[str]]:
        """The CSV's columns by role (``image``, ``label``, ``group``, ``split``)."""
        path = self.csv_file
        if not path.is_file():
            raise DataFileError(f"CSV file {str(path)!r} does not exist")
        try:
            with open(path, newline="", encoding="utf-8-sig") as file:
                reader = csv.DictReader(file)
                rows = list(reader)
                present = reader.fieldnames or []
        except UnicodeDecodeError as error:
            raise DataFileError(
                f"CSV file {str(path)!r} is not UTF-8 text (byte {error.object[error.start]:#04x} "
                f"at offset {error.start} is not UTF-8); save it as UTF-8"
            ) from None
        missing = [name for name in columns.values() if name not in present]
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise DataFileError(f"{str(path)!r} has no column {names}; its columns are {present}")
        if not rows:
            raise DataFileError(f"{str(path)!r}: no rows below the header")
        table = {
            role: [(row[name] or "").strip() for row in rows] for role, name in columns.items()
        }
        for role, name in columns.items():
            empty = [number + 2 for number, value in enumerate(table[role]) if not value]
            if empty:  # line 1 is the header
                raise DataFileError(f"{str(path)!r}: empty {name!r} on lines {empty[:5]}")
        return table

    def _split_rows(self, splits: list[str] | None) -> dict[str, np.ndarray]:
        if splits is None:
            groups = self._groups
            strategy = "stratified" if groups is None else "group"
            train, test = split_indices(
                self._labels,
                fraction=self.test_fraction,
                strategy=strategy,
                seed=TEST_SEED,
                groups=groups,
            )
            return {"train": train, "val": np.array([], dtype=np.int64), "test": test}
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown:
            raise DataFileError(
                f"{str(self.csv_file)!r}: unknown split values {unknown}; expected 'train', "
                "'val' or 'test'"
            )
        values = np.asarray(splits)
        rows = {split: np.flatnonzero(values == split) for split in SPLITS}
        for split in ("train", "test"):
            if not len(rows[split]):
                raise DataFileError(
                    f"{str(self.csv_file)!r}: no {split!r} rows in column {self.split_column!r}"
                )
        return rows

    def setup(self, stage: str | None = None) -> None:
        if self.mean is None:
            paths = self._paths[self._rows["train"]]
            size = (self.image_size, self.image_size)
            files = ImageFiles(paths, self.in_channels, size)
            self.mean, self.std = image_stats(files, source=self.csv_file)
        super().setup(stage)

    def read_split(self, split: str) -> tuple[ImageFiles, np.ndarray]:
        rows = self._rows[split]
        return ImageFiles(self._paths[rows], self.in_channels), self._labels[rows]

    def load_groups(self, split: str) -> np.ndarray | None:
        return None if self._groups is None else self._groups[self._rows[split]]
