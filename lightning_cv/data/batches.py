"""The batch path's loader: whole uint8 batches of an in-memory data set, one index each.

No worker processes, no per-sample Python and no collate: a batch is ``images[indices]`` of one
``(N, C, H, W)`` uint8 tensor, which can live on the model's device. Conversion to float,
augmentation and normalisation happen after transfer, in
:meth:`lightning_cv.data.ImageDataModule.on_after_batch_transfer`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from lightning_cv.data.sampling import WeightedDraw

__all__ = ["BatchLoader", "BatchOrder", "to_image_tensor"]


def to_image_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 array -> contiguous ``(N, C, H, W)`` uint8 tensor (one copy)."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


class BatchOrder:
    """Which samples each batch of one rank holds: the batch path's sampler.

    Training order is a permutation drawn from ``seed + epoch`` (the rule of torch's
    ``DistributedSampler``), so every rank draws the same one and takes every
    ``world_size``-th sample of it: the shares are disjoint and, after dropping at most
    ``world_size - 1`` samples, equal, so no rank waits for another. A resumed run gets its
    epoch from Lightning (``set_epoch``) and repeats that epoch's order exactly.

    Args:
        indices: the samples of the data set this loader covers (a split's view).
        batch_size: samples per batch.
        shuffle: draw a new order every epoch (training); else keep ``indices``' order.
        drop_last: drop this rank's last incomplete batch.
        rank: this process' rank; ``world_size``: the number of ranks.
        seed: the shuffle seed (default: ``PL_GLOBAL_SEED``, which ``seed_everything`` sets).
        weights: one draw weight per entry of ``indices`` (training only), or ``None``.

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
    ) -> None:
        self.indices = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) if seed is None else seed
        self.epoch = 0
        self.draws = None
        if weights is not None:
            self.draws = WeightedDraw(weights, rank=rank, world_size=world_size, seed=self.seed)

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this before every epoch (``_set_sampler_epoch``)."""
        self.epoch = epoch

    def _share(self) -> int:
        """Samples this rank sees in an epoch."""
        if self.draws is not None:
            return len(self.draws)
        total = len(self.indices)
        if self.shuffle:  # training: equal shares
            return total // self.world_size
        return len(range(self.rank, total, self.world_size))  # evaluation: every sample once

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
            indices = indices[: self._share() * self.world_size]
        return indices[self.rank :: self.world_size]

    def split(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """:meth:`epoch_indices` (on any device) cut into this epoch's batches."""
        return indices.split(self.batch_size)[: len(self)]

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.split(self.epoch_indices()))


class BatchLoader:
    """Iterate ``(images, labels)`` batches of in-memory tensors in :class:`BatchOrder`'s order.

    Lightning takes any sized iterable as a loader; it finds ``sampler.set_epoch`` as on a
    ``DataLoader``. When ``images`` lives on a GPU, the indices go there once per epoch and
    every batch is sliced on the device.

    Args:
        images: ``(N, C, H, W)`` uint8 images.
        labels: ``(N,)`` int64 class indices, on the same device.
        sampler: the order.

    Example:
        >>> loader = BatchLoader(torch.zeros(10, 1, 8, 8, dtype=torch.uint8),
        ...                      torch.zeros(10, dtype=torch.long),
        ...                      BatchOrder(np.arange(10), batch_size=4, shuffle=True))
        >>> [tuple(images.shape) for images, _ in loader]
        [(4, 1, 8, 8), (4, 1, 8, 8), (2, 1, 8, 8)]
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, sampler: BatchOrder) -> None:
        self.images = images
        self.labels = labels
        self.sampler = sampler
        self.batch_sampler = None  # as on a DataLoader that yields ready batches
        self.batch_size = sampler.batch_size

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = self.sampler.epoch_indices().to(self.images.device)
        for chosen in self.sampler.split(indices):
            yield self.images[chosen], self.labels[chosen]
