"""The Oxford-IIIT Pet data set: 7,349 photos of 37 cat and dog breeds, about 200 per breed.

Parkhi, Vedaldi, Zisserman and Jawahar, "Cats and Dogs", CVPR 2012. Official split:
3,680 ``trainval`` and 3,669 ``test`` photos, of varied sizes, decoded lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from torchvision.datasets import OxfordIIITPet

from lightning_cv.data._files import download_file, require_files, safe_extract
from lightning_cv.data.datamodule import ImageDataModule
from lightning_cv.data.folder import ImageFiles, check_image_files
from lightning_cv.errors import ConfigError, DataFileError

__all__ = ["PET_BREEDS", "PET_SPECIES", "OxfordIIITPetDataModule"]

# file-name prefixes in class-id order (1..37): cats are capitalised, dogs are not
_PREFIXES = (
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle",
    "Bengal", "Birman", "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees",
    "havanese", "japanese_chin", "keeshond", "leonberger", "Maine_Coon", "miniature_pinscher",
    "newfoundland", "Persian", "pomeranian", "pug", "Ragdoll", "Russian_Blue", "saint_bernard",
    "samoyed", "scottish_terrier", "shiba_inu", "Siamese", "Sphynx",
    "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier",
)  # fmt: skip
# title-cased as torchvision's OxfordIIITPet does: "american_pit_bull_terrier" -> "American Pit..."
PET_BREEDS = tuple(" ".join(part.title() for part in prefix.split("_")) for prefix in _PREFIXES)
PET_SPECIES = ("Cat", "Dog")
_ANNOTATIONS = {"train": "trainval.txt", "test": "test.txt"}


def _read_annotations(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Image names, breed indices and species indices (0-based) of one split file.

    Each line reads ``Abyssinian_100 1 1 1``: image, class id 1..37, species (1 cat, 2 dog),
    breed id within the species.
    """
    names, breeds, species = [], [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        valid = len(parts) == 4 and all(part.isdigit() for part in parts[1:])
        if not valid or not 1 <= int(parts[1]) <= 37 or not 1 <= int(parts[2]) <= 2:
            raise DataFileError(
                f"{str(path)!r} line {number}: expected 'Name_123 class_id(1-37) species(1-2) "
                f"breed_id', got {line!r}"
            )
        name, class_id = parts[0], int(parts[1])
        if name.rsplit("_", 1)[0] != _PREFIXES[class_id - 1]:
            raise DataFileError(
                f"{str(path)!r} line {number}: image {name!r} has class id {class_id}, which is "
                f"{_PREFIXES[class_id - 1]!r}"
            )
        names.append(name)
        breeds.append(class_id - 1)
        species.append(int(parts[2]) - 1)
    return names, np.asarray(breeds, dtype=np.int64), np.asarray(species, dtype=np.int64)


class OxfordIIITPetDataModule(ImageDataModule):
    """Oxford-IIIT Pet: 37 breeds, or cat vs dog, from ``root/oxford-iiit-pet/``.

    Reads ``images/<Name>_<n>.jpg`` and the official ``annotations/trainval.txt`` (training)
    and ``annotations/test.txt``. The validation share comes from ``trainval``.

    Args:
        target: ``breed`` (37 classes) or ``species`` (2: cat, dog).
        image_size: side the photos are resized and cropped to.
        **kwargs: the :class:`ImageDataModule` options.

    Raises:
        ConfigError: an unknown ``target``.
        DataFileError: at setup, missing annotation or image files, or a malformed line.

    Example:
        >>> data = OxfordIIITPetDataModule(root="data", target="species", download=True)
        >>> data.class_names
        ('Cat', 'Dog')
    """

    in_channels = 3
    mean = (0.485, 0.456, 0.406)  # ImageNet's, as for the pretrained models pets are tuned on
    std = (0.229, 0.224, 0.225)
    default_train_transform = "imagenet"
    default_eval_transform = "eval"

    def __init__(
        self, target: Literal["breed", "species"] = "breed", image_size: int = 224, **kwargs
    ) -> None:
        if target not in ("breed", "species"):
            raise ConfigError(f"unknown target {target!r}; expected 'breed' or 'species'")
        super().__init__(**kwargs)
        self.target = target
        self.image_size = image_size
        self.class_names = PET_BREEDS if target == "breed" else PET_SPECIES
        self.num_classes = len(self.class_names)

    @property
    def folder(self) -> Path:
        """Where torchvision's layout puts the files: ``root/oxford-iiit-pet``."""
        return self.root / "oxford-iiit-pet"

    def download_files(self) -> None:
        if (self.folder / "images").is_dir() and (self.folder / "annotations").is_dir():
            return
        for url, md5 in OxfordIIITPet._RESOURCES:
            archive = self.folder / url.rsplit("/", 1)[1]
            download_file(url, archive, md5, dataset="Oxford-IIIT Pet")
            safe_extract(archive, self.folder)

    def read_split(self, split: str) -> tuple[ImageFiles, np.ndarray]:
        require_files(
            self.folder / "annotations",
            _ANNOTATIONS.values(),
            dataset="Oxford-IIIT Pet",
            hint=self.files_hint(
                "pass download=True or unpack images.tar.gz and annotations.tar.gz there"
            ),
        )
        names, breeds, species = _read_annotations(
            self.folder / "annotations" / _ANNOTATIONS[split]
        )
        paths = [self.folder / "images" / f"{name}.jpg" for name in names]
        check_image_files(paths, dataset="Oxford-IIIT Pet")
        return ImageFiles(paths, channels=3), breeds if self.target == "breed" else species
