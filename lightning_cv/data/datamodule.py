"""The one base DataModule: subclasses declare the data, this class owns the mechanics."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import albumentations as A
import lightning.pytorch as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from lightning_cv._sizes import to_size
from lightning_cv.data._files import DATA_ENV, data_root
from lightning_cv.data.batch_transforms import BatchAugment
from lightning_cv.data.pipelines import (
    BatchPipeline,
    SampleDataset,
    SamplePipeline,
    check_pipeline,
    choose_pipeline,
)
from lightning_cv.data.sampling import SamplerMode, read_class_weights
from lightning_cv.data.splits import SplitStrategy, fingerprint, kfold_indices, split_indices
from lightning_cv.data.transforms import build_transform
from lightning_cv.errors import ConfigError
from lightning_cv.hub.manifest import TTA
from lightning_cv.preprocessing import Preprocessing

__all__ = ["ImageDataModule", "Pipeline"]

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


def check_batch_fits(data: ImageDataModule) -> None:
    """Refuse an ``image_size`` whose one float batch is larger than this machine's memory,
    before any image is resized to it."""
    height, width = to_size(data.image_size)
    needed = data.batch_size * data.in_channels * height * width * 4  # float32
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > memory:
        raise ConfigError(
            f"{type(data).__name__}: image_size {height}x{width} needs {needed / 2**30:,.1f} "
            f"GiB for one batch of {data.batch_size} float images; this machine has "
            f"{memory / 2**30:,.1f} GiB"
        )


def _check_std(data: ImageDataModule) -> None:
    """Normalising by a std of 0 (a channel every pixel shares) makes every input NaN."""
    if data.std is None:  # not computed yet
        return
    for channel, (mean, std) in enumerate(zip(data.mean, data.std, strict=True)):
        if not std > 0:  # also NaN
            raise ConfigError(
                f"{type(data).__name__}: the std of channel {channel} is {std} (mean "
                f"{mean}): every training pixel of that channel has one value, and "
                "normalising by it would give NaN; pass mean and std, or check the images"
            )


def _train_val_indices(data: ImageDataModule, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Training and validation indices into the training split, by the configured strategy:
    fold ``fold`` of ``num_folds``, or a ``val_fraction`` share."""
    groups = data.load_groups("train")
    options = {"strategy": data.split_strategy, "seed": data.split_seed, "groups": groups}
    if data.num_folds is not None:
        return kfold_indices(labels, num_folds=data.num_folds, fold=data.fold, **options)
    return split_indices(labels, fraction=data.val_fraction, **options)


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
        split_strategy: how the validation share is drawn: ``random``, ``stratified`` or ``group``.
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
        pipeline: ``batch`` (:class:`BatchPipeline`: uint8 batches, kornia on the model's
            device), ``sample`` (:class:`SamplePipeline`: albumentations per sample, in
            ``num_workers`` loader workers) or ``auto`` (default): ``batch`` for data held in
            memory, ``sample`` for image files (folders, CSV lists) or an albumentations YAML
            file. The pipeline is chosen once, in :meth:`setup`.
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
        split_strategy: SplitStrategy = "stratified",
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
            check_pipeline(self, name, transforms[name])
        self.root = data_root() if root is None else Path(root)
        self._root_note = "" if root is not None else _default_root_note()
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.split_strategy = split_strategy
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
        self.active_pipeline: SamplePipeline | BatchPipeline | None = None  # chosen in setup()
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

    def preprocessing(
        self, *, tta: TTA | dict | None = None, class_names: Sequence[str] | None = None
    ) -> Preprocessing | None:
        """The record of the evaluation pipeline in use (the batch path resizes without a
        crop), for checkpoints; None where it cannot be stated as data: no mean and std yet,
        or a batch path's evaluation augmentation."""
        if getattr(self, "mean", None) is None:
            return None
        facts = {"in_channels": self.in_channels, "mean": tuple(self.mean), "std": tuple(self.std),
                 "class_names": tuple(class_names or self.class_names), "tta": tta}  # fmt: skip
        size, spec = to_size(self.image_size), self.eval_transform
        plain = spec == "eval" or (isinstance(spec, BatchAugment) and not spec.steps)
        if plain and self.uses_batches:
            return Preprocessing(image_size=size, **facts)
        if plain:
            return Preprocessing.for_eval_preset(image_size=size, **facts)
        if self.uses_batches or isinstance(spec, BatchAugment):
            return None
        # a custom pipeline is recorded as albumentations writes it
        return Preprocessing(image_size=size, eval_pipeline=A.to_dict(self.build_transform(spec)),
                             **facts)  # fmt: skip

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
        _check_std(self)
        check_batch_fits(self)
        fitting = stage in ("fit", "validate", None)
        if self.active_pipeline is None:  # chosen once, by the first split this run reads
            images, _ = self.load_split("train" if fitting else "test")
            self.active_pipeline = choose_pipeline(self, in_memory=isinstance(images, np.ndarray))
        if fitting and self.train_set is None:
            self._setup_train_and_val()
        if stage in ("test", "predict", None) and self.test_set is None:
            self.test_set = self.active_pipeline.view(*self._prepared_split("test"), train=False)

    @property
    def uses_batches(self) -> bool:
        """Whether the batch pipeline is in use (chosen in :meth:`setup`)."""
        return isinstance(self.active_pipeline, BatchPipeline)

    def _prepared_split(self, split: str) -> tuple:
        """:meth:`load_split` as the pipeline in use reads it (the batch path decodes files)."""
        images, labels = self.load_split(split)
        self._loaded_splits[split] = self.active_pipeline.prepare(images), labels
        return self._loaded_splits[split]

    def _setup_train_and_val(self) -> None:
        view = self.active_pipeline.view
        images, labels = self._prepared_split("train")
        if self.has_val_split or not self.validates:  # the data set's own, or none
            self.train_set = view(images, labels, train=True)
            self.val_set = (
                view(*self._prepared_split("val"), train=False) if self.has_val_split else None
            )
            return
        train_idx, val_idx = _train_val_indices(self, labels)
        # validation samples come from the training files but get the eval transform
        self.train_set = view(images, labels, train=True, indices=train_idx)
        self.val_set = view(images, labels, train=False, indices=val_idx)
        self.hparams["split_fingerprint"] = fingerprint(train_idx, val_idx)
        if self.trainer is not None:  # Lightning logs only the constructor's hyperparameters
            for logger in self.trainer.loggers:
                logger.log_hyperparams({"split_fingerprint": self.hparams["split_fingerprint"]})

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
        return self.active_pipeline.loader(dataset, train=train)

    def transform_batch(self, images: torch.Tensor, *, train: bool) -> torch.Tensor:
        """The batch path's work after transfer (:meth:`BatchPipeline.transform_batch`): uint8
        ``(B, C, H, W)`` -> floats at ``image_size``, augmented when ``train``, normalised.

        Example:
            >>> data = DigitsDataModule(); data.setup("fit")  # doctest: +SKIP
            >>> images, labels = next(iter(data.train_dataloader()))  # doctest: +SKIP
            >>> data.transform_batch(images, train=True).dtype  # doctest: +SKIP
            torch.float32
        """
        if not self.uses_batches:
            in_use = "not chosen yet" if self.active_pipeline is None else "sample"
            raise RuntimeError(
                f"{type(self).__name__}.transform_batch is the batch pipeline's; call setup() "
                f"first (pipeline={self.pipeline!r}, in use: {in_use})"
            )
        return self.active_pipeline.transform_batch(images, train=train)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """The pipeline's work on the model's device: the batch path's augmentation and
        normalisation."""
        if self.active_pipeline is None:
            return batch
        training = self.trainer is not None and self.trainer.training
        return self.active_pipeline.after_transfer(batch, train=training)
