"""Predictions as files, without Lightning: the images below a folder, the class a folder
names, and the top-k rows of the prediction CSV (``lightning-cv predict``'s
:class:`~lightning_cv.callbacks.PredictionWriter` and ``lightning-cv zoo predict`` write the
same columns).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from lightning_cv._io import atomic_write
from lightning_cv.errors import DataFileError

__all__ = ["IMAGE_EXTENSIONS", "folder_class", "image_files", "prediction_rows",
           "refuse_broken_link", "write_rows"]  # fmt: skip

IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".gif", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}
)


def refuse_broken_link(path: Path, what: str, dataset: str) -> None:
    """A symbolic link whose target is gone, or that leads back to itself, would be skipped
    unseen (``is_file()`` is False for both): refuse it, naming the link and its target.

    Raises:
        DataFileError: ``"<dataset>: image file 'a.jpg' is a link to 'b.jpg', which ..."``.
    """
    if not path.is_symlink():
        return
    try:
        path.stat()
    except FileNotFoundError:
        problem = "which does not exist"
    except OSError:  # ELOOP: the chain of links never reaches a file
        problem = "a loop of links that never reaches a file"
    else:
        return
    raise DataFileError(
        f"{dataset}: {what} {str(path)!r} is a link to {os.readlink(path)!r}, {problem}; "
        "fix or remove the link"
    )


def image_files(path: Path) -> list[Path]:
    """``path`` if it is a file, else the image files below it (sorted, hidden ones skipped).

    Raises:
        DataFileError: no such path, or a folder without image files.
    """
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataFileError(f"image or folder {str(path)!r} does not exist")
    named = sorted(
        file
        for file in path.rglob("*")
        if file.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    for file in named:  # a link named like an image that reaches no file is not skipped
        refuse_broken_link(file, "image file", "predict")
    files = [file for file in named if file.is_file()]
    if not files:
        extensions = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DataFileError(f"folder {str(path)!r} holds no image files ({extensions})")
    return files


def folder_class(folder: str, class_names: Sequence[str]) -> int | None:
    """The class a folder of images names: by the class's name (``7 - seven``) or by its index
    (``7``); None for a folder that names no class.

    Example:
        >>> folder_class("7", ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
        ...                    "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"])
        7
    """
    if folder in class_names:
        return list(class_names).index(folder)
    if folder.isdecimal() and int(folder) < len(class_names):
        return int(folder)
    return None


def prediction_rows(
    probs: torch.Tensor,
    class_names: Sequence[str],
    *,
    top_k: int,
    paths: Sequence[str | Path] | None = None,
    labels: Sequence[int] | None = None,
) -> list[dict[str, str]]:
    """One CSV row per image: ``path`` (with ``paths``), ``label`` (the true class, with
    ``labels``), then ``class_1``, ``prob_1`` ... ``class_k``, ``prob_k``, most probable first.

    Example:
        >>> prediction_rows(torch.tensor([[0.1, 0.9]]), ["cat", "dog"], top_k=1, paths=["a.png"])
        [{'path': 'a.png', 'class_1': 'dog', 'prob_1': '0.900000'}]
    """
    values, indices = probs.float().topk(min(top_k, len(class_names)), dim=1)
    rows = []
    for row, (scores, classes) in enumerate(zip(values.tolist(), indices.tolist(), strict=True)):
        record = {} if paths is None else {"path": str(paths[row])}
        if labels is not None:
            record["label"] = class_names[int(labels[row])]
        for rank, (score, index) in enumerate(zip(scores, classes, strict=True), start=1):
            record[f"class_{rank}"] = class_names[index]
            record[f"prob_{rank}"] = f"{score:.6f}"
        rows.append(record)
    return rows


def write_rows(output: Path, rows: list[dict[str, str]], *, replace: bool) -> None:
    """The rows as one CSV file, written atomically; ``replace=False`` never replaces a file."""
    with atomic_write(output, replace=replace) as staging, open(staging, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
