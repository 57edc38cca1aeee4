"""Trainer overhead: ImageClassifier under the Lightning Trainer vs a plain PyTorch loop.

Both sides train LeNet-5 (``create_model("lenet5", num_classes=10, in_channels=1,
image_size=28)``) from the same seed with SGD (lr 0.05, momentum 0.9) for the same steps, over
one shared ``DataLoader`` (batch 256, no shuffle, no workers) on a ``TensorDataset`` of
normalized random (1, 28, 28) images and int64 labels in 0..9, built once in memory. The
warm-up checks that both sides end with the same weights.

- plain: ``model.train()``; per batch ``zero_grad(set_to_none=True)``, ``cross_entropy``,
  ``backward``, ``step``. Nothing else.
- lightning_cv: ``Trainer(...).fit(ImageClassifier(...))`` on one CPU device, with everything
  the product does per step: the non-finite loss check, the loss's running mean and
  ``train/acc`` updated through torchmetrics (logged per epoch; ``train/loss_step`` goes out on
  the steps a logger writes), Lightning's hooks and optimizer closure. Logger, progress bar,
  checkpointing, model summary and validation are off: they are I/O or extra work, not
  framework overhead. Trainer construction is timed.

``time.perf_counter`` spans the whole loop or the whole ``fit``, after one untimed warm-up of
each; repeats alternate who goes first (plain, ours, ours, plain, ...) so drift hits both
sides. One torch thread by default: on a small shared machine two threads slow down 5-10x
whenever another process takes a core. When other jobs load the machine, ``--clock cpu``
(process time; use it with one thread) leaves out the time this process waits for a core.
Result: images/s per side, median over repeats; ``ratio`` = the median over repeats of
ours / plain within the repeat (a repeat's two runs are neighbours in time, so a slow spell of
the machine hits both); ``ratio_of_medians`` beside it. Target ratio >= 0.95 (aim 0.97). The
last line is one JSON object.

    python benchmarks/overhead.py --repeats 9 --batches 200 --threads 1 --clock wall
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_cv import ImageClassifier, create_model

MODEL = dict(num_classes=10, in_channels=1, image_size=28)
SEED = 0
LR, MOMENTUM = 0.05, 0.9
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def make_loader(batches: int, batch_size: int) -> DataLoader:
    """``batches`` x ``batch_size`` images like normalized uint8 pixels, with labels 0..9."""
    generator = torch.Generator().manual_seed(SEED)
    n = batches * batch_size
    pixels = torch.randint(0, 256, (n, 1, 28, 28), generator=generator).float() / 255
    images = (pixels - 0.1307) / 0.3081  # MNIST mean and std
    labels = torch.randint(0, 10, (n,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)


def run_plain(loader: DataLoader, clock=time.perf_counter) -> tuple[float, nn.Module]:
    """Seconds for one epoch of the plain PyTorch loop, and the trained model."""
    torch.manual_seed(SEED)
    model = create_model("lenet5", **MODEL)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    start = clock()
    model.train()
    for images, labels in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
    return clock() - start, model


def run_ours(loader: DataLoader, clock=time.perf_counter) -> tuple[float, nn.Module]:
    """Seconds for one epoch of ``Trainer.fit`` on ``ImageClassifier``, and its backbone."""
    torch.manual_seed(SEED)
    model = ImageClassifier(
        "lenet5", **MODEL, optimizer="sgd", lr=LR, optimizer_kwargs={"momentum": MOMENTUM}
    )
    start = clock()
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=loader)
    return clock() - start, model.backbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="cpu: process time")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # "GPU available: ..."
    warnings.filterwarnings(
        "ignore", ".*(does not have many workers|no `val_dataloader`|LeafSpec).*"
    )
    torch.set_num_threads(args.threads)
    images = args.batches * args.batch_size
    print(f"lenet5, {args.batches} steps x batch {args.batch_size}, torch threads {args.threads}")

    # warm-up, not counted; it also checks that both sides train the same weights
    warm = make_loader(2, args.batch_size)
    torch.testing.assert_close(run_ours(warm)[1].state_dict(), run_plain(warm)[1].state_dict())
    loader = make_loader(args.batches, args.batch_size)
    plain, ours = [], []
    print(f"{'repeat':>6} {'plain img/s':>12} {'ours img/s':>12} {'ratio':>6}")
    for repeat in range(args.repeats):
        sides = [(plain, run_plain), (ours, run_ours)]
        for results, run in sides if repeat % 2 == 0 else sides[::-1]:  # who goes first alternates
            results.append(images / run(loader, CLOCKS[args.clock])[0])
        print(f"{repeat:>6} {plain[-1]:>12.0f} {ours[-1]:>12.0f} {ours[-1] / plain[-1]:>6.3f}")
    plain_median, ours_median = statistics.median(plain), statistics.median(ours)
    ratio = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
    print(f"{'median':>6} {plain_median:>12.0f} {ours_median:>12.0f} {ratio:>6.3f}")
    print(f"{'best':>6} {max(plain):>12.0f} {max(ours):>12.0f} {max(ours) / max(plain):>6.3f}")
    result = {
        "benchmark": "overhead",
        "model": "lenet5",
        "batch_size": args.batch_size,
        "steps": args.batches,
        "repeats": args.repeats,
        "plain_images_per_s": round(plain_median, 1),
        "lightning_cv_images_per_s": round(ours_median, 1),
        "ratio": round(ratio, 4),
        "ratio_of_medians": round(ours_median / plain_median, 4),
        "torch_threads": args.threads,
        "device": "cpu",
        "clock": args.clock,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
