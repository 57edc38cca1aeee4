"""DataModules: one shared base and a short spec per data set."""

from lightning_cv.data._files import DATA_ENV, data_root
from lightning_cv.data.batch_transforms import (
    BatchAugment,
    HorizontalFlip,
    PadCrop,
    PerSampleChoice,
    RandomApply,
)
from lightning_cv.data.batches import BatchDataset, BatchOrder
from lightning_cv.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from lightning_cv.data.csv import CSVDataModule
from lightning_cv.data.datamodule import ImageDataModule
from lightning_cv.data.digits import DigitsDataModule
from lightning_cv.data.folder import ImageFiles, ImageFolderDataModule
from lightning_cv.data.mnist import FashionMNISTDataModule, KMNISTDataModule, MNISTDataModule
from lightning_cv.data.pet import OxfordIIITPetDataModule
from lightning_cv.data.pipelines import BatchPipeline, SampleDataset, SamplePipeline
from lightning_cv.data.sampling import SAMPLERS, WeightedDraw, read_class_weights, sample_weights
from lightning_cv.data.splits import fingerprint, kfold_indices, split_indices
from lightning_cv.data.stats import channel_stats, class_counts
from lightning_cv.data.stl10 import STL10DataModule
from lightning_cv.data.svhn import SVHNDataModule
from lightning_cv.data.transforms import (
    PRESETS,
    Preset,
    build_batch_transform,
    build_transform,
    load_transform,
    save_transform,
)

__all__ = [
    "DATA_ENV",
    "PRESETS",
    "SAMPLERS",
    "BatchAugment",
    "BatchDataset",
    "BatchOrder",
    "BatchPipeline",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CSVDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "HorizontalFlip",
    "ImageDataModule",
    "ImageFiles",
    "ImageFolderDataModule",
    "KMNISTDataModule",
    "MNISTDataModule",
    "OxfordIIITPetDataModule",
    "PadCrop",
    "PerSampleChoice",
    "Preset",
    "RandomApply",
    "STL10DataModule",
    "SVHNDataModule",
    "SampleDataset",
    "SamplePipeline",
    "WeightedDraw",
    "build_batch_transform",
    "build_transform",
    "channel_stats",
    "class_counts",
    "data_root",
    "fingerprint",
    "kfold_indices",
    "load_transform",
    "read_class_weights",
    "sample_weights",
    "save_transform",
    "split_indices",
]
