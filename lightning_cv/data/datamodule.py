"""The one base DataModule: subclasses declare the data, this class owns the mechanics."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import albumentations as A
import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from lightning_cv.data.splits import SplitStrategy, fingerprint, kfold_indices, split_indices
from lightning_cv.data.transforms import build_transform
from lightning_cv.errors import ConfigError
from lightning_cv.models._registry import to_size

__all__ = ["ImageDataModule", "SampleDataset"]

_PCG64_INCREMENT = 0xDA3E39CB94B95BDB  # any odd number: PCG64's stream


class SampleDataset(Dataset):
    """Images indexed from memory (or decoded lazily), passed through one albumentations pipeline.

    Args:
        images: anything indexable that returns an ``(H, W, C)`` uint8 array.
        labels: one class index per image.
        transform: the pipeline; its output is the ``(C, H, W)`` float tensor.
        indices: which samples this view holds (all when ``None``).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        labels: np.ndarray,
        transform: A.Compose,
        indices: np.ndarray | None = None,
    ) -> None:
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.indices = np.arange(len(self.labels)) if indices is None else np.asarray(indices)
        self._generators = (np.random.Generator(np.random.PCG64()), random.Random())

    def __len__(self) -> int:
        return len(self.indices)

    def reseed(self, seed: int) -> None:
        """Make the augmentation reproducible from ``seed`` (an int of up to 128 bits).

        The whole pipeline shares one numpy and one Python generator (albumentations'
        ``set_random_seed`` would give every transform the same seed, so their coin flips
        would fire together). They are made once and re-seeded in place: building new ones
        for every sample took a fifth of the time per sample of the CIFAR preset.
        """
        numpy_random, python_random = self._generators
        if self.transform.random_generator is not numpy_random:  # first use, or taken over
            self.transform.set_random_state(numpy_random, python_random)
        numpy_random.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": seed % 2**128, "inc": _PCG64_INCREMENT},
            "has_uint32": 0,
            "uinteger": 0,
        }
        python_random.seed(seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.indices[index]
        # per sample, from torch's generator: seed_everything, each loader worker's seed and a
        # resumed run's restored state (Resumable) decide the augmentation
        high, low = torch.randint(2**63 - 1, (2,)).tolist()
        self.reseed(high << 63 | low)
        image = self.transform(image=self.images[sample])["image"]
        return image, int(self.labels[sample])


class ImageDataModule(L.LightningDataModule):
    """Base class of every lightning-cv data set.

    A subclass declares the data set's facts as class attributes (``num_classes``,
    ``class_names``, ``in_channels``, ``image_size``, ``mean``, ``std``) and implements
    :meth:`read_split`; everything else (validation split, transforms, loaders) lives here.

    Args:
        root: folder that holds (or will hold) the files.
        batch_size: samples per batch.
        num_workers: loader worker processes (0 loads in the main process).
        val_fraction: share of the training split held out for validation, when the data set
            has no official validation split; 0 trains on all of it, with no validation.
        split: how the validation share is drawn: ``random``, ``stratified`` or ``group``.
        split_seed: the same seed gives the same split on every run and rank.
        num_folds: with a value, validate on fold ``fold`` of a k-fold split of the training
            split instead of a ``val_fraction`` share (cross-validation).
        fold: which fold is validated, in ``[0, num_folds)``.
        train_transform: preset name or albumentations YAML file for training samples
            (default: the data set's own preset).
        eval_transform: the same for validation, test and prediction samples.
        download: fetch missing files (never done unless asked).
        shuffle: shuffle the training samples every epoch.
        drop_last: drop the last incomplete training batch.
    """

    num_classes: int
    class_names: tuple[str, ...]
    in_channels: int
    image_size: int | tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    has_val_split: bool = False
    default_train_transform: str = "eval"
    default_eval_transform: str = "eval"

    def __init__(
        self,
        root: str | Path = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        split: SplitStrategy = "stratified",
        split_seed: int = 0,
        num_folds: int | None = None,
        fold: int = 0,
        train_transform: str | None = None,
        eval_transform: str | None = None,
        download: bool = False,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.split = split
        self.split_seed = split_seed
        self.num_folds = num_folds
        self.fold = fold
        self.train_transform = train_transform or self.default_train_transform
        self.eval_transform = eval_transform or self.default_eval_transform
        self.download = download
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.train_set: SampleDataset | None = None
        self.val_set: SampleDataset | None = None
        self.test_set: SampleDataset | None = None
        self._loaded_splits: dict[str, tuple] = {}

    def read_split(self, split: str) -> tuple[Sequence[np.ndarray] | np.ndarray, np.ndarray]:
        """Read ``(images, labels)`` of an official split (``train``, ``test``, maybe ``val``).

        ``images`` yields ``(H, W, C)`` uint8 arrays; ``labels`` holds class indices.
        """
        raise NotImplementedError

    def load_split(self, split: str) -> tuple[Sequence[np.ndarray] | np.ndarray, np.ndarray]:
        """:meth:`read_split`, read once per data module and then kept."""
        if split not in self._loaded_splits:
            self._loaded_splits[split] = self.read_split(split)
        return self._loaded_splits[split]

    def load_groups(self, split: str) -> np.ndarray | None:
        """Group id per sample of ``split`` for the ``group`` split strategy; none by default."""
        return None

    def download_files(self) -> None:
        """Fetch the files into ``root``; data sets that ship with a package have none."""

    def prepare_data(self) -> None:
        if self.download:
            self.download_files()

    def build_transform(self, spec: str | A.Compose) -> A.Compose:
        """The pipeline for ``spec`` at this data set's size and statistics."""
        return build_transform(spec, size=to_size(self.image_size), mean=self.mean, std=self.std)

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and self.train_set is None:
            self._setup_train_and_val()
        if stage in ("test", "predict", None) and self.test_set is None:
            images, labels = self.load_split("test")
            self.test_set = SampleDataset(images, labels, self.build_transform(self.eval_transform))

    def _setup_train_and_val(self) -> None:
        images, labels = self.load_split("train")
        train_transform = self.build_transform(self.train_transform)
        eval_transform = self.build_transform(self.eval_transform)
        if self.has_val_split:
            self.train_set = SampleDataset(images, labels, train_transform)
            self.val_set = SampleDataset(*self.load_split("val"), eval_transform)
            return
        if self.num_folds is None and self.val_fraction == 0:
            self.train_set = SampleDataset(images, labels, train_transform)
            return
        train_idx, val_idx = self.split_train_val(labels)
        # validation samples come from the training files but get the eval transform
        self.train_set = SampleDataset(images, labels, train_transform, train_idx)
        self.val_set = SampleDataset(images, labels, eval_transform, val_idx)
        self.hparams["split_fingerprint"] = fingerprint(train_idx, val_idx)
        if self.trainer is not None:  # Lightning logs only the constructor's hyperparameters
            for logger in self.trainer.loggers:
                logger.log_hyperparams({"split_fingerprint": self.hparams["split_fingerprint"]})

    def split_train_val(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation indices into the training split, by the configured strategy."""
        options = {
            "strategy": self.split,
            "seed": self.split_seed,
            "groups": self.load_groups("train"),
        }
        if self.num_folds is not None:
            return kfold_indices(labels, num_folds=self.num_folds, fold=self.fold, **options)
        return split_indices(labels, fraction=self.val_fraction, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None and self.train_set is not None:
            return []  # val_fraction=0: no validation
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def _loader(self, dataset: SampleDataset | None, *, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its loaders")
        sampler = None
        if not train and torch.distributed.is_available() and torch.distributed.is_initialized():
            # Lightning's DistributedSampler would repeat samples to even out the ranks' shares
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=train and self.shuffle,
            drop_last=train and self.drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
