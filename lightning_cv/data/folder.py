"""Image folders: one sub-folder per class, each file decoded lazily when a sample is drawn.

Also the pieces the other file-based data sets share: the lazy :class:`ImageFiles` sequence,
cheap up-front file checks, and per-channel statistics cached outside the user's data folder.

File policy:
    * Checked when the file list is built (cheap): files with a non-image extension are ignored
      and listed in a warning; zero-byte and missing files, and class folders without images,
      raise :class:`DataFileError`. Hidden files and folders (``.name``) are skipped silently.
    * Checked when a file is decoded (in the loader worker): a file PIL cannot read raises
      :class:`DataFileError` naming it.
    * Colour modes are converted to the data set's channel count with PIL: 16- and 32-bit
      integer greyscale (``I;16``, ``I``) is scaled from 0..65535 to 0..255, alpha is dropped
      (``convert("RGB")``), colour becomes grey by ITU-R 601-2 luma (``convert("L")``). Each
      converted mode is logged once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from lightning_cv._io import atomic_write_text, cache_root
from lightning_cv.data.datamodule import ImageDataModule
from lightning_cv.data.splits import split_indices
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.predictions import IMAGE_EXTENSIONS, refuse_broken_link
from lightning_cv.preprocessing import to_pixels

__all__ = [
    "FolderScan",
    "ImageFiles",
    "ImageFolderDataModule",
    "check_image_files",
    "check_image_options",
    "image_stats",
    "scan_class_folders",
]

log = logging.getLogger(__name__)

TEST_SEED = 0  # the test share of a single folder never moves, whatever split_seed the user picks
STATS_SAMPLE = 2000  # training images decoded to estimate mean and std
STATS_SEED = 0


def _listing(paths: Sequence[Path], limit: int = 5) -> str:
    shown = [str(path) for path in paths[:limit]]
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return f"{shown}{more}"


class ImageFiles(Sequence):
    """Image files decoded one at a time: item ``i`` is file ``i`` as an ``(H, W, C)`` uint8 array.

    Args:
        paths: the image files.
        channels: 1 (grey, mode ``L``) or 3 (``RGB``); other modes are converted (module doc).
        size: ``(height, width)`` every image is resized to (bilinear), or ``None`` to keep
            each file's own size.

    Raises:
        DataFileError: on access, for a file PIL cannot decode.

    Example:
        >>> files = ImageFiles([Path("cat.jpg")], channels=3)
        >>> files[0].shape  # doctest: +SKIP
        (375, 500, 3)
    """

    def __init__(
        self, paths: Sequence[Path], channels: int, size: tuple[int, int] | None = None
    ) -> None:
        self.paths = list(paths)
        self.channels = channels
        self.size = size
        self._logged_modes: set[str] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                self._log_conversion(image.mode, path)
                array = to_pixels(image, self.channels)  # as zoo.load's preprocessing converts
            if self.size is not None and array.shape[:2] != self.size:
                resized = Image.fromarray(array[..., 0] if self.channels == 1 else array)
                resized = resized.resize(self.size[::-1], Image.Resampling.BILINEAR)
                array = np.asarray(resized).reshape(*self.size, self.channels)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise DataFileError(
                f"{str(path)!r}: cannot decode image ({error}); replace or delete the file"
            ) from error
        return array

    def _log_conversion(self, mode: str, path: Path) -> None:
        target = "L" if self.channels == 1 else "RGB"
        if mode != target and mode not in self._logged_modes:
            self._logged_modes.add(mode)
            log.info("converting mode %r images to %r (first: %s)", mode, target, path)

    def to_array(self, size: tuple[int, int] | None = None, threads: int = 8) -> np.ndarray:
        """Decode every file once into one ``(N, H, W, C)`` uint8 array, with a thread pool.

        Args:
            size: ``(height, width)`` to resize every image to (default: this sequence's own).
            threads: decoding threads.

        Raises:
            DataFileError: a file that cannot be decoded, or whose shape differs from the first.
        """
        if size is not None and size != self.size:
            return ImageFiles(self.paths, self.channels, size).to_array(threads=threads)
        first = self[0]
        images = np.empty((len(self), *first.shape), dtype=np.uint8)

        def fill(block: range) -> None:
            for index in block:
                image = self[index]
                if image.shape != first.shape:
                    raise DataFileError(
                        f"{str(self.paths[index])!r} is {image.shape} (H, W, C), expected "
                        f"{first.shape} like {str(self.paths[0])!r}"
                    )
                images[index] = image

        blocks = [range(start, min(start + 512, len(self))) for start in range(0, len(self), 512)]
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fill, blocks))  # list() re-raises a worker's error here
        return images


def check_image_files(paths: Sequence[Path], *, dataset: str) -> int:
    """Raise for missing or zero-byte files without decoding them; return their total bytes.

    Args:
        paths: the image files.
        dataset: who lists them, for the message.

    Returns:
        The files' total size in bytes (part of cache keys).

    Raises:
        DataFileError: naming up to five missing files, else up to five empty ones.
    """
    missing, empty, total = [], [], 0
    for path in paths:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            missing.append(path)
            continue
        except OSError as error:  # a link loop: stat follows it until the kernel gives up
            refuse_broken_link(path, "image file", dataset)
            raise DataFileError(
                f"{dataset}: cannot read image file {str(path)!r}: {error.strerror}"
            ) from None
        if size == 0:
            empty.append(path)
        total += size
    if missing:
        raise DataFileError(f"{dataset}: missing image files ({len(missing)}): {_listing(missing)}")
    if empty:
        raise DataFileError(
            f"{dataset}: empty image files of 0 bytes ({len(empty)}): {_listing(empty)}; "
            "replace or delete them"
        )
    return total


class FolderScan(NamedTuple):
    """The image files of one folder with a sub-folder per class."""

    paths: list[Path]
    labels: np.ndarray  # (N,) int64 index into class_names
    class_names: tuple[str, ...]  # sorted sub-folder names
    num_bytes: int


def scan_class_folders(folder: Path, *, dataset: str) -> FolderScan:
    """List the images of ``folder/<class>/**`` with the cheap checks of the module's policy.

    Raises:
        DataFileError: no class folders, a class folder without images, or missing or empty
            image files.
    """
    entries = [entry for entry in sorted(folder.iterdir()) if not entry.name.startswith(".")]
    for entry in entries:
        refuse_broken_link(entry, "class folder", dataset)
    classes = [entry.name for entry in entries if entry.is_dir()]
    if not classes:
        raise DataFileError(
            f"{dataset}: no class folders in {str(folder)!r}; expected one sub-folder per class"
        )
    paths, labels, ignored = [], [], []
    for label, name in enumerate(classes):
        if not os.access(folder / name, os.R_OK | os.X_OK):  # rglob would skip it silently
            raise DataFileError(
                f"{dataset}: cannot read class folder {str(folder / name)!r} (permission "
                "denied); make it readable or move it out of the data folder"
            )
        images = []
        for path in sorted((folder / name).rglob("*")):
            hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
            if hidden:
                continue
            refuse_broken_link(path, "image file", dataset)
            if not path.is_file():
                continue
            (images if path.suffix.lower() in IMAGE_EXTENSIONS else ignored).append(path)
        if not images:
            raise DataFileError(f"{dataset}: class folder {str(folder / name)!r} has no images")
        paths += images
        labels += [label] * len(images)
    if ignored:
        names = _listing(ignored, limit=10)
        log.warning("%s: ignoring files that are not images (%d): %s", dataset, len(ignored), names)
    num_bytes = check_image_files(paths, dataset=dataset)
    return FolderScan(paths, np.asarray(labels, dtype=np.int64), tuple(classes), num_bytes)


def check_image_options(
    mean: Sequence[float] | None, std: Sequence[float] | None, channels: int, test_fraction: float
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Validate the options of data read from image files; return ``(mean, std)`` as tuples.

    Raises:
        ConfigError: ``in_channels`` not 1 or 3, ``test_fraction`` outside (0, 1), only one of
            ``mean`` and ``std`` given, the wrong length, or a std that is not positive.
    """
    if channels not in (1, 3):
        raise ConfigError(f"in_channels must be 1 or 3, got {channels}")
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if mean is None and std is None:
        return None, None
    if mean is None or std is None:
        raise ConfigError(f"mean and std must be given together, got mean={mean} and std={std}")
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(
            f"mean and std need {channels} values (one per channel), got mean={list(mean)} "
            f"and std={list(std)}"
        )
    if min(std) <= 0:
        raise ConfigError(f"std values must be > 0, got {list(std)}")
    return tuple(mean), tuple(std)


def image_stats(files: ImageFiles, *, source: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std per channel, in [0, 1], of up to 2,000 seeded images of ``files``; cached.

    The result is cached as JSON under :func:`~lightning_cv._io.cache_root` ``/stats`` (never
    inside a data folder, which may be read-only or shared), keyed by the absolute
    ``source`` path, the file count, the channel count and the decode size, so a second data
    module over the same files decodes nothing.

    Args:
        files: the training images (a fixed ``size`` weighs every image the same).
        source: the data folder or list file, for the cache key.

    Example:
        >>> image_stats(ImageFiles(paths, 3, size=(64, 64)), source=Path("pets"))  # doctest: +SKIP
        ((0.48, 0.45, 0.39), (0.26, 0.25, 0.26))
    """
    key = f"{source.resolve()}|{len(files)}|{files.channels}|{files.size}"
    cache = cache_root() / "stats" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    try:
        record = json.loads(cache.read_text())
        if record["key"] == key:
            return tuple(record["mean"]), tuple(record["std"])
    except (OSError, ValueError, KeyError):
        pass  # no cache yet, or a damaged one: recompute
    rng = np.random.default_rng(STATS_SEED)
    chosen = np.sort(rng.choice(len(files), size=min(STATS_SAMPLE, len(files)), replace=False))
    sums = np.zeros(files.channels)
    squares = np.zeros(files.channels)
    count = 0
    for index in chosen:  # streamed: 2,000 large photos would not fit in memory at once
        pixels = files[index].reshape(-1, files.channels) / 255.0  # (H * W, C)
        sums += pixels.sum(0)
        squares += (pixels**2).sum(0)
        count += len(pixels)
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0))
    stats = tuple(mean.round(4).tolist()), tuple(std.round(4).tolist())
    log.info("mean %s and std %s from %d images of %s", *stats, len(chosen), source)
    try:
        atomic_write_text(cache, json.dumps({"key": key, "mean": stats[0], "std": stats[1]}))
    except OSError as error:
        log.warning("could not cache image statistics in %s: %s", cache.parent, error)
    return stats


class ImageFolderDataModule(ImageDataModule):
    """Your own photos: ``root/<class>/*.jpg``, or ``root/{train,test}/<class>/*`` (+ ``val``).

    Class names are the sorted sub-folder names, the same in every split. With ``train`` and
    ``test`` folders those are the official splits (and ``val``, when present, the official
    validation split); a single folder gives a fixed stratified ``test_fraction`` test share.
    ``mean`` and ``std`` default to those of the training images, computed once at setup and
    cached (:func:`image_stats`). Files are decoded lazily; see the module doc for the file policy.

    Args:
        root: the image folder.
        image_size: side the images are resized (and cropped) to.
        in_channels: 1 (grey) or 3 (RGB); files of other modes are converted.
        mean: per-channel mean in [0, 1] (default: computed).
        std: per-channel std in [0, 1] (default: computed).
        test_fraction: the held-out test share of a single folder.
        **kwargs: the :class:`ImageDataModule` options.

    Raises:
        ConfigError: bad ``in_channels``, ``mean``/``std`` or ``test_fraction``.
        DataFileError: a missing folder, a ``train`` folder without ``test``, splits with
            different classes, an empty class folder, empty image files.

    Example:
        >>> data = ImageFolderDataModule("flowers", image_size=128)  # doctest: +SKIP
        >>> data.class_names  # doctest: +SKIP
        ('daisy', 'rose', 'tulip')
    """

    default_train_transform = "imagenet"
    default_eval_transform = "eval"

    def __init__(
        self,
        root: str | Path,
        image_size: int = 224,
        in_channels: int = 3,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        test_fraction: float = 0.2,
        **kwargs,
    ) -> None:
        stats = check_image_options(mean, std, in_channels, test_fraction)
        super().__init__(root=root, **kwargs)
        self.image_size = image_size
        self.in_channels = in_channels
        self.mean, self.std = stats
        self.test_fraction = test_fraction
        self._splits, self.class_names = self._scan()
        self.num_classes = len(self.class_names)
        self.has_val_split = "val" in self._splits

    def _scan(self) -> tuple[dict[str, tuple[list[Path], np.ndarray]], tuple[str, ...]]:
        dataset = type(self).__name__
        if not self.root.is_dir():
            raise DataFileError(f"{dataset}: image folder {str(self.root)!r} does not exist")
        if not (self.root / "train").is_dir():
            scan = scan_class_folders(self.root, dataset=dataset)
            train, test = split_indices(scan.labels, fraction=self.test_fraction, seed=TEST_SEED)
            splits = {
                name: ([scan.paths[i] for i in indices], scan.labels[indices])
                for name, indices in (("train", train), ("test", test))
            }
            return splits, scan.class_names
        if not (self.root / "test").is_dir():
            raise DataFileError(
                f"{dataset}: {str(self.root)!r} has a train folder but no test folder; add "
                "test/<class>/ or put the class folders directly in the root"
            )
        scans = {
            split: scan_class_folders(self.root / split, dataset=dataset)
            for split in ("train", "val", "test")
            if (self.root / split).is_dir()
        }
        classes = scans["train"].class_names
        for split, scan in scans.items():
            if scan.class_names != classes:
                raise DataFileError(
                    f"{dataset}: class folders of {split!r} differ from 'train': only in train "
                    f"{sorted(set(classes) - set(scan.class_names))}, only in {split} "
                    f"{sorted(set(scan.class_names) - set(classes))}; every split needs the "
                    "same class folders"
                )
        return {split: (scan.paths, scan.labels) for split, scan in scans.items()}, classes

    def setup(self, stage: str | None = None) -> None:
        if self.mean is None:
            paths, _ = self._splits["train"]
            size = (self.image_size, self.image_size)
            self.mean, self.std = image_stats(
                ImageFiles(paths, self.in_channels, size), source=self.root
            )
        super().setup(stage)

    def read_split(self, split: str) -> tuple[ImageFiles, np.ndarray]:
        paths, labels = self._splits[split]
        return ImageFiles(paths, self.in_channels), labels
