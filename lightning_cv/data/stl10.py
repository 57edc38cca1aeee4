"""STL-10 (Coates, Lee and Ng 2011): 96x96 RGB photos of ten ImageNet classes.

The labelled splits of the binary release: 5,000 training and 8,000 test images in
``root/stl10_binary/{train,test}_{X,y}.bin`` (torchvision's layout). The 100,000 unlabelled
images are not used. Files are checked against torchvision's MD5s and decoded once.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
from torchvision import datasets

from lightning_cv._io import atomic_write
from lightning_cv.data._files import download_file, require_files, verify_md5
from lightning_cv.data.datamodule import ImageDataModule
from lightning_cv.errors import DataFileError

__all__ = ["STL10DataModule"]

# the order of class_names.txt in the official archive; labels 1..10 index into it
CLASS_NAMES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
_HINT = "pass download=True (or --data.download true) or unpack the official archive there"


class STL10DataModule(ImageDataModule):
    """STL-10's labelled images; class names come from ``class_names.txt`` when present.

    Args:
        **kwargs: the :class:`ImageDataModule` options.

    Raises:
        DataFileError: a ``class_names.txt`` that does not list ten names.

    Example:
        >>> data = STL10DataModule(root="data", download=True)  # doctest: +SKIP
        >>> data.setup("fit"); len(data.train_set)  # doctest: +SKIP
        4500
    """

    num_classes = 10
    class_names = CLASS_NAMES
    in_channels = 3
    image_size = 96
    mean = (0.4467, 0.4398, 0.4066)
    std = (0.2603, 0.2566, 0.2713)
    default_train_transform = "cifar"  # pad-crop, flip, jitter: fits photos of any size
    url = datasets.STL10.url
    archive = datasets.STL10.filename
    md5s = dict(datasets.STL10.train_list + datasets.STL10.test_list) | {
        datasets.STL10.filename: datasets.STL10.tgz_md5
    }
    file_names = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        names_file = self.folder / datasets.STL10.class_names_file
        if names_file.is_file():
            lines = names_file.read_text().splitlines()
            self.class_names = tuple(line.strip() for line in lines if line.strip())
            if len(self.class_names) != self.num_classes:
                raise DataFileError(
                    f"STL10: {str(names_file)!r} lists {len(self.class_names)} class names, "
                    f"expected {self.num_classes}, one per line"
                )

    @property
    def folder(self) -> Path:
        """Where the unpacked files are: ``root/stl10_binary``."""
        return self.root / datasets.STL10.base_folder

    def download_files(self) -> None:
        """Fetch the archive and unpack the files of ``stl10_binary/`` that the folder lacks.

        Only plain files directly in that folder are read, under names chosen here, so no
        member can land elsewhere; each is written atomically, and the user's files are kept.
        """
        if all((self.folder / name).is_file() for name in self.file_names):
            return
        archive = self.root / self.archive
        download_file(self.url, archive, self.md5s[archive.name], dataset="STL10")
        with tarfile.open(archive) as bundle:
            for member in bundle:  # in archive order: the .gz stream is read once
                name = PurePosixPath(member.name)
                target = self.folder / name.name
                if member.isfile() and name.parent.name == self.folder.name and not target.exists():
                    with atomic_write(target) as staging, open(staging, "wb") as file:
                        shutil.copyfileobj(bundle.extractfile(member), file)

    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 96, 96, 3)`` uint8 images and ``(N,)`` int64 labels of ``train`` or ``test``.

        Both files are MD5-checked first, so their sizes and labels are the official ones.
        """
        require_files(self.folder, self.file_names, dataset="STL10", hint=self.files_hint(_HINT))
        images_path, labels_path = self.folder / f"{split}_X.bin", self.folder / f"{split}_y.bin"
        for path in (images_path, labels_path):
            verify_md5(path, self.md5s[path.name], dataset="STL10")
        # each image is stored channel after channel, each channel column-major:
        # (N, C, W, H) -> (N, H, W, C)
        pixels = np.fromfile(images_path, dtype=np.uint8).reshape(-1, 3, 96, 96)
        images = np.ascontiguousarray(pixels.transpose(0, 3, 2, 1))
        labels = np.fromfile(labels_path, dtype=np.uint8).astype(np.int64)
        return images, labels - 1  # the files count classes from 1
