"""DataModules: one shared base and a short spec per data set."""

from lightning_cv.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from lightning_cv.data.csv import CSVDataModule
from lightning_cv.data.datamodule import ImageDataModule, SampleDataset
from lightning_cv.data.digits import DigitsDataModule
from lightning_cv.data.folder import ImageFiles, ImageFolderDataModule
from lightning_cv.data.mnist import FashionMNISTDataModule, KMNISTDataModule, MNISTDataModule
from lightning_cv.data.pet import OxfordIIITPetDataModule
from lightning_cv.data.splits import fingerprint, kfold_indices, split_indices
from lightning_cv.data.stats import channel_stats, class_counts
from lightning_cv.data.stl10 import STL10DataModule
from lightning_cv.data.svhn import SVHNDataModule
from lightning_cv.data.transforms import PRESETS, build_transform, load_transform, save_transform

__all__ = [
    "PRESETS",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CSVDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFiles",
    "ImageFolderDataModule",
    "KMNISTDataModule",
    "MNISTDataModule",
    "OxfordIIITPetDataModule",
    "STL10DataModule",
    "SVHNDataModule",
    "SampleDataset",
    "build_transform",
    "channel_stats",
    "class_counts",
    "fingerprint",
    "kfold_indices",
    "load_transform",
    "save_transform",
    "split_indices",
]
