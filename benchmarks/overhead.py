"""Trainer overhead: ImageClassifier under the Lightning Trainer vs a plain PyTorch loop.

Three sides train LeNet-5 (``create_model("lenet5", num_classes=10, in_channels=1,
image_size=28)``) from the same seed with SGD (lr 0.05, momentum 0.9) for the same steps, over
one shared ``DataLoader`` (batch 256, no shuffle, no workers) on a ``TensorDataset`` of
normalized random (1, 28, 28) images and int64 labels in 0..9, built once in memory. The
warm-up checks that all three end with the same weights.

- plain: ``model.train()``; per batch ``zero_grad(set_to_none=True)``, ``cross_entropy``,
  ``backward``, ``step``. Nothing else.
- lightning_cv: ``Trainer(...).fit(ImageClassifier(...))`` on one CPU device, with everything
  the product does per step: the non-finite loss check, the running sums behind the epoch's
  ``train/loss_epoch`` and ``train/acc`` (``train/loss_step`` goes out on the steps a logger
  writes), Lightning's hooks and optimizer closure.
- lightning: the same ``Trainer`` fitting the smallest LightningModule that trains LeNet-5
  (``training_step`` returns the cross-entropy; ``configure_optimizers`` the SGD): what the
  Trainer's loop costs by itself, so ``ours_vs_lightning`` is what lightning-cv adds to it.

Logger, progress bar, checkpointing, model summary and validation are off for both Trainer
sides: they are I/O or extra work, not framework overhead. Trainer construction is timed.

``time.perf_counter`` spans the whole loop or the whole ``fit``, after one untimed warm-up of
each; the sides take turns going first (plain, ours, lightning; ours, lightning, plain; ...) so
drift hits all of them. One torch thread by default: on a small shared machine two threads
slow down 5-10x whenever another process takes a core. When other jobs load the machine,
``--clock cpu`` (process time; use it with one thread) leaves out the time this process waits
for a core. Result: images/s per side, median over repeats; ``ratio`` = the median over
repeats of ours / plain within the repeat (a repeat's runs are neighbours in time, so a slow
spell of the machine hits all of them); ``ratio_of_medians`` beside it, and
``ratio_of_best``, the fastest run of each side (other processes only ever slow a run down,
so the fastest is the least disturbed, as ``timeit`` reasons); ``lightning_ratio`` (bare
Lightning / plain) and ``ours_vs_lightning`` (ours / bare Lightning) as ``ratio``.
Target ratio >= 0.95 (aim 0.97). The last line is one JSON object.

    python benchmarks/overhead.py --repeats 9 --batches 200 --threads 1 --clock wall
"""

from __future__ import annotations

import argparse
import statistics
import time

import lightning.pytorch as L
import torch
import torch.nn.functional as F
from _harness import interleaved, print_result, quiet_lightning, quiet_trainer, use_threads
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


class BareLeNet(L.LightningModule):
    """The smallest LightningModule that trains LeNet-5: the Trainer's cost by itself."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = create_model("lenet5", **MODEL)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(self.backbone(images), labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM)


def run_ours(loader: DataLoader, clock=time.perf_counter) -> tuple[float, nn.Module]:
    """Seconds for one epoch of ``Trainer.fit`` on ``ImageClassifier``, and its backbone."""
    torch.manual_seed(SEED)
    model = ImageClassifier(
        "lenet5", **MODEL, optimizer="sgd", lr=LR, optimizer_kwargs={"momentum": MOMENTUM}
    )
    return fit(model, loader, clock)


def run_lightning(loader: DataLoader, clock=time.perf_counter) -> tuple[float, nn.Module]:
    """Seconds for one epoch of ``Trainer.fit`` on :class:`BareLeNet`, and its backbone."""
    torch.manual_seed(SEED)
    return fit(BareLeNet(), loader, clock)


def fit(model: L.LightningModule, loader: DataLoader, clock) -> tuple[float, nn.Module]:
    """Seconds to build a Trainer and fit ``model`` for one epoch, and the trained backbone."""
    start = clock()
    quiet_trainer(max_epochs=1).fit(model, train_dataloaders=loader)
    return clock() - start, model.backbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="cpu: process time")
    args = parser.parse_args()
    quiet_lightning()
    use_threads(args.threads)
    images = args.batches * args.batch_size
    print(f"lenet5, {args.batches} steps x batch {args.batch_size}, torch threads {args.threads}")

    # warm-up, not counted; it also checks that all sides train the same weights
    warm = make_loader(2, args.batch_size)
    plain_weights = run_plain(warm)[1].state_dict()
    for run in (run_ours, run_lightning):
        torch.testing.assert_close(run(warm)[1].state_dict(), plain_weights)
    loader = make_loader(args.batches, args.batch_size)
    sides = {"plain": run_plain, "ours": run_ours, "lightning": run_lightning}
    rates = {name: [] for name in sides}
    print(f"{'repeat':>6} {'plain img/s':>12} {'ours img/s':>12} {'lightning':>10} {'ratio':>6}")
    for repeat, name in interleaved(list(sides), args.repeats):
        rates[name].append(images / sides[name](loader, CLOCKS[args.clock])[0])
        if all(len(values) == repeat + 1 for values in rates.values()):
            plain, ours, lightning = (rates[side][-1] for side in sides)
            print(
                f"{repeat:>6} {plain:>12.0f} {ours:>12.0f} {lightning:>10.0f} {ours / plain:>6.3f}"
            )
    medians = {name: statistics.median(values) for name, values in rates.items()}

    def paired(top: str, bottom: str) -> float:
        """The median over repeats of ``top`` / ``bottom`` within the repeat."""
        return statistics.median(t / b for t, b in zip(rates[top], rates[bottom], strict=True))

    ratio = paired("ours", "plain")
    print(
        f"{'median':>6} {medians['plain']:>12.0f} {medians['ours']:>12.0f} "
        f"{medians['lightning']:>10.0f} {ratio:>6.3f}"
    )
    best = {name: max(values) for name, values in rates.items()}
    print(
        f"{'best':>6} {best['plain']:>12.0f} {best['ours']:>12.0f} {best['lightning']:>10.0f} "
        f"{best['ours'] / best['plain']:>6.3f}"
    )
    figures = {
        "model": "lenet5",
        "batch_size": args.batch_size,
        "steps": args.batches,
        "repeats": args.repeats,
        "plain_images_per_s": round(medians["plain"], 1),
        "lightning_cv_images_per_s": round(medians["ours"], 1),
        "lightning_images_per_s": round(medians["lightning"], 1),
        "ratio": round(ratio, 4),
        "ratio_of_medians": round(medians["ours"] / medians["plain"], 4),
        "ratio_of_best": round(best["ours"] / best["plain"], 4),
        "lightning_ratio": round(paired("lightning", "plain"), 4),
        "ours_vs_lightning": round(paired("ours", "lightning"), 4),
        "torch_threads": args.threads,
        "device": "cpu",
        "clock": args.clock,
    }
    print_result("overhead", figures)


if __name__ == "__main__":
    main()
