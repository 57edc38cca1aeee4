"""CIFAR-10 and CIFAR-100: 32x32 colour photos, 50,000 for training and 10,000 for testing.

Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009. Read from the
official python batches, or from an image-folder export (``root/{train,test}/<class>/*``),
which is decoded once into a uint8 array and cached under ``LIGHTNING_CV_HOME``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from torchvision.datasets import CIFAR10, CIFAR100

from lightning_cv._io import atomic_write, cache_root
from lightning_cv.data._files import download_file, require_files, safe_extract, verify_md5
from lightning_cv.data.datamodule import ImageDataModule
from lightning_cv.data.folder import FolderScan, ImageFiles, scan_class_folders
from lightning_cv.errors import ConfigError, DataFileError

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR100_CLASSES",
    "CIFAR100_SUPERCLASSES",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "load_cifar_pickle",
]

log = logging.getLogger(__name__)

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip
CIFAR100_SUPERCLASSES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
)  # fmt: skip

# the globals numpy needs to rebuild an array (protocols 2-5, numpy 1.x and 2.x names)
_ARRAY_GLOBALS = frozenset(
    {
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)
LARGEST_ARRAY = (50_000, 3072)  # CIFAR-100's training images, uint8: the largest array of all
_NDARRAY = "numpy.ndarray"  # what the pickle gets for the class: not callable, so never called


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays only: no other global can be called, and
    numpy allocates nothing the pickle claims before the claim is checked (:meth:`array`)."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="bytes")  # the batches were pickled by Python 2
        self.path, self.file_size = path, os.fstat(file.fileno()).st_size

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ARRAY_GLOBALS:
            raise DataFileError(
                f"{str(self.path)!r}: refusing to unpickle {module}.{name}; a CIFAR batch holds "
                "only numpy arrays, lists and bytes"
            )
        rebuilders = {"ndarray": _NDARRAY, "_reconstruct": self._reconstruct,
                      "_frombuffer": self.array}  # fmt: skip
        return rebuilders.get(name) or super().find_class(module, name)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> _PickledArray:
        if subtype != _NDARRAY:
            raise DataFileError(f"{str(self.path)!r}: not a CIFAR python batch (an array subclass)")
        self.array(b"", np.dtype(dtype), shape, "C", check_bytes=False)  # the shape is a claim too
        return _PickledArray(self)

    def array(self, data: Any, dtype: Any, shape: Any, order: str, *, check_bytes: bool = True):
        """``data`` as an array of ``shape``, once the claimed size is that of ``data`` and fits
        this file and a CIFAR batch."""
        if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or dtype.hasobject:
            raise DataFileError(f"{str(self.path)!r}: not a CIFAR python batch (dtype {dtype})")
        if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise DataFileError(f"{str(self.path)!r}: not a CIFAR python batch (shape {shape!r})")
        claimed = math.prod(shape) * dtype.itemsize
        if claimed > min(self.file_size, math.prod(LARGEST_ARRAY)):
            raise DataFileError(
                f"{str(self.path)!r}: an array claims shape {shape} of {dtype} ({claimed:,} "
                f"bytes), more than this {self.file_size:,}-byte file holds; a CIFAR batch holds "
                f"uint8 arrays of at most {LARGEST_ARRAY} ({math.prod(LARGEST_ARRAY):,} bytes)"
            )
        if check_bytes and (not isinstance(data, bytes | bytearray) or len(data) != claimed):
            raise DataFileError(
                f"{str(self.path)!r}: not a CIFAR python batch (an array of {claimed:,} bytes "
                f"holds {len(data) if isinstance(data, bytes | bytearray) else 'no'} bytes)"
            )
        # a fresh dtype from its name: the flags a pickle may have set on the old one are gone
        return np.frombuffer(data, np.dtype(dtype.str)).reshape(shape, order=order)


class _PickledArray:
    """An array being unpickled: numpy's ``_reconstruct`` and ``__setstate__``, with the state
    checked by :meth:`_ArrayUnpickler.array` before anything is allocated."""

    def __init__(self, unpickler: _ArrayUnpickler) -> None:
        self.unpickler, self.value = unpickler, None

    def __setstate__(self, state: tuple) -> None:
        shape, dtype, fortran, data = state[-4:]  # (version,) shape, dtype, is_fortran, data
        self.value = self.unpickler.array(data, dtype, shape, "F" if fortran else "C")


def _built(value: Any) -> Any:
    """``value`` with the unpickled arrays in place of their :class:`_PickledArray`."""
    if isinstance(value, _PickledArray):
        if value.value is None:  # no state followed its _reconstruct
            path = str(value.unpickler.path)
            raise DataFileError(f"{path!r}: not a CIFAR python batch (an array without data)")
        return value.value
    if isinstance(value, list):
        return [_built(item) for item in value]
    return value


def load_cifar_pickle(path: Path) -> dict[bytes, Any]:
    """Read one official CIFAR python batch, refusing any pickle that would run other code or
    claims arrays larger than the file (checked before numpy allocates them).

    Raises:
        DataFileError: a global other than numpy's array rebuilders, an array that claims more
            bytes than the file holds, or not a pickled dict.

    Example:
        >>> batch = load_cifar_pickle(Path("data/cifar-10-batches-py/test_batch"))  # doctest: +SKIP
        >>> batch[b"data"].shape  # doctest: +SKIP
        (10000, 3072)
    """
    with open(path, "rb") as file:
        try:
            record = _ArrayUnpickler(file, path).load()
        except DataFileError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError) as error:
            raise DataFileError(f"{str(path)!r}: not a CIFAR python batch ({error})") from error
    if not isinstance(record, dict):
        raise DataFileError(f"{str(path)!r}: not a CIFAR python batch (a {type(record).__name__})")
    return {key: _built(value) for key, value in record.items()}


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10: 10 classes, 32x32 RGB, 50,000 training and 10,000 test images.

    Reads ``root/cifar-10-batches-py/`` (the official batches, MD5-checked against
    torchvision's table) or, when that folder is absent, an image-folder export
    ``{train,test}/<class>/*`` whose class folders must be the official names, in
    ``root/CIFAR-10-images/`` (the name of the common JPEG export) or in ``root`` itself.

    Args:
        **kwargs: the :class:`ImageDataModule` options.

    Raises:
        DataFileError: at setup, missing or corrupt files, or folders with other classes.

    Example:
        >>> data = CIFAR10DataModule(root="data", download=True)
        >>> data.num_classes, data.image_size
        (10, 32)
    """

    num_classes = 10
    class_names = CIFAR10_CLASSES
    in_channels = 3
    image_size = 32
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    default_train_transform = "cifar"
    dataset_name = "CIFAR-10"
    export_folder = "CIFAR-10-images"
    # torchvision's table of the official files: folder, (batch, MD5) lists, archive. A batch
    # whose MD5 matches holds the official arrays and labels, so nothing in it is re-checked
    base_folder = CIFAR10.base_folder
    train_list = CIFAR10.train_list
    test_list = CIFAR10.test_list
    url, archive, archive_md5 = CIFAR10.url, CIFAR10.filename, CIFAR10.tgz_md5
    label_key = b"labels"

    def download_files(self) -> None:
        folder = self.root / self.base_folder
        names = [name for name, _ in [*self.train_list, *self.test_list]]
        if all((folder / name).is_file() for name in names):
            return
        download_file(
            self.url, self.root / self.archive, self.archive_md5, dataset=self.dataset_name
        )
        safe_extract(self.root / self.archive, self.root)

    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if (self.root / self.base_folder).is_dir():
            return self._load_batches(split)
        exports = [self.root / self.export_folder, self.root]
        for export in exports:
            if (export / "train").is_dir():
                return self._load_image_folder(export / split)
        tried = " or ".join(repr(str(export / "train")) for export in exports)
        raise DataFileError(
            f"{self.dataset_name}: found neither {str(self.root / self.base_folder)!r} nor an "
            f"image-folder export {tried}; "
            + self.files_hint("pass download=True or copy the files there")
        )

    def _load_batches(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        folder = self.root / self.base_folder
        batches = self.train_list if split == "train" else self.test_list
        require_files(
            folder,
            [name for name, _ in batches],
            dataset=self.dataset_name,
            hint=self.files_hint("pass download=True or copy the official python batches there"),
        )
        images, labels = [], []
        for name, md5 in batches:
            verify_md5(folder / name, md5, dataset=self.dataset_name)
            batch = load_cifar_pickle(folder / name)
            # each row: 1024 red, then 1024 green, then 1024 blue values, each plane 32x32
            # row-major: (N, 3072) -> (N, 3, 32, 32) -> (N, 32, 32, 3)
            images.append(batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels += batch[self.label_key]
        return np.ascontiguousarray(np.concatenate(images)), np.asarray(labels, dtype=np.int64)

    def _load_image_folder(self, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        scan = scan_class_folders(folder, dataset=self.dataset_name)
        if scan.class_names != self.class_names:
            raise DataFileError(
                f"{self.dataset_name}: class folders in {str(folder)!r} are "
                f"{list(scan.class_names)}, expected {list(self.class_names)}"
            )
        cache = cache_root() / "cifar" / f"{_folder_key(folder, scan)}.npy"
        images = _read_cache(cache, (len(scan.paths), 32, 32, 3))
        if images is None:
            log.info("decoding %d images of %s once; cached in %s", len(scan.paths), folder, cache)
            images = ImageFiles(scan.paths, channels=3).to_array()
            if images.shape[1:] != (32, 32, 3):
                raise DataFileError(
                    f"{self.dataset_name}: images in {str(folder)!r} are {images.shape[1:]} "
                    "(H, W, C), expected (32, 32, 3)"
                )
            _write_cache(cache, images)
        return images, scan.labels


_CACHE_FORMAT = 2  # bump when the decoded arrays change meaning (resizing, channel order)


def _folder_key(folder: Path, scan: FolderScan) -> str:
    """What the decoded arrays were made from: every file's name, class, size and mtime, and
    the code's format, hashed. Renamed, swapped, added, removed or edited files give another
    key, so a stale cache is never served."""
    digest = hashlib.sha256(f"{folder.resolve()}|format {_CACHE_FORMAT}".encode())
    for path, label in zip(scan.paths, scan.labels.tolist(), strict=True):
        stat = path.stat()
        name = path.relative_to(folder).as_posix()
        digest.update(
            f"|{name}|{scan.class_names[label]}|{stat.st_size}|{stat.st_mtime_ns}".encode()
        )
    return digest.hexdigest()[:16]


def _read_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        images = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # no cache yet, or a damaged one: decode again
    return images if images.shape == shape and images.dtype == np.uint8 else None


def _write_cache(path: Path, images: np.ndarray) -> None:
    try:
        with atomic_write(path) as staging, open(staging, "wb") as file:
            np.save(file, images)  # a reader never sees a half-written cache
    except OSError as error:
        log.warning("could not cache decoded images in %s: %s", path.parent, error)


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100: 100 classes (``fine``) grouped into 20 superclasses (``coarse``).

    Args:
        label_type: ``fine`` (100 classes) or ``coarse`` (20 superclasses, official batches
            only: an image-folder export holds only the fine labels).
        **kwargs: the :class:`ImageDataModule` options.

    Raises:
        ConfigError: an unknown ``label_type``.

    Example:
        >>> data = CIFAR100DataModule(root="data", label_type="coarse")
        >>> data.num_classes, data.class_names[0]
        (20, 'aquatic_mammals')
    """

    num_classes = 100
    class_names = CIFAR100_CLASSES
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    dataset_name = "CIFAR-100"
    export_folder = "CIFAR-100-images"
    base_folder = CIFAR100.base_folder
    train_list = CIFAR100.train_list
    test_list = CIFAR100.test_list
    url, archive, archive_md5 = CIFAR100.url, CIFAR100.filename, CIFAR100.tgz_md5

    def __init__(self, label_type: Literal["fine", "coarse"] = "fine", **kwargs) -> None:
        if label_type not in ("fine", "coarse"):
            raise ConfigError(f"unknown label_type {label_type!r}; expected 'fine' or 'coarse'")
        super().__init__(**kwargs)
        self.label_type = label_type
        self.label_key = f"{label_type}_labels".encode()
        if label_type == "coarse":
            self.num_classes = len(CIFAR100_SUPERCLASSES)
            self.class_names = CIFAR100_SUPERCLASSES

    def _load_image_folder(self, folder: Path) -> tuple[np.ndarray, np.ndarray]:
        if self.label_type == "coarse":
            raise ConfigError(
                f"label_type='coarse' needs the official CIFAR-100 batches in "
                f"{str(self.root / self.base_folder)!r}; an image-folder export holds only the "
                "fine labels"
            )
        return super()._load_image_folder(folder)
