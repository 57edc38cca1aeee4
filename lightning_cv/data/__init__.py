"""DataModules: one shared base and a short spec per data set."""

from lightning_cv.data.datamodule import ImageDataModule, SampleDataset
from lightning_cv.data.digits import DigitsDataModule
from lightning_cv.data.splits import fingerprint, split_indices
from lightning_cv.data.stats import channel_stats, class_counts
from lightning_cv.data.transforms import PRESETS, build_transform, load_transform, save_transform

__all__ = [
    "PRESETS",
    "DigitsDataModule",
    "ImageDataModule",
    "SampleDataset",
    "build_transform",
    "channel_stats",
    "class_counts",
    "fingerprint",
    "load_transform",
    "save_transform",
    "split_indices",
]
