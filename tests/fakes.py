"""Writers of small fake data sets in the real on-disk formats: IDX (gzip), SVHN .mat, STL-10.

Each writer draws random uint8 images and labels that cover every class, writes them where
the DataModule expects them, and returns what it wrote as ``{split: (images, labels)}`` with
``(N, H, W, C)`` uint8 images and ``(N,)`` int64 labels counted from 0, so a test can compare
a decoded split with its source.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import tarfile
from pathlib import Path

import numpy as np
from scipy.io import savemat

from lightning_cv.data import MNISTDataModule

__all__ = [
    "IDX_STEMS",
    "SIZES",
    "fake_split",
    "md5_table",
    "write_idx",
    "write_idx_dataset",
    "write_stl10",
    "write_stl10_archive",
    "write_svhn",
]

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]

SIZES = {"train": 50, "test": 20}
# (images, labels) file stems per split, as LeCun named them
IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def fake_split(count: int, shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random ``(H, W, C)`` uint8 images and shuffled labels cycling over 10 classes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)
    labels = rng.permutation(np.arange(count) % 10).astype(np.int64)
    return images, labels


def md5_table(folder: Path) -> dict[str, str]:
    """``{file name: MD5}`` of the files directly in ``folder``: a stand-in for torchvision's."""
    return {
        path.name: hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.is_file()
    }


def write_idx(path: Path, array: np.ndarray, *, magic: int | None = None) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzip'ed when ``path`` ends in ``.gz``.

    The header is the magic number (2051 for 3-d images, 2049 for 1-d labels, unless given)
    and each dimension, all big-endian int32.
    """
    magic = magic if magic is not None else 0x800 + array.ndim
    data = (
        struct.pack(f">{1 + array.ndim}i", magic, *array.shape) + array.astype(np.uint8).tobytes()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_idx_dataset(
    root: Path, folder: str, *, sizes: dict[str, int] = SIZES, compress: bool = True, seed: int = 0
) -> Arrays:
    """Write ``root/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``."""
    written = {}
    for offset, (split, (images_stem, labels_stem)) in enumerate(IDX_STEMS.items()):
        images, labels = fake_split(sizes[split], (28, 28, 1), seed + offset)
        suffix = ".gz" if compress else ""
        write_idx(root / folder / "raw" / f"{images_stem}{suffix}", images[..., 0])
        write_idx(root / folder / "raw" / f"{labels_stem}{suffix}", labels)
        written[split] = (images, labels)
    return written


def write_svhn(root: Path, *, sizes: dict[str, int] = SIZES, seed: int = 0) -> Arrays:
    """Write ``root/SVHN/<split>_32x32.mat`` as the official files are laid out.

    ``X`` is ``(32, 32, 3, N)`` uint8 and ``y`` is ``(N, 1)`` uint8 with 10 for the digit 0.
    """
    written = {}
    for offset, (split, count) in enumerate(sizes.items()):
        images, labels = fake_split(count, (32, 32, 3), seed + offset)
        (root / "SVHN").mkdir(parents=True, exist_ok=True)
        y = np.where(labels == 0, 10, labels).astype(np.uint8)[:, None]
        savemat(root / "SVHN" / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": y})
        written[split] = (images, labels)
    return written


def write_stl10(root: Path, *, sizes: dict[str, int] = SIZES, seed: int = 0) -> Arrays:
    """Write ``root/stl10_binary/{train,test}_{X,y}.bin`` and ``class_names.txt``.

    Per image, the red, green and blue 96x96 channels follow each other, each stored
    column-major (one column after the other); labels are uint8 counted from 1.
    """
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for offset, (split, count) in enumerate(sizes.items()):
        images, labels = fake_split(count, (96, 96, 3), seed + offset)
        # (N, H, W, C) -> (N, C, W, H): column-major channels
        (folder / f"{split}_X.bin").write_bytes(images.transpose(0, 3, 2, 1).tobytes())
        (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
        written[split] = (images, labels)
    names = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    return written


def write_stl10_archive(folder: Path, archive: Path) -> Path:
    """Pack ``folder`` (an ``stl10_binary`` folder) as the official ``.tar.gz`` does."""
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(folder, arcname=folder.name)
    return archive


class UncheckedMNIST(MNISTDataModule):
    """MNIST without the official unpacked-content MD5s, for tests whose unpacked MNIST files
    are fakes or cut copies (a user's MNIST is checked against them)."""

    unpacked_md5s = {}
