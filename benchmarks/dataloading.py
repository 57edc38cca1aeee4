"""Train-loader throughput: our albumentations CIFAR preset vs the same augmentation in torchvision.

Both sides index the same in-memory uint8 arrays (no PIL per sample), run the same
augmentation (reflect-pad 4 + random 32x32 crop, horizontal flip, brightness/contrast jitter
with p=0.5, one 8x8 erased square with p=0.5, normalize) and batch with the same DataLoader
settings. Repeats are interleaved so drift hits both sides. The last line is JSON with both
figures and ``"ratio"`` (ours / torchvision). Target: ratio >= 1.5 and >= 15k images/s per worker.

Run: ``python benchmarks/dataloading.py [--root ../shared/datasets/CIFAR-10-images]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2 as v2
from torch.utils.data import DataLoader, Dataset

from lightning_cv.data import SampleDataset, build_transform

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "CIFAR-10-images"


class TorchvisionArrays(Dataset):
    """The baseline: the same arrays through an equivalent ``transforms.v2`` pipeline."""

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
                v2.Normalize(MEAN, STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[index]), int(self.labels[index])


def load_arrays(root: Path, limit: int) -> tuple[np.ndarray, np.ndarray, str]:
    """CIFAR-10 training images when ``root`` exists, else random images of the same shape."""
    if root.is_dir():
        from lightning_cv.data import CIFAR10DataModule

        images, labels = CIFAR10DataModule(root=root).load_split("train")
        return images[:limit], labels[:limit], f"CIFAR-10 images from {root}"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (limit, 32, 32, 3), dtype=np.uint8)
    return images, rng.integers(0, 10, limit), "random 32x32 RGB arrays (no CIFAR-10 found)"


def images_per_second(dataset: Dataset, workers: int, batches: int, batch_size: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # per-sample work: one thread per loader process on both sides

    needed = (args.batches + 1) * args.batch_size
    images, labels, source = load_arrays(args.root, needed)
    preset = build_transform("cifar", size=(32, 32), mean=MEAN, std=STD)
    ours = SampleDataset(images, labels, preset)
    theirs = TorchvisionArrays(images, labels)
    print(f"data: {source}; {args.workers} worker(s), batch {args.batch_size}")
    results = {"lightning_cv": [], "torchvision": []}
    for repeat in range(args.repeats):
        for name, dataset in (("torchvision", theirs), ("lightning_cv", ours)):
            rate = images_per_second(dataset, args.workers, args.batches, args.batch_size)
            results[name].append(rate)
            print(f"repeat {repeat}: {name:>12} {rate:9.0f} images/s")
    ours_rate = statistics.median(results["lightning_cv"])
    theirs_rate = statistics.median(results["torchvision"])
    workers = max(args.workers, 1)
    summary = {
        "benchmark": "dataloading",
        "preset": "cifar",
        "workers": args.workers,
        "batch_size": args.batch_size,
        "lightning_cv_images_per_s": round(ours_rate),
        "torchvision_images_per_s": round(theirs_rate),
        "lightning_cv_images_per_s_per_worker": round(ours_rate / workers),
        "ratio": round(ours_rate / theirs_rate, 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
