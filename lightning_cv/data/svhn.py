"""SVHN (Netzer et al. 2011): house-number digits cropped from Google Street View, 32x32 RGB.

Format 2 of the data set: MATLAB files ``root/SVHN/{train,test,extra}_32x32.mat`` with 73,257
training, 26,032 test and 531,131 easier "extra" images, checked against torchvision's MD5s
and decoded once into uint8 arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import loadmat
from torchvision import datasets

from lightning_cv.data._files import download_file, require_files, verify_md5
from lightning_cv.data.datamodule import ImageDataModule

__all__ = ["SVHNDataModule"]

_HINT = "pass download=True (or --data.download true) or copy the official files there"


class SVHNDataModule(ImageDataModule):
    """Street View House Numbers, digits 0-9 (the files' label 10 is the digit 0).

    Args:
        use_extra: train on ``train`` plus the 531,131 ``extra`` images (1.6 GB in memory).
        **kwargs: the :class:`ImageDataModule` options.

    Example:
        >>> data = SVHNDataModule(root="data", download=True)  # doctest: +SKIP
        >>> data.setup("test"); len(data.test_set)  # doctest: +SKIP
        26032
    """

    allows_flip = False

    num_classes = 10
    class_names = tuple(str(digit) for digit in range(10))
    in_channels = 3
    image_size = 32
    mean = (0.4377, 0.4438, 0.4728)
    std = (0.1980, 0.2010, 0.1970)
    default_train_transform = "digits"  # digits never flip: a mirrored 2 is no digit
    md5s = {name: md5 for _, name, md5 in datasets.SVHN.split_list.values()}
    urls = {name: url for url, name, _ in datasets.SVHN.split_list.values()}

    def __init__(self, use_extra: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.use_extra = use_extra

    @property
    def folder(self) -> Path:
        """Where the ``.mat`` files are: ``root/SVHN``."""
        return self.root / "SVHN"

    @property
    def file_names(self) -> list[str]:
        """The files this configuration reads."""
        splits = ["train", "test", "extra"] if self.use_extra else ["train", "test"]
        return [f"{split}_32x32.mat" for split in splits]

    def download_files(self) -> None:
        for name in self.file_names:
            download_file(self.urls[name], self.folder / name, self.md5s[name], dataset="SVHN")

    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 32, 32, 3)`` uint8 images and ``(N,)`` int64 labels of ``train`` or ``test``."""
        if split != "train" or not self.use_extra:
            return self._read(split)
        parts = [self._read("train"), self._read("extra")]
        return tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))

    def _read(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        require_files(self.folder, self.file_names, dataset="SVHN", hint=self.files_hint(_HINT))
        path = self.folder / f"{split}_32x32.mat"
        verify_md5(path, self.md5s[path.name], dataset="SVHN")  # so X and y are the official
        contents = loadmat(path, variable_names=("X", "y"))
        # (H, W, C, N) -> (N, H, W, C)
        images = np.ascontiguousarray(contents["X"].transpose(3, 0, 1, 2))
        return images, contents["y"].ravel().astype(np.int64) % 10  # the files label 0 as 10
