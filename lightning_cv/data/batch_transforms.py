"""Batch augmentation: whole batches on the model's device, each sample with its own draw.

The batch backend of the presets of :mod:`lightning_cv.data.transforms` (whose ``PRESETS``
table holds both backends per name), built from ``kornia.augmentation`` plus two vectorised
ops (:class:`PadCrop`, :class:`HorizontalFlip`) where kornia's own cost more than the model
on small images (``benchmarks/dataloading.py``). A pipeline is an :class:`BatchAugment` of
steps that map a ``(B, C, H, W)`` float batch in [0, 1] to another; the batch pipeline converts
the uint8 batch to floats before it and normalises after it. Every random number is drawn on
the CPU from torch's generator, so a seed fixes the augmentation whatever the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import kornia.augmentation as K
import torch
from kornia.augmentation import auto
from torch import nn
from torch.nn import functional as F

from lightning_cv.errors import ConfigError

__all__ = [
    "POLICY",
    "BatchAugment",
    "HorizontalFlip",
    "PadCrop",
    "PerSampleChoice",
    "RandomApply",
    "policy_ops",
    "to_floats",
]

Size = tuple[int, int]

# RandAugment's and TrivialAugment's ops as (kornia op name, low, high), in kornia's
# conventions (kornia.augmentation.auto): kornia's TrivialAugment list without two ops the sample
# path cannot match, sharpness (albumentations has no PIL-style one) and equalize (on an image
# with one dominant grey kornia maps it to black, albumentations to white), posterize kept to
# 4-8 bits (0 bits is a black image), translations up to torchvision's 150/331 of the side.
# Shears are x 180 degrees; enhancement factors: 1 = no change.
POLICY: tuple[tuple[str, float, float], ...] = (
    ("auto_contrast", 0.0, 1.0), ("rotate", -30.0, 30.0),
    ("posterize", 4.0, 8.0), ("solarize", 0.0, 1.0), ("color", 0.1, 1.9),
    ("contrast", 0.1, 1.9), ("brightness", 0.1, 1.9), ("shear_x", -0.3, 0.3),
    ("shear_y", -0.3, 0.3), ("translate_x", -0.45, 0.45), ("translate_y", -0.45, 0.45),
)  # fmt: skip


def policy_ops(channels: int) -> list[tuple[str, float, float]]:
    """The :data:`POLICY` ops for images of ``channels``: grey images have no saturation."""
    return [op for op in POLICY if channels == 3 or op[0] != "color"]


class PadCrop(nn.Module):
    """Pad every side by ``padding``, then crop back to the input size at a random offset.

    The batch form of albumentations' ``PadIfNeeded`` + ``RandomCrop``: each sample's offset is
    uniform in ``[0, 2 * padding]`` on each axis. kornia's ``RandomCrop(padding=...)`` builds
    and warps a crop box per sample and pads a copy of the batch; one gather over the unpadded
    batch costs a fifth of that on 32x32 images (``benchmarks/dataloading.py --ops``).

    Args:
        padding: pixels added on each side (4 for CIFAR-10, as in He et al. 2016).
        padding_mode: ``reflect`` (no border pixels the photo never had), ``replicate`` or
            ``constant`` (zeros).

    Example:
        >>> PadCrop(4)(torch.rand(8, 3, 32, 32)).shape
        torch.Size([8, 3, 32, 32])
    """

    def __init__(
        self,
        padding: int = 4,
        padding_mode: Literal["reflect", "replicate", "constant"] = "reflect",
    ) -> None:
        super().__init__()
        if padding < 0:
            raise ConfigError(f"PadCrop padding must be >= 0, got {padding}")
        if padding_mode not in ("reflect", "replicate", "constant"):
            raise ConfigError(
                f"unknown PadCrop padding_mode {padding_mode!r}; expected 'constant', "
                "'reflect' or 'replicate'"
            )
        self.padding = padding
        self.padding_mode = padding_mode

    def extra_repr(self) -> str:
        return f"padding={self.padding}, padding_mode={self.padding_mode!r}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.padding == 0:
            return images
        batch, channels, height, width = images.shape
        if self.padding >= min(height, width):
            raise ConfigError(
                f"PadCrop padding={self.padding} needs images larger than {self.padding} pixels, "
                f"got {height}x{width}"
            )
        shifts = torch.randint(2 * self.padding + 1, (2, batch)).to(images.device) - self.padding
        rows, row_inside = self._source(shifts[0], height)  # (B, H): the row each output reads
        columns, column_inside = self._source(shifts[1], width)  # (B, W)
        # one gather over the flattened image: no padded copy of the batch is made
        flat = (rows[:, :, None] * width + columns[:, None, :]).view(batch, 1, -1)
        flat = flat.expand(batch, channels, height * width)
        crops = images.reshape(batch, channels, -1).gather(2, flat).view(images.shape)
        if self.padding_mode == "constant":
            inside = row_inside[:, None, :, None] & column_inside[:, None, None, :]
            crops = crops * inside
        return crops

    def _source(self, shifts: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Source index of each output pixel along one axis, and whether it is inside."""
        index = shifts[:, None] + torch.arange(side, device=shifts.device)
        inside = (index >= 0) & (index < side)
        if self.padding_mode == "reflect":  # -1 -> 1, side -> side - 2 (no edge repeat)
            index = torch.where(index < 0, -index, index)
            index = torch.where(index > side - 1, 2 * (side - 1) - index, index)
        return index.clamp(0, side - 1), inside


class HorizontalFlip(nn.Module):
    """Mirror each sample left-right with probability ``p`` (never use it on digits or text).

    Args:
        p: the chance that a sample is flipped.

    Example:
        >>> HorizontalFlip(p=1.0)(torch.arange(4.0).reshape(1, 1, 1, 4))
        tensor([[[[3., 2., 1., 0.]]]])
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ConfigError(f"HorizontalFlip p must be in [0, 1], got {p}")
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        flip = (torch.rand(len(images)) < self.p).to(images.device)
        return torch.where(flip[:, None, None, None], images.flip(-1), images)


class RandomApply(nn.Module):
    """Run ``transform`` on a random share ``p`` of the batch's samples only.

    kornia's own ``p`` transforms every sample and then keeps the untransformed copy of the
    skipped ones (two full passes and a blend); selecting the samples first does half the work
    at ``p=0.5``. The batch is updated in place: the batch path owns it.

    Args:
        transform: a batch transform applied to every sample it is given (``p=1``).
        p: the chance that a sample is transformed.

    Example:
        >>> jitter = RandomApply(K.ColorJiggle(brightness=0.2, p=1.0), p=0.5)
        >>> jitter(torch.rand(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])
    """

    def __init__(self, transform: nn.Module, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ConfigError(f"RandomApply p must be in [0, 1], got {p}")
        self.transform = transform
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        chosen = (torch.rand(len(images)) < self.p).nonzero().squeeze(1).to(images.device)
        if len(chosen):
            images[chosen] = self.transform(images[chosen])
        return images


class PerSampleChoice(nn.Module):
    """Apply ``n`` of ``candidates`` to each sample, chosen per sample without replacement and
    run in the candidates' order (as albumentations' ``SomeOf``).

    kornia's ``RandAugment`` and ``TrivialAugment`` choose their ops once per batch, so every
    sample of a batch would get the same ops; here each candidate runs on the samples that chose
    it only.

    Args:
        candidates: batch transforms applied to every sample they are given.
        n: how many candidates each sample gets, in [1, len(candidates)].

    Example:
        >>> choice = PerSampleChoice([HorizontalFlip(p=1.0), K.RandomInvert(p=1.0)], n=1)
        >>> choice(torch.rand(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])
    """

    def __init__(self, candidates: Sequence[nn.Module], n: int = 1) -> None:
        super().__init__()
        if not 1 <= n <= len(candidates):
            raise ConfigError(
                f"PerSampleChoice n must be in [1, {len(candidates)}] (the number of "
                f"candidates), got {n}"
            )
        self.candidates = nn.ModuleList(candidates)
        self.n = n

    def extra_repr(self) -> str:
        return f"n={self.n}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        picks = torch.rand(len(images), len(self.candidates)).argsort(dim=1)[:, : self.n]
        chosen = torch.zeros(len(images), len(self.candidates), dtype=torch.bool)
        chosen[torch.arange(len(images))[:, None], picks] = True  # (B, K): sample b runs op k
        for candidate, samples in zip(self.candidates, chosen.T.to(images.device), strict=True):
            indices = samples.nonzero().squeeze(1)
            if len(indices):
                images[indices] = candidate(images[indices])
        return images


class BatchAugment(nn.Module):
    """A batch pipeline: its steps run in order on a ``(B, C, H, W)`` float batch in [0, 1].

    Any ``nn.Module`` that maps such a batch to one of the same size is a step:
    ``kornia.augmentation`` transforms, :class:`PadCrop`, :class:`HorizontalFlip`. In a recipe
    each step is a ``class_path``/``init_args`` entry (docs/data.md shows one).

    Args:
        steps: the transforms, applied in order; none for evaluation.

    Example:
        >>> augment = BatchAugment([PadCrop(4), HorizontalFlip()])
        >>> augment(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, steps: Sequence[nn.Module] = ()) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            images = step(images)
        return images


def digits(size: Size, channels: int) -> BatchAugment:
    """Digits and letters: small shifts, rotations and scaling, never flips.

    The sample path adds an elastic distortion to 20% of the images; on the batch path that op
    costs four times the rest of the pipeline (kornia warps every sample of the batch), so it is
    left out. The tests pin that no sample is ever mirrored.
    """
    return BatchAugment(
        [K.RandomAffine(degrees=10, translate=(0.08, 0.08), scale=(0.9, 1.1), p=0.8)]
    )


def cifar(size: Size, channels: int) -> BatchAugment:
    """CIFAR-like photos: reflect-pad by 4 and crop, flip, brightness/contrast, one cutout square.

    Erasing covers 1/16 of the image with zeros (in [0, 1] pixels, i.e. black), as the sample
    path's ``Erasing``.
    """
    return BatchAugment(
        [
            PadCrop(padding=4, padding_mode="reflect"),
            HorizontalFlip(p=0.5),
            RandomApply(K.ColorJiggle(brightness=0.2, contrast=0.2, p=1.0), p=0.5),
            RandomApply(
                K.RandomErasing(scale=(1 / 16, 1 / 16), ratio=(1.0, 1.0), value=0.0, p=1.0), p=0.5
            ),
        ]
    )


def imagenet(size: Size, channels: int) -> BatchAugment:
    """ImageNet-like photos: multi-scale random resized crop, flip and colour jitter.

    Grey images get brightness and contrast jitter only (saturation needs three channels).
    """
    saturation = 0.4 if channels == 3 else 0.0
    jitter = K.ColorJitter(brightness=0.4, contrast=0.4, saturation=saturation, p=1.0)
    return BatchAugment(
        [
            K.RandomResizedCrop(size, scale=(0.08, 1.0)),
            HorizontalFlip(p=0.5),
            RandomApply(jitter, p=0.8),
        ]
    )


def _policy_preset(choice: PerSampleChoice) -> BatchAugment:
    """The cifar preset's pad-crop and flip, ``choice``, then cutout on half the samples."""
    erasing = K.RandomErasing(scale=(1 / 16, 1 / 16), ratio=(1.0, 1.0), value=0.0, p=1.0)
    return BatchAugment([PadCrop(4), HorizontalFlip(p=0.5), choice, RandomApply(erasing, p=0.5)])


def randaugment(size: Size, channels: int) -> BatchAugment:
    """Photos: RandAugment (Cubuk et al. 2020) between the cifar preset's crop and flip and
    its cutout, as the paper trained CIFAR-10.

    Each sample gets 2 of the :data:`POLICY` ops at magnitude 9 on kornia's 0-30 scale
    (torchvision's default N=2, M=9), each op a kornia ``RandAugment`` of that op alone.
    """
    ops = [auto.RandAugment(n=1, m=9, policy=[[op]]) for op in policy_ops(channels)]
    return _policy_preset(PerSampleChoice(ops, n=2))


def trivialaugment(size: Size, channels: int) -> BatchAugment:
    """Photos: TrivialAugment (Muller and Hutter 2021) between the cifar preset's crop and flip
    and its cutout: one :data:`POLICY` op per sample, its magnitude uniform over the op's range,
    each op a kornia ``TrivialAugment`` of that op alone. No magnitude to tune.
    """
    ops = [auto.TrivialAugment(policy=[[op]]) for op in policy_ops(channels)]
    return _policy_preset(PerSampleChoice(ops, n=1))


def evaluation(size: Size, channels: int) -> BatchAugment:
    """Evaluation: nothing beyond the resize and normalisation every batch gets."""
    return BatchAugment()


def to_floats(images: torch.Tensor, size: Size) -> torch.Tensor:
    """A uint8 ``(B, C, H, W)`` batch as float32 in [0, 1], resized to ``size`` when it differs.

    Example:
        >>> to_floats(torch.full((1, 1, 8, 8), 255, dtype=torch.uint8), (16, 16)).shape
        torch.Size([1, 1, 16, 16])
    """
    floats = images.float().div_(255)
    if tuple(floats.shape[-2:]) != size:
        floats = F.interpolate(floats, size=size, mode="bilinear", antialias=True)
    return floats
