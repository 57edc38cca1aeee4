"""The one base DataModule: subclasses declare the data, this class owns the mechanics."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import albumentations as A
import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset

from lightning_cv._sizes import to_size
from lightning_cv.data._files import DATA_ENV, data_root
from lightning_cv.data.batch_transforms import (
    BATCH_PRESETS,
    BatchAugment,
    build_batch_transform,
    to_floats,
)
from lightning_cv.data.batches import BatchLoader, BatchOrder, to_image_tensor
from lightning_cv.data.sampling import SamplerMode, WeightedDraw, read_class_weights, sample_weights
from lightning_cv.data.splits import SplitStrategy, fingerprint, kfold_indices, split_indices
from lightning_cv.data.transforms import (
    build_transform,
    check_normalize,
    mirroring_step,
    run_checked,
)
from lightning_cv.errors import ConfigError

__all__ = ["ImageDataModule", "Pipeline", "SampleDataset", "check_flip"]

_PCG64_INCREMENT = 0xDA3E39CB94B95BDB  # any odd number: PCG64's stream
_RANK_STRIDE = 0x9E3779B97F4A7C15  # an odd 64-bit constant: ranks' augmentation seeds differ
Pipeline = Literal["auto", "batch", "sample"]
PIPELINES = ("auto", "batch", "sample")


def _check_options(pipeline: str, batch_size: int, num_workers: int, val_fraction: float) -> None:
    if pipeline not in PIPELINES:
        raise ConfigError(f"unknown pipeline {pipeline!r}; expected one of {list(PIPELINES)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")


def check_flip(data: object, option: str, mirror: str | None) -> None:
    """The no-flip rule, the one check of it: refuse ``mirror`` (a step that mirrors the
    images, by name; None when there is none) for data whose classes change when mirrored
    (``allows_flip = False``: digits). Batch steps, per-sample pipelines and test-time
    augmentation all meet the data here.

    Raises:
        ConfigError: ``"train_transform: HorizontalFlip mirrors the images, but
            MNISTDataModule's classes change when mirrored (allows_flip = False); remove the
            flip"``.
    """
    if mirror and not getattr(data, "allows_flip", True):
        raise ConfigError(
            f"{option}: {mirror} mirrors the images, but {type(data).__name__}'s classes change "
            "when mirrored (allows_flip = False); remove the flip"
        )


def _or_default(spec: str | BatchAugment | None, default: str) -> str | BatchAugment:
    """``default`` (or None) is the data set's own preset. The options are typed without None:
    jsonargparse reads a file given for a class-typed option as a config, and an empty file
    would become None, i.e. silently the default."""
    return default if spec in (None, "default") else spec


def _default_root_note() -> str:
    """What a missing-files message adds when ``root`` was left out: where the default is from."""
    fix = "the folder that holds the data sets, or pass root (--data.root)"
    if os.environ.get(DATA_ENV):
        return f"; root comes from ${DATA_ENV}: point it at {fix}"
    return f"; root is the default {str(data_root())!r} as ${DATA_ENV} is not set: set it to {fix}"


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
        root: folder that holds (or will hold) the files; by default ``$LIGHTNING_CV_DATA``,
            else ``~/.cache/lightning_cv/data`` (:func:`~lightning_cv.data.data_root`),
            resolved when the data module is built, so a saved config stays portable.
        batch_size: samples per batch.
        num_workers: loader worker processes (0 loads in the main process).
        val_fraction: share of the training split held out for validation, when the data set
            has no official validation split; 0 trains on all of it, with no validation.
        split: how the validation share is drawn: ``random``, ``stratified`` or ``group``.
        split_seed: the same seed gives the same split on every run and rank.
        num_folds: with a value, validate on fold ``fold`` of a k-fold split of the training
            split instead of a ``val_fraction`` share (cross-validation).
        fold: which fold is validated, in ``[0, num_folds)``.
        train_transform: training augmentation: ``default`` (the data set's own preset), a
            preset name (``digits``, ``cifar``, ``imagenet``, ``eval``, the same on both
            pipelines), an albumentations YAML file (sample pipeline) or a
            :class:`BatchAugment` (batch pipeline).
        eval_transform: the same for validation, test and prediction batches.
        download: fetch missing files (never done unless asked).
        shuffle: shuffle the training samples every epoch.
        drop_last: drop the last incomplete training batch.
        pipeline: ``batch`` keeps the images as one uint8 tensor (on the GPU when training
            runs there), indexes whole batches and augments them after transfer to the
            model's device (kornia); ``sample`` runs albumentations per sample in loader
            workers; ``auto`` (default) picks ``batch`` for data sets held in memory and
            ``sample`` for image files decoded one at a time (image folders, CSV lists) or
            when a transform is an albumentations YAML file. ``num_workers`` applies to
            ``sample`` only.
        sampler: training order: ``uniform`` (each sample once per epoch) or ``balanced``
            (drawn with replacement by class weight, on both pipelines; each DDP rank draws a
            disjoint share of one draw). Validation, test and prediction are never reweighted.
        class_weights: with ``balanced``, one weight per class or a YAML/JSON file holding
            that list (class ``c`` is drawn in proportion to ``weight[c] * count[c]``); by
            default the inverse class frequencies of the training split (equal classes).

    Raises:
        ConfigError: a bad option, named with the values expected; the length of
            ``class_weights`` is checked against ``num_classes`` when the training loader is
            built, as a folder or CSV data set knows its classes only then.
        DataFileError: a missing or malformed ``class_weights`` file.
    """

    num_classes: int
    class_names: tuple[str, ...]
    in_channels: int
    image_size: int | tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    has_val_split: bool = False
    allows_flip: bool = True  # False where a mirrored image is another (or no) class: digits
    default_train_transform: str = "eval"
    default_eval_transform: str = "eval"

    def __init__(
        self,
        root: str | Path | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        split: SplitStrategy = "stratified",
        split_seed: int = 0,
        num_folds: int | None = None,
        fold: int = 0,
        train_transform: str | BatchAugment = "default",
        eval_transform: str | BatchAugment = "default",
        download: bool = False,
        shuffle: bool = True,
        drop_last: bool = False,
        pipeline: Pipeline = "auto",
        sampler: SamplerMode = "uniform",
        class_weights: list[float] | str | None = None,
    ) -> None:
        super().__init__()
        _check_options(pipeline, batch_size, num_workers, val_fraction)
        self.class_weights = read_class_weights(sampler, class_weights, shuffle=shuffle)
        transforms = {"train_transform": train_transform, "eval_transform": eval_transform}
        modules = [name for name, spec in transforms.items() if isinstance(spec, BatchAugment)]
        self.save_hyperparameters(ignore=modules)
        for name in modules:  # a module would stop weights_only loading
            self.hparams[name] = [repr(step) for step in transforms[name].steps]
            self._check_pipeline(name, transforms[name])
        self.root = data_root() if root is None else Path(root)
        self._root_note = "" if root is not None else _default_root_note()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.split = split
        self.split_seed = split_seed
        self.num_folds = num_folds
        self.fold = fold
        self.train_transform = _or_default(train_transform, self.default_train_transform)
        self.eval_transform = _or_default(eval_transform, self.default_eval_transform)
        self.download = download
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.pipeline = pipeline
        self.sampler = sampler
        self.uses_batches: bool | None = None  # the pipeline in use, known after setup()
        self._batch_transforms: dict[str, BatchAugment] = {}
        self._checked_stages: set[str] = set()  # batch pipelines whose first batch was checked
        self._tensors: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.train_set = self.val_set = self.test_set = None  # SampleDataset after setup()
        self._loaded_splits: dict[str, tuple] = {}

    def read_split(self, split: str) -> tuple[Sequence[np.ndarray] | np.ndarray, np.ndarray]:
        """Read ``(images, labels)`` of an official split (``train``, ``test``, maybe ``val``).

        ``images`` yields ``(H, W, C)`` uint8 arrays; ``labels`` holds class indices.
        """
        raise NotImplementedError

    def files_hint(self, hint: str) -> str:
        """``hint`` on how to get missing files, plus where ``root`` came from if defaulted."""
        return hint + self._root_note

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
        """The per-sample pipeline for ``spec`` at this data set's size and statistics."""
        if isinstance(spec, BatchAugment):
            raise ConfigError(
                f"{type(self).__name__}: a BatchAugment runs on the batch pipeline only; pass "
                "pipeline='batch' (--data.pipeline batch) or a preset name or YAML file"
            )
        return build_transform(spec, size=to_size(self.image_size), mean=self.mean, std=self.std)

    @property
    def validates(self) -> bool:
        """Whether there is a validation split: the data set's own, a fold, or a share of
        the training split (``val_fraction`` 0 keeps none)."""
        return self.has_val_split or self.num_folds is not None or self.val_fraction > 0

    def state_dict(self) -> dict:
        """Saved in every checkpoint: the normalisation, which a folder or CSV data set
        computes from its files, so a checkpoint predicts new images the same way."""
        mean, std = getattr(self, "mean", None), getattr(self, "std", None)
        return {} if mean is None else {"mean": list(mean), "std": list(std)}

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("mean") is not None:
            self.mean, self.std = tuple(state_dict["mean"]), tuple(state_dict["std"])

    def setup(self, stage: str | None = None) -> None:
        self._check_std()
        self._check_batch_fits()
        if stage in ("fit", "validate", None) and self.train_set is None:
            self._setup_train_and_val()
        if stage in ("test", "predict", None) and self.test_set is None:
            self.test_set = self._sample_set(*self._split_for_pipeline("test"), train=False)

    def _check_batch_fits(self) -> None:
        """Refuse an ``image_size`` whose one float batch is larger than this machine's memory,
        before any image is resized to it."""
        height, width = to_size(self.image_size)
        needed = self.batch_size * self.in_channels * height * width * 4  # float32
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if needed > memory:
            raise ConfigError(
                f"{type(self).__name__}: image_size {height}x{width} needs {needed / 2**30:,.1f} "
                f"GiB for one batch of {self.batch_size} float images; this machine has "
                f"{memory / 2**30:,.1f} GiB"
            )

    def _check_std(self) -> None:
        """Normalising by a std of 0 (a channel every pixel shares) makes every input NaN."""
        if self.std is None:  # not computed yet
            return
        for channel, (mean, std) in enumerate(zip(self.mean, self.std, strict=True)):
            if not std > 0:  # also NaN
                raise ConfigError(
                    f"{type(self).__name__}: the std of channel {channel} is {std} (mean "
                    f"{mean}): every training pixel of that channel has one value, and "
                    "normalising by it would give NaN; pass mean and std, or check the images"
                )

    def _split_for_pipeline(self, split: str) -> tuple:
        """:meth:`load_split`, decided for a pipeline: the batch path decodes files once."""
        images, labels = self.load_split(split)
        if self.uses_batches is None:
            self.uses_batches = self._chooses_batches(in_memory=isinstance(images, np.ndarray))
            if self.uses_batches:
                shape = {"size": to_size(self.image_size), "channels": self.in_channels}
                self._batch_transforms = {
                    "train": build_batch_transform(self.train_transform, **shape),
                    "eval": build_batch_transform(self.eval_transform, **shape),
                }
                for stage, pipeline in self._batch_transforms.items():
                    self._check_pipeline(f"{stage}_transform", pipeline)
        if self.uses_batches and not isinstance(images, np.ndarray):
            images = images.to_array(size=to_size(self.image_size))  # ImageFiles: decode once
            self._loaded_splits[split] = (images, labels)
        return images, labels

    def _chooses_batches(self, *, in_memory: bool) -> bool:
        """``auto``: the batch path for in-memory data, unless a transform is per-sample only
        (an albumentations YAML file or ``Compose``); a ``BatchAugment`` always picks it."""
        if self.pipeline != "auto":
            return self.pipeline == "batch"
        specs = (self.train_transform, self.eval_transform)
        if any(isinstance(spec, BatchAugment) for spec in specs):
            return True
        presets = all(isinstance(spec, str) and spec in BATCH_PRESETS for spec in specs)
        return in_memory and presets

    def _check_pipeline(self, option: str, pipeline: A.Compose | BatchAugment) -> None:
        """What any pipeline is checked for once built: no mirror where the data forbids it
        (:func:`check_flip`), no normalisation by a std of 0."""
        check_flip(self, option, mirroring_step(pipeline))
        check_normalize(pipeline, source=option)

    def _sample_set(
        self, images: Sequence[np.ndarray] | np.ndarray, labels: np.ndarray, *, train: bool,
        indices: np.ndarray | None = None,
    ) -> SampleDataset:  # fmt: skip
        """A split's view with its per-sample pipeline, checked (:meth:`_check_pipeline`).

        On the batch path the sample views keep the evaluation pipeline (``dataset[i]`` is the
        plain normalised image): augmentation runs on whole batches, after transfer.
        """
        option = "train_transform" if train and not self.uses_batches else "eval_transform"
        spec = getattr(self, option)
        if self.uses_batches and not isinstance(spec, str):
            spec = "eval"  # the batch path's BatchAugment runs after transfer
        transform = self.build_transform(spec)
        self._check_pipeline(option, transform)
        return SampleDataset(images, labels, transform, indices)

    def _check_first_sample(self, dataset: SampleDataset, *, train: bool) -> None:
        """The sample path's first sample, through the pipeline step by step, when its loader
        is made: a step that changes the size or channels, or yields NaN, is named before
        training (:func:`run_checked`); one image decoded per loader."""
        if len(dataset):
            shape = {"channels": self.in_channels, "size": to_size(self.image_size)}
            first = dataset.images[dataset.indices[0]]
            option = "train_transform" if train else "eval_transform"
            run_checked(option, dataset.transform.transforms, first, **shape, batch=False)

    def _setup_train_and_val(self) -> None:
        images, labels = self._split_for_pipeline("train")
        if self.has_val_split:
            self.train_set = self._sample_set(images, labels, train=True)
            self.val_set = self._sample_set(*self._split_for_pipeline("val"), train=False)
            return
        if not self.validates:
            self.train_set = self._sample_set(images, labels, train=True)
            return
        train_idx, val_idx = self.split_train_val(labels)
        # validation samples come from the training files but get the eval transform
        self.train_set = self._sample_set(images, labels, train=True, indices=train_idx)
        self.val_set = self._sample_set(images, labels, train=False, indices=val_idx)
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

    def _loader(self, dataset: SampleDataset | None, *, train: bool) -> DataLoader | BatchLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its loaders")
        if self.uses_batches:
            return self._batch_loader(dataset, train=train)
        self._check_first_sample(dataset, train=train)
        sampler, weights = None, self._draw_weights(dataset, train=train)
        if weights is not None:  # a DistributedSampler: Lightning keeps it under DDP
            rank, world_size = self._ranks()
            sampler = WeightedDraw(weights, rank=rank, world_size=world_size)
        if not train and torch.distributed.is_available() and torch.distributed.is_initialized():
            # Lightning's DistributedSampler would repeat samples to even out the ranks' shares
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=sampler is None and train and self.shuffle,
            drop_last=train and self.drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def _batch_loader(self, dataset: SampleDataset, *, train: bool) -> BatchLoader:
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        rank, world_size = self._ranks()
        images, labels = self._device_tensors(dataset, device)
        order = BatchOrder(
            dataset.indices,
            self.batch_size,
            shuffle=train and self.shuffle,
            drop_last=train and self.drop_last,
            rank=rank,
            world_size=world_size,
            weights=self._draw_weights(dataset, train=train),
        )
        return BatchLoader(images, labels, order)

    def _ranks(self) -> tuple[int, int]:
        """This process' rank and the number of ranks, from the trainer (one without)."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _draw_weights(self, dataset: SampleDataset, *, train: bool) -> torch.Tensor | None:
        """The ``balanced`` sampler's weight of each training sample; ``None`` if not drawn."""
        if not train or self.sampler != "balanced":
            return None
        labels = dataset.labels[dataset.indices]
        return sample_weights(labels, self.num_classes, self.class_weights)

    def _device_tensors(
        self, dataset: SampleDataset, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A split's images as one ``(N, C, H, W)`` uint8 tensor and its labels, on ``device``;
        made once per split and device (training and validation views share one)."""
        key = (id(dataset.images), str(device))
        if key not in self._tensors:
            images = to_image_tensor(np.asarray(dataset.images)).to(device)
            self._tensors[key] = images, torch.from_numpy(dataset.labels).to(device)
        return self._tensors[key]

    def transform_batch(self, images: torch.Tensor, *, train: bool) -> torch.Tensor:
        """The batch path: uint8 ``(B, C, H, W)`` -> floats at ``image_size``, augmented when
        ``train``, normalised with the data set's ``mean`` and ``std``.

        Augmentation draws come from a generator seeded per batch by one draw of torch's
        global generator (so ``seed_everything`` and a resumed run's restored state decide
        them) and by the rank (so DDP ranks augment differently).

        Example:
            >>> data = DigitsDataModule(); data.setup("fit")  # doctest: +SKIP
            >>> images, labels = next(iter(data.train_dataloader()))  # doctest: +SKIP
            >>> data.transform_batch(images, train=True).dtype  # doctest: +SKIP
            torch.float32
        """
        if not self.uses_batches:
            raise RuntimeError(
                f"{type(self).__name__}.transform_batch is the batch pipeline's; call setup() "
                f"first (pipeline={self.pipeline!r}, in use: "
                f"{'sample' if self.uses_batches is False else 'not decided yet'})"
            )
        floats = to_floats(images, to_size(self.image_size))
        stage = "train" if train else "eval"
        if len(self._batch_transforms[stage].steps):
            with self._augmentation_seed():
                floats = self._augment(floats, stage)
        mean = torch.tensor(self.mean, device=floats.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=floats.device).view(1, -1, 1, 1)
        return floats.sub_(mean).div_(std)  # in place: a new batch-sized tensor costs 10x more

    def _augment(self, floats: torch.Tensor, stage: str) -> torch.Tensor:
        """The stage's batch steps; its first batch runs them one by one and checks what they
        return (:func:`run_checked`): once per stage, the steps' own cost otherwise."""
        augment = self._batch_transforms[stage]
        if stage in self._checked_stages:
            return augment(floats)
        shape = {"channels": self.in_channels, "size": to_size(self.image_size)}
        floats = run_checked(f"{stage}_transform", augment.steps, floats, **shape, batch=True)
        self._checked_stages.add(stage)
        return floats

    @contextmanager
    def _augmentation_seed(self) -> Iterator[None]:
        seed = int(torch.randint(2**62, ()))
        rank = self.trainer.global_rank if self.trainer is not None else 0
        with torch.random.fork_rng(devices=[]):  # the CPU generator, where every draw is made
            torch.default_generator.manual_seed((seed + rank * _RANK_STRIDE) % 2**63)
            yield

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """The batch path's augmentation and normalisation, on the model's device."""
        if not self.uses_batches:
            return batch
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        return self.transform_batch(images, train=training), labels
