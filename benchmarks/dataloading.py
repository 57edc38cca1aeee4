"""Train-loader throughput: the batch path vs the albumentations path, CIFAR and digits presets.

All sides read the same in-memory uint8 arrays and deliver what the model gets: normalised,
augmented ``(B, C, H, W)`` float batches.

- batch: the batch pipeline's ``DataLoader`` (one index list per batch) and ``transform_batch``
  (the batch preset: ``PadCrop``, ``HorizontalFlip`` and kornia ops), in the main process,
  1 thread.
- albumentations: the same data module with ``pipeline="sample"``: the albumentations preset
  per sample in ``--workers`` loader processes, then the default collate.
- torchvision (CIFAR only): the same augmentation in ``transforms.v2``, per sample, same loader
  settings: the reference for the albumentations path.

Repeats are interleaved so drift hits every side. ``--ops`` also times each op of the CIFAR
batch preset beside kornia's own crop and flip (why two ops are ours). The last line is JSON:
``ratio`` = batch / albumentations images/s with the CIFAR preset (target >= 3),
``digits_ratio`` the same with the digits preset, ``albumentations_vs_torchvision``.

Run: ``python benchmarks/dataloading.py [--root ../shared/datasets] [--ops]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

import kornia.augmentation as K
import numpy as np
import torch
import torchvision.transforms.v2 as v2
from _harness import DEFAULT_ROOT, interleaved, print_result, use_threads
from torch.utils.data import DataLoader, Dataset

from lightning_cv.data import ImageDataModule, build_batch_transform

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class InMemory(ImageDataModule):
    """A data module over given arrays: the product's loaders and transforms, no files."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, preset: str, **kwargs) -> None:
        super().__init__(train_transform=preset, val_fraction=0, **kwargs)
        self.arrays = images, labels
        self.image_size = images.shape[1]
        self.in_channels = images.shape[3]
        self.num_classes = 10
        self.class_names = tuple(str(label) for label in range(10))
        self.mean, self.std = (
            (CIFAR_MEAN, CIFAR_STD) if images.shape[3] == 3 else ((0.13,), (0.31,))
        )

    def read_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return self.arrays


class TorchvisionArrays(Dataset):
    """The reference: the same arrays through the CIFAR preset written in ``transforms.v2``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels
        self.transform = v2.Compose(
            [
                v2.ToImage(),  # (H, W, C) uint8 array -> (C, H, W) uint8 tensor
                v2.Pad(4, padding_mode="reflect"),
                v2.RandomCrop(32),
                v2.RandomHorizontalFlip(),
                v2.RandomApply([v2.ColorJitter(brightness=0.2, contrast=0.2)], p=0.5),
                v2.ToDtype(torch.float32, scale=True),
                v2.RandomErasing(p=0.5, scale=(0.0625, 0.0625), ratio=(1.0, 1.0), value=0),
                v2.Normalize(CIFAR_MEAN, CIFAR_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), int(self.labels[index])


def load_arrays(root: Path, name: str, limit: int) -> tuple[np.ndarray, np.ndarray, str]:
    """CIFAR-10 (``cifar``) or MNIST (``digits``) training images under ``root``, else random
    arrays of the same shape."""
    from lightning_cv.data import CIFAR10DataModule, MNISTDataModule

    module, folder, shape = {
        "cifar": (CIFAR10DataModule, root / "CIFAR-10-images", (32, 32, 3)),
        "digits": (MNISTDataModule, root, (28, 28, 1)),
    }[name]
    if (folder / "train").is_dir() or (folder / "MNIST").is_dir():
        images, labels = module(root=folder).load_split("train")
        return images[:limit], labels[:limit], f"{module.__name__} images from {folder}"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (limit, *shape), dtype=np.uint8)
    return images, rng.integers(0, 10, limit), f"random {shape} arrays (no data found)"


def per_sample_batches(dataset: Dataset, workers: int, batch_size: int) -> Iterable:
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


def batch_path_batches(data: InMemory) -> Iterable:
    for images, labels in data.train_dataloader():  # on_after_batch_transfer's work, on the CPU
        yield data.transform_batch(images, train=True), labels


def images_per_second(batches: Iterable, count: int, batch_size: int) -> float:
    iterator = iter(batches)
    next(iterator)  # warm-up: worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    return count * batch_size / (time.perf_counter() - start)


def compare(args: argparse.Namespace, preset: str) -> dict[str, float]:
    """Median images/s of each side for ``preset``, printing every repeat."""
    needed = (args.batches + 1) * args.batch_size
    images, labels, source = load_arrays(args.root, preset, needed)
    batch = InMemory(images, labels, preset, batch_size=args.batch_size, pipeline="batch")
    sample = InMemory(images, labels, preset, batch_size=args.batch_size, pipeline="sample")
    for data in (batch, sample):
        data.setup("fit")
    sides = {
        "batch": lambda: batch_path_batches(batch),
        "albumentations": lambda: per_sample_batches(
            sample.train_set, args.workers, args.batch_size
        ),
    }
    if preset == "cifar":
        theirs = TorchvisionArrays(images, labels)
        sides["torchvision"] = lambda: per_sample_batches(theirs, args.workers, args.batch_size)
    print(f"{preset}: {source}; {args.workers} worker(s) per sample, batch {args.batch_size}")
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for repeat, name in interleaved(list(sides), args.repeats):
        rates[name].append(images_per_second(sides[name](), args.batches, args.batch_size))
        print(f"repeat {repeat}: {preset:>6} {name:>14} {rates[name][-1]:9.0f} images/s")
    return {name: statistics.median(values) for name, values in rates.items()}


def time_ops(batch_size: int) -> None:
    """Milliseconds per batch of each CIFAR batch-preset op and of kornia's crop and flip."""
    floats = torch.rand(batch_size, 3, 32, 32)
    ops = {
        type(getattr(op, "transform", op)).__name__: op
        for op in build_batch_transform("cifar", size=(32, 32)).steps
    }
    ops["kornia RandomCrop(padding=4, reflect)"] = K.RandomCrop(
        (32, 32), padding=4, padding_mode="reflect"
    )
    ops["kornia RandomHorizontalFlip"] = K.RandomHorizontalFlip()
    for name, op in ops.items():
        op(floats)
        start = time.perf_counter()
        for _ in range(20):
            op(floats)
        print(f"op {name:>40}: {(time.perf_counter() - start) / 20 * 1e3:6.2f} ms / batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ops", action="store_true", help="also time each batch op")
    args = parser.parse_args()
    use_threads(1)  # one thread per process on every side

    cifar, digits = compare(args, "cifar"), compare(args, "digits")
    if args.ops:
        time_ops(args.batch_size)
    workers = max(args.workers, 1)
    summary = {
        "workers": args.workers,
        "batch_size": args.batch_size,
        "batch_images_per_s": round(cifar["batch"]),
        "albumentations_images_per_s": round(cifar["albumentations"]),
        "torchvision_images_per_s": round(cifar["torchvision"]),
        "albumentations_images_per_s_per_worker": round(cifar["albumentations"] / workers),
        "digits_batch_images_per_s": round(digits["batch"]),
        "digits_albumentations_images_per_s": round(digits["albumentations"]),
        "ratio": round(cifar["batch"] / cifar["albumentations"], 3),
        "digits_ratio": round(digits["batch"] / digits["albumentations"], 3),
        "albumentations_vs_torchvision": round(cifar["albumentations"] / cifar["torchvision"], 3),
    }
    print_result("dataloading", summary)


if __name__ == "__main__":
    main()
