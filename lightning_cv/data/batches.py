"""The batch path's loader: whole uint8 batches of an in-memory data set, one index list each.

A ``torch.utils.data.DataLoader`` with ``batch_size=None`` over a :class:`BatchDataset`: its
sampler (:class:`BatchOrder`) yields one index tensor per batch and the data set answers with
``images[indices]`` of one ``(N, C, H, W)`` uint8 tensor, which can live on the model's device.
No worker processes, no per-sample Python and no collate. Conversion to float, augmentation and
normalisation happen after transfer (:class:`~lightning_cv.data.pipelines.BatchPipeline`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lightning_cv.data.sampling import WeightedDraw

__all__ = ["BatchDataset", "BatchOrder", "batch_loader", "to_image_tensor"]


def to_image_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 array -> contiguous ``(N, C, H, W)`` uint8 tensor (one copy)."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


class BatchOrder(DistributedSampler):
    """Which samples each batch of one rank holds: the batch path's sampler, one index tensor
    per batch.

    Training order is a permutation drawn from ``seed + epoch`` (the rule of torch's
    ``DistributedSampler``), so every rank draws the same one and takes every
    ``world_size``-th sample of it: the shares are disjoint and, after dropping at most
    ``world_size - 1`` samples, equal, so no rank waits for another. A resumed run gets its
    epoch from Lightning (``set_epoch``) and repeats that epoch's order exactly. It is a
    ``DistributedSampler``, so Lightning keeps it under DDP instead of putting its own in its
    place (which would yield single samples).

    Args:
        indices: the samples of the data set this loader covers (a split's view).
        batch_size: samples per batch.
        shuffle: draw a new order every epoch (training); else keep ``indices``' order.
        drop_last: drop this rank's last incomplete batch.
        rank: this process' rank; ``world_size``: the number of ranks.
        seed: the shuffle seed (default: ``PL_GLOBAL_SEED``, which ``seed_everything`` sets).
        weights: one draw weight per entry of ``indices`` (training only), or ``None``.
        device: where the index tensors go, once per epoch (the images' device).

    Example:
        >>> order = BatchOrder(np.arange(10), batch_size=4, shuffle=False)
        >>> [batch.tolist() for batch in order]
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """

    def __init__(
        self,
        indices: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        seed: int | None = None,
        weights: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else seed
        indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        super().__init__(indices, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
        self.indices = indices
        self.batch_size = batch_size
        self.drop_last = drop_last  # of the last incomplete batch, not of samples
        self.device = device
        self.draws = None
        if weights is not None:
            self.draws = WeightedDraw(weights, rank=rank, world_size=world_size, seed=seed)

    def _share(self) -> int:
        """Samples this rank sees in an epoch."""
        if self.draws is not None:
            return len(self.draws)
        total = len(self.indices)
        if self.shuffle:  # training: equal shares
            return total // self.num_replicas
        return len(range(self.rank, total, self.num_replicas))  # evaluation: every sample once

    def __len__(self) -> int:
        share = self._share()
        return share // self.batch_size if self.drop_last else math.ceil(share / self.batch_size)

    def epoch_indices(self) -> torch.Tensor:
        """This rank's samples of the current epoch, in order."""
        if self.draws is not None:
            self.draws.set_epoch(self.epoch)
            return self.indices[self.draws.positions()]
        indices = self.indices
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            indices = indices[torch.randperm(len(indices), generator=generator)]
            indices = indices[: self._share() * self.num_replicas]
        return indices[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[torch.Tensor]:
        # a generator: the order is drawn at the first batch, not at iter(), which a resumed
        # run's Lightning calls before it sets the epoch (a BatchSampler is as lazy)
        indices = self.epoch_indices().to(self.device)  # once per epoch, not per batch
        yield from indices.split(self.batch_size)[: len(self)]


class BatchDataset(Dataset):
    """An in-memory split fetched a whole batch at a time: ``dataset[indices]`` is
    ``(images[indices], labels[indices])``, one gather on the tensors' device.

    Args:
        images: ``(N, C, H, W)`` uint8 images.
        labels: ``(N,)`` int64 class indices, on the same device.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # index_select, not images[indices]: torch's general indexing took 8x as long (120 us
        # for 128 MNIST images on a CPU, 1% of a LeNet-5 step)
        return self.images.index_select(0, indices), self.labels.index_select(0, indices)


def _whole_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The collate step of a loader whose data set already returns whole batches."""
    return batch


def batch_loader(images: torch.Tensor, labels: torch.Tensor, order: BatchOrder) -> DataLoader:
    """A ``DataLoader`` of ``(images, labels)`` uint8 batches in ``order``'s order.

    ``batch_size=None``: the sampler yields whole batches and the data set answers each with
    one index; no workers, no collate. ``loader.dataset``, ``len(loader.dataset)`` and
    ``loader.sampler`` (with ``set_epoch``, which Lightning calls) are a ``DataLoader``'s.

    Example:
        >>> loader = batch_loader(torch.zeros(10, 1, 8, 8, dtype=torch.uint8),
        ...                       torch.zeros(10, dtype=torch.long),
        ...                       BatchOrder(np.arange(10), batch_size=4, shuffle=True))
        >>> [tuple(images.shape) for images, _ in loader], len(loader.dataset)
        ([(4, 1, 8, 8), (4, 1, 8, 8), (2, 1, 8, 8)], 10)
    """
    return DataLoader(
        BatchDataset(images, labels),
        sampler=order,
        batch_size=None,
        collate_fn=_whole_batch,
        # every iter() draws a worker base seed; from a generator of its own, so torch's
        # global stream, which seeds the augmentation, is not moved by it
        generator=torch.Generator(),
    )
