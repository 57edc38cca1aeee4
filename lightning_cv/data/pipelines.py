"""The two pipelines a data module runs, one chosen in ``setup`` (:func:`choose_pipeline`).

- :class:`SamplePipeline`: albumentations per sample, in loader workers; for image files
  decoded one at a time and albumentations YAML pipelines.
- :class:`BatchPipeline`: a split as one uint8 tensor (on the model's device), fetched a whole
  batch per index list, augmented after transfer with kornia; for data held in memory.

Each owns its loaders and its transform; the data module owns the data and its facts (size,
channels, statistics, sampling options), which a pipeline reads from it when it needs them.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import albumentations as A
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader, Dataset

from lightning_cv._sizes import to_size
from lightning_cv.data.batch_transforms import BatchAugment, to_floats
from lightning_cv.data.batches import BatchOrder, batch_loader, to_image_tensor
from lightning_cv.data.sampling import WeightedDraw, sample_weights
from lightning_cv.data.transforms import (
    PRESETS,
    build_batch_transform,
    check_normalize,
    mirroring_step,
    run_checked,
)
from lightning_cv.errors import ConfigError

if TYPE_CHECKING:
    from lightning_cv.data.datamodule import ImageDataModule

__all__ = [
    "BatchPipeline",
    "SampleDataset",
    "SamplePipeline",
    "check_flip",
    "check_pipeline",
    "choose_pipeline",
]

_PCG64_INCREMENT = 0xDA3E39CB94B95BDB  # any odd number: PCG64's stream
_RANK_STRIDE = 0x9E3779B97F4A7C15  # an odd 64-bit constant: ranks' augmentation seeds differ
# Lightning's advice to add loader workers; the batch path has none by design
_FEW_WORKERS = r"The '\w+' does not have many workers"


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


def check_pipeline(data: object, option: str, pipeline: A.Compose | BatchAugment) -> None:
    """What any pipeline is checked for once built: no mirror where the data forbids it
    (:func:`check_flip`), no normalisation by a std of 0."""
    check_flip(data, option, mirroring_step(pipeline))
    check_normalize(pipeline, source=option)


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


def choose_pipeline(data: ImageDataModule, *, in_memory: bool) -> SamplePipeline | BatchPipeline:
    """The data module's pipeline: ``pipeline`` when ``batch`` or ``sample``; ``auto`` takes the
    batch path for in-memory data whose transforms are preset names, the sample path for image
    files or an albumentations YAML file; a ``BatchAugment`` always takes the batch path."""
    if data.pipeline != "auto":
        return BatchPipeline(data) if data.pipeline == "batch" else SamplePipeline(data)
    specs = (data.train_transform, data.eval_transform)
    if any(isinstance(spec, BatchAugment) for spec in specs):
        return BatchPipeline(data)
    presets = all(isinstance(spec, str) and spec in PRESETS for spec in specs)
    return BatchPipeline(data) if in_memory and presets else SamplePipeline(data)


class _Pipeline:
    """What both pipelines share: the data module, its ranks and its training draw."""

    uses_batches: bool

    def __init__(self, data: ImageDataModule) -> None:
        self.data = data

    def prepare(self, images: Sequence[np.ndarray] | np.ndarray) -> Sequence[np.ndarray]:
        """A split's images as this pipeline reads them."""
        return images

    def ranks(self) -> tuple[int, int]:
        """This process' rank and the number of ranks, from the trainer (one without)."""
        trainer = self.data.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def draw_weights(self, dataset: SampleDataset, *, train: bool) -> torch.Tensor | None:
        """The ``balanced`` sampler's weight of each training sample; ``None`` if not drawn."""
        data = self.data
        if not train or data.sampler != "balanced":
            return None
        return sample_weights(dataset.labels[dataset.indices], data.num_classes, data.class_weights)

    def view(
        self, images: Sequence[np.ndarray] | np.ndarray, labels: np.ndarray, *, train: bool,
        indices: np.ndarray | None = None,
    ) -> SampleDataset:  # fmt: skip
        """A split's view (``dataset[i]`` is one transformed sample), its pipeline checked."""
        option = "train_transform" if train and not self.uses_batches else "eval_transform"
        spec = getattr(self.data, option)
        if self.uses_batches and not isinstance(spec, str):
            spec = "eval"  # the batch path's BatchAugment runs after transfer
        transform = self.data.build_transform(spec)
        check_pipeline(self.data, option, transform)
        return SampleDataset(images, labels, transform, indices)

    def after_transfer(self, batch: tuple, *, train: bool) -> tuple:
        """A batch on the model's device, as the model takes it."""
        return batch


class SamplePipeline(_Pipeline):
    """Albumentations per sample, in ``num_workers`` loader workers; the views keep the
    training transform on the training split (``dataset[i]`` is augmented)."""

    uses_batches = False

    def loader(self, dataset: SampleDataset, *, train: bool) -> DataLoader:
        """A loader of ``dataset``; its first sample is checked step by step first."""
        data = self.data
        self._check_first_sample(dataset, train=train)
        sampler, weights = None, self.draw_weights(dataset, train=train)
        if weights is not None:  # a DistributedSampler: Lightning keeps it under DDP
            rank, world_size = self.ranks()
            sampler = WeightedDraw(weights, rank=rank, world_size=world_size)
        if not train and torch.distributed.is_available() and torch.distributed.is_initialized():
            # Lightning's DistributedSampler would repeat samples to even out the ranks' shares
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=data.batch_size,
            sampler=sampler,
            shuffle=sampler is None and train and data.shuffle,
            drop_last=train and data.drop_last,
            num_workers=data.num_workers,
            persistent_workers=data.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def _check_first_sample(self, dataset: SampleDataset, *, train: bool) -> None:
        """The first sample, through the pipeline step by step: a step that changes the size
        or channels, or yields NaN, is named before training (:func:`run_checked`)."""
        if len(dataset):
            shape = {"channels": self.data.in_channels, "size": to_size(self.data.image_size)}
            first = dataset.images[dataset.indices[0]]
            option = "train_transform" if train else "eval_transform"
            run_checked(option, dataset.transform.transforms, first, **shape, batch=False)


class BatchPipeline(_Pipeline):
    """Uint8 batches by one index list from a tensor on the model's device, augmented there
    after transfer (:meth:`transform_batch`); the views keep the evaluation transform.

    The batch transforms are built and checked when the pipeline is made, the first batch of
    each stage is run step by step (:func:`run_checked`)."""

    uses_batches = True

    def __init__(self, data: ImageDataModule) -> None:
        super().__init__(data)
        shape = {"size": to_size(data.image_size), "channels": data.in_channels}
        self.transforms = {
            "train": build_batch_transform(data.train_transform, **shape),
            "eval": build_batch_transform(data.eval_transform, **shape),
        }
        for stage, pipeline in self.transforms.items():
            check_pipeline(data, f"{stage}_transform", pipeline)
        self.checked_stages: set[str] = set()  # stages whose first batch was checked
        self._tensors: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._statistics_on: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # per device

    def prepare(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Image files are decoded once, at ``image_size``, into one array."""
        if isinstance(images, np.ndarray):
            return images
        return images.to_array(size=to_size(self.data.image_size))

    def loader(self, dataset: SampleDataset, *, train: bool) -> DataLoader:
        """A ``DataLoader`` of whole uint8 batches of ``dataset``'s samples, on the device."""
        data = self.data
        trainer = data.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        rank, world_size = self.ranks()
        images, labels = self._device_tensors(dataset, device)
        order = BatchOrder(
            dataset.indices,
            data.batch_size,
            shuffle=train and data.shuffle,
            drop_last=train and data.drop_last,
            rank=rank,
            world_size=world_size,
            weights=self.draw_weights(dataset, train=train),
            device=device,
        )
        warnings.filterwarnings("ignore", _FEW_WORKERS, PossibleUserWarning)
        return batch_loader(images, labels, order)

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
        """Uint8 ``(B, C, H, W)`` -> floats at ``image_size``, augmented when ``train``,
        normalised with the data set's ``mean`` and ``std``.

        Augmentation draws come from a generator seeded per batch by one draw of torch's
        global generator (so ``seed_everything`` and a resumed run's restored state decide
        them) and by the rank (so DDP ranks augment differently).
        """
        floats = to_floats(images, to_size(self.data.image_size))
        stage = "train" if train else "eval"
        if len(self.transforms[stage].steps):
            with self._augmentation_seed():
                floats = self._augment(floats, stage)
        mean, std = self._statistics(floats.device)
        return floats.sub_(mean).div_(std)  # in place: a new batch-sized tensor costs 10x more

    def _statistics(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The data's ``mean`` and ``std`` as ``(1, C, 1, 1)`` tensors on ``device``, made once
        per device and value (making them for every batch cost 0.2% of a LeNet-5 step on a
        CPU)."""
        data = self.data
        key = (device, tuple(data.mean), tuple(data.std))
        if key not in self._statistics_on:
            mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
            self._statistics_on[key] = mean, torch.tensor(data.std, device=device).view(1, -1, 1, 1)
        return self._statistics_on[key]

    def _augment(self, floats: torch.Tensor, stage: str) -> torch.Tensor:
        """The stage's batch steps; its first batch runs them one by one and checks what they
        return (:func:`run_checked`): once per stage, the steps' own cost otherwise."""
        augment = self.transforms[stage]
        if stage in self.checked_stages:
            return augment(floats)
        shape = {"channels": self.data.in_channels, "size": to_size(self.data.image_size)}
        floats = run_checked(f"{stage}_transform", augment.steps, floats, **shape, batch=True)
        self.checked_stages.add(stage)
        return floats

    @contextmanager
    def _augmentation_seed(self) -> Iterator[None]:
        seed = int(torch.randint(2**62, ()))
        rank = self.data.trainer.global_rank if self.data.trainer is not None else 0
        with torch.random.fork_rng(devices=[]):  # the CPU generator, where every draw is made
            torch.default_generator.manual_seed((seed + rank * _RANK_STRIDE) % 2**63)
            yield

    def after_transfer(self, batch: tuple, *, train: bool) -> list:
        """A list, as the sample path's collated batches: a batch mixing replaces its items."""
        images, labels = batch
        return [self.transform_batch(images, train=train), labels]
