"""Speed options of a recipe against the same setup without them: images/s ratios.

For each model (``lenet5`` and ``alexnet`` by default, both at CIFAR-10's 3x32x32, where
``alexnet`` is its "small" variant), ``ImageClassifier`` (SGD, lr 0.01) trains and predicts
through the Lightning Trainer on a ``DataLoader`` of random normalized images built once in
memory (speed does not depend on the pixels). The sides differ only in one recipe option:

- base: ``trainer.precision: 32-true``, no callback.
- bf16: ``trainer.precision: bf16-mixed`` (Lightning's autocast to bfloat16).
- channels_last: the :class:`~lightning_cv.callbacks.performance.ChannelsLast` callback.
- compile: :class:`~lightning_cv.callbacks.performance.CompileBackbone` (inductor, default
  mode); each side keeps its model across repeats, so only the first fit compiles.
- ema: :class:`~lightning_cv.callbacks.weight_averaging.EMAWeightAveraging` (decay 0.999,
  an update after every step; training only: it does nothing at prediction).

A callback clocks the steps after ``--warmup`` batches of each fit or predict (those absorb
compilation and first-call costs), so Trainer set-up is not timed. The sides take turns going
first; torch runs one thread on every side. The clock is process time by default (``--clock
cpu``; with one thread it is the compute an image costs, which is what an option changes): on
a shared machine the wall clock also counts the time this process waits for a core. Result
rows: images/s per model, phase (train, predict), option and base, and ``ratio`` = the median
over repeats of option / base within the repeat (above 1: the option is faster). The
top-level ``ratio`` is the geometric mean of the rows' ratios. No target: the issue asks for
the figures. The last line is one JSON object.

    python benchmarks/precision.py --models lenet5 alexnet --repeats 5 --threads 1 --clock cpu
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as L
import torch
from _harness import interleaved, print_result, quiet_lightning, quiet_trainer, use_threads
from inference import geometric_mean
from torch.utils.data import DataLoader, TensorDataset

from lightning_cv import ImageClassifier
from lightning_cv.callbacks.performance import ChannelsLast, CompileBackbone
from lightning_cv.callbacks.weight_averaging import EMAWeightAveraging

__all__ = ["OPTIONS", "PHASES", "StepClock", "bf16_instructions", "make_loader", "parse_args"]

SEED = 0
OPTIONS = ("bf16", "channels_last", "compile", "ema")
PHASES = ("train", "predict")
TRAIN_ONLY = ("ema",)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class StepClock(L.Callback):
    """Seconds from the start of batch ``skip`` to the end of the last batch of a loop."""

    def __init__(self, skip: int, clock=time.perf_counter) -> None:
        self.skip, self.clock = skip, clock
        self.start = self.end = 0.0

    def _start(self, batch_idx: int) -> None:
        if batch_idx == self.skip:
            self.start = self.clock()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._start(batch_idx)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx: int, *_) -> None:
        self._start(batch_idx)

    def on_train_batch_end(self, *args) -> None:
        self.end = self.clock()

    def on_predict_batch_end(self, *args) -> None:
        self.end = self.clock()

    @property
    def seconds(self) -> float:
        return self.end - self.start


def bf16_instructions() -> list[str]:
    """The bfloat16 instruction sets (``avx512_bf16``, ``amx_bf16``) /proc/cpuinfo names."""
    cpuinfo = Path("/proc/cpuinfo")
    flags = (
        next(
            (
                line.split(":", 1)[1].split()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("flags")
            ),
            [],
        )
        if cpuinfo.is_file()
        else []
    )
    return sorted(flag for flag in set(flags) if flag in ("avx512_bf16", "amx_bf16", "amx_tile"))


def make_loader(batches: int, batch_size: int) -> DataLoader:
    """``batches`` x ``batch_size`` random normalized (3, 32, 32) images, labels 0..9."""
    generator = torch.Generator().manual_seed(SEED)
    n = batches * batch_size
    images = torch.randn(n, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=False)


def option_callbacks(option: str) -> list[L.Callback]:
    """The callbacks a side adds for ``option`` (none for base and bf16)."""
    if option == "channels_last":
        return [ChannelsLast()]
    if option == "compile":
        return [CompileBackbone()]
    if option == "ema":
        return [EMAWeightAveraging(decay=0.999)]
    return []


@dataclass
class Side:
    """One option on one model: its model (kept across repeats) and its images/s per phase."""

    model_name: str
    option: str
    model: ImageClassifier = field(init=False)
    rates: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})

    def __post_init__(self) -> None:
        torch.manual_seed(SEED)
        self.model = ImageClassifier(
            self.model_name, num_classes=10, in_channels=3, image_size=32, optimizer="sgd", lr=0.01
        )

    def run(self, phase: str, loader: DataLoader, warmup: int, clock_name: str) -> float:
        """Images/s of the clocked batches of one fit (one epoch) or one predict."""
        clock = StepClock(warmup, CLOCKS[clock_name])
        trainer = quiet_trainer(
            1,
            callbacks=[*option_callbacks(self.option), clock],
            precision="bf16-mixed" if self.option == "bf16" else "32-true",
        )
        if phase == "train":
            trainer.fit(self.model, train_dataloaders=loader)
        else:
            trainer.predict(self.model, dataloaders=loader, return_predictions=False)
        images = (len(loader) - warmup) * loader.batch_size
        rate = images / clock.seconds
        self.rates[phase].append(rate)
        return rate


def measure(model_name: str, options: list[str], args: argparse.Namespace) -> list[dict]:
    """The rows of one model: every option against base, per phase."""
    sides = {name: Side(model_name, name) for name in ["base", *options]}
    loader = make_loader(args.warmup + args.steps, args.batch_size)
    for phase in PHASES:
        names = [name for name in sides if phase == "train" or name not in TRAIN_ONLY]
        for repeat, name in interleaved(names, args.repeats):
            rate = sides[name].run(phase, loader, args.warmup, args.clock)
            print(
                f"{model_name:>8} {phase:>7} {repeat:>2} {name:>13} {rate:>9.1f} img/s", flush=True
            )
    rows = []
    for phase in PHASES:
        base = sides["base"].rates[phase]
        for name in options:
            rates = sides[name].rates[phase]
            if not rates:
                continue
            ratio = statistics.median(o / b for o, b in zip(rates, base, strict=True))
            rows.append(
                {
                    "model": model_name,
                    "phase": phase,
                    "option": name,
                    "base_images_per_s": round(statistics.median(base), 1),
                    "option_images_per_s": round(statistics.median(rates), 1),
                    "ratio": round(ratio, 3),
                }
            )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "alexnet"])
    parser.add_argument("--options", nargs="+", choices=OPTIONS, default=list(OPTIONS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="clocked batches per run")
    parser.add_argument("--warmup", type=int, default=3, help="unclocked batches first")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=CLOCKS, default="cpu", help="cpu: process time")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "warmup", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main() -> None:
    args = parse_args()
    quiet_lightning()
    use_threads(args.threads)
    print(f"batch {args.batch_size}, {args.steps} clocked steps, torch threads {args.threads}")
    rows = [row for model in args.models for row in measure(model, args.options, args)]
    print(f"{'model':>8} {'phase':>7} {'option':>13} {'base':>9} {'option':>9} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['model']:>8} {row['phase']:>7} {row['option']:>13} "
            f"{row['base_images_per_s']:>9.1f} {row['option_images_per_s']:>9.1f} "
            f"{row['ratio']:>6.3f}"
        )
    figures = {
        "models": args.models,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "repeats": args.repeats,
        "ratio": round(geometric_mean([row["ratio"] for row in rows]), 4),
        "rows": rows,
        "torch_threads": args.threads,
        "device": "cpu",
        "clock": args.clock,
        "bf16_instructions": bf16_instructions(),
    }
    print_result("precision", figures)


if __name__ == "__main__":
    main()
