"""Every GPU figure the project wants, in one run of a few minutes on one GPU, appended to
``benchmarks/RESULTS.md`` (or ``--results PATH``) under the device's name.

1. Time to accuracy: LeNet-5 on MNIST to 99.0% test top-1 with ``recipes/mnist_lenet5_fast.yaml``
   through the Trainer on the batch pipeline (the uint8 training set kept on the GPU, batches
   taken by one index there) against the hand-written loop on the same GPU (the normalised
   set on the GPU): seconds to the target and images/s (``time_to_accuracy.py``'s sides).
2. ``recipes/cifar10_alexnet.yaml`` (bf16-mixed, channels-last, batch 128) training images/s
   on each data path, ``--data.pipeline sample`` (albumentations in the recipe's loader worker)
   and ``batch`` (kornia on the GPU).
3. ``bf16-mixed``, channels-last, ``torch.compile`` and EMA against fp32: images/s ratios of
   lenet5 and alexnet, training and prediction (``precision.py``'s sides, wall clock).
4. ``lightning-cv serve lenet5.mnist`` throughput (batched; serve runs on the CPU).

Part 2's clock waits for queued GPU work (``torch.cuda.synchronize()``); parts 1 and 3 keep their
scripts' wall clocks, read at the end of an epoch or of a loop. ``--tiny`` runs
every part on the CPU on the embedded digits for a few steps (``torch.compile`` left out) in
well under a minute: a check of this script, its figures mean nothing.

    python benchmarks/gpu_check.py [--root ../shared/datasets] [--results benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import lightning
import lightning.pytorch as L
import numpy as np
import precision
import serve
import time_to_accuracy as tta
import torch
from _harness import DEFAULT_ROOT, REPO, from_recipe, quiet_lightning, use_device

from lightning_cv._io import atomic_write_text

DIGITS = ["--data", "lightning_cv.data.DigitsDataModule", "--data.batch_size"]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@dataclass(frozen=True)
class Sizes:
    """How much each part runs: the GPU check's sizes or ``--tiny``'s."""

    device: str
    mnist_options: tuple[str, ...]  # instead of the recipe's data
    target: float
    repeats: int
    cifar_options: tuple[str, ...]
    steps: int
    warmup: int
    precision_batch: int
    precision_options: tuple[str, ...]
    serve_requests: int


GPU = Sizes("cuda", (), 0.99, 3, (), 50, 10, 256, precision.OPTIONS, 400)
TINY = Sizes(
    device="cpu",
    mnist_options=(*DIGITS, "128", "--data.image_size", "28", "--data.train_transform", "eval"),
    target=0.3,
    repeats=1,
    cifar_options=(
        *DIGITS,
        "16",
        "--data.image_size",
        "32",
        "--data.num_workers",
        "0",
        # the recipe's test-time mirror refuses digits (a mirrored 2 is no 2)
        "--trainer.callbacks",
        "[{class_path: lightning_cv.callbacks.ChannelsLast}]",
    ),
    steps=2,
    warmup=1,
    precision_batch=16,
    precision_options=("bf16", "channels_last", "ema"),
    serve_requests=16,
)


def clock(device: str) -> float:
    """``time.perf_counter()`` once the device's queued work is done."""
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def time_to_target(sizes: Sizes, root: Path) -> dict:
    """Part 1: seconds and images/s of both sides to the target, on the device."""
    cli = from_recipe(tta.DEFAULT_RECIPE, root, *sizes.mnist_options)
    setup = tta.Setup(
        cli.model, cli.datamodule, cli.trainer.max_epochs, cli.config["seed_everything"]
    )
    L.seed_everything(setup.seed, verbose=False)  # PL_GLOBAL_SEED: the batch path's order
    limits = argparse.Namespace(train_limit=None, test_limit=None)
    train, test = (
        tuple(tensor.to(sizes.device) for tensor in split) for split in tta.prepare(setup, limits)
    )
    try:  # the same weights after two batches; on a GPU, up to its non-deterministic kernels
        tta.warm_up(setup, train, test)
        same_weights = True
    except AssertionError:
        same_weights = False
    runs = {"plain": [], "lightning_cv": []}
    for _ in range(sizes.repeats):
        runs["plain"].append(tta.train_plain(setup, train, test, sizes.target))
        runs["lightning_cv"].append(tta.train_ours(setup, test, sizes.target))
    summary = tta.summarize(runs)
    for side, side_runs in runs.items():  # the host's process clock misses the GPU's work
        if summary[side]["seconds"] is not None:
            summary[side]["seconds"] = statistics.median(run.wall_seconds for run in side_runs)
        summary[side]["images_per_s"] = statistics.median(
            run.images / run.wall_seconds for run in side_runs
        )
    seconds = [summary[side]["seconds"] for side in runs]
    return {
        "target": sizes.target,
        "train_images": len(train[1]),
        "same_weights_after_warm_up": same_weights,
        "sides": summary,
        "seconds_ratio": tta.time_ratio(*seconds),  # plain / ours
    }


def alexnet_rates(sizes: Sizes, root: Path) -> dict[str, float]:
    """Part 2: cifar10_alexnet training images/s per data path, after ``warmup`` steps."""
    rates = {}
    for pipeline in ("sample", "batch"):
        options = [*sizes.cifar_options, "--data.pipeline", pipeline]
        options += ["--trainer.accelerator", sizes.device, "--trainer.devices", "1"]
        options += ["--trainer.max_steps", str(sizes.warmup + sizes.steps)]
        options += ["--trainer.limit_val_batches", "0", *QUIET]
        cli = from_recipe(REPO / "recipes" / "cifar10_alexnet.yaml", root, *options)
        step_clock = precision.StepClock(sizes.warmup, lambda: clock(sizes.device))
        cli.trainer.callbacks.append(step_clock)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        rates[pipeline] = sizes.steps * cli.datamodule.batch_size / step_clock.seconds
    return rates


def option_ratios(sizes: Sizes) -> list[dict]:
    """Part 3: ``precision.py``'s rows (option / fp32 images/s) on the device."""
    args = argparse.Namespace(
        batch_size=sizes.precision_batch, steps=sizes.steps, warmup=sizes.warmup,
        repeats=sizes.repeats, clock="wall",
    )  # fmt: skip
    models = ["lenet5", "alexnet"]
    return [
        row for model in models for row in precision.measure(model, sizes.precision_options, args)
    ]


def serve_line(requests: int) -> str:
    """Part 4: ``lightning-cv serve lenet5.mnist`` (batched, on the CPU: serve loads models
    there) answering ``requests`` uploads of 8 clients, after a warm-up round."""
    pngs = [serve.png_of(np.full((28, 28), index % 256, np.uint8)) for index in range(requests)]
    bodies = [{"image": base64.b64encode(png).decode("ascii")} for png in pngs]
    process, url = serve.start_server(serve.SETTINGS["batched"])
    try:
        serve.wait(url)
        serve.one_round(url, bodies[:16], 8)
        round_ = serve.one_round(url, bodies, 8)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return (f"{round_['requests_per_s']:,.0f} requests/s, p50 {round_['p50_ms']:.1f} ms, "
            f"p99 {round_['p99_ms']:.1f} ms ({requests} requests, 8 clients, batched)")  # fmt: skip


def render(device: str, figures: dict, seconds: float) -> str:
    """The Markdown section appended to the results file."""
    first = figures["time_to_accuracy"]
    target = f"{first['target']:.1%}"
    lines = [
        f"## GPU check: {device}", "",
        f"{figures['date']}, torch {torch.__version__}, lightning {lightning.__version__}, "
        f"{seconds:.0f} s in all{' (--tiny: figures mean nothing)' if figures['tiny'] else ''}", "",
        f"### LeNet-5 MNIST to {target} test top-1 ({first['train_images']:,} training images)", "",
        f"| side | seconds to {target} | epochs | test top-1 | images/s |",
        "| --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for side, name in (("plain", "hand-written loop"), ("lightning_cv", "lightning-cv fit")):
        row = first["sides"][side]
        reached = "missed" if row["seconds"] is None else f"{row['seconds']:.2f}"
        lines.append(f"| {name} | {reached} | {row['epochs']} | {row['acc']:.2%} | "
                     f"{row['images_per_s']:,.0f} |")  # fmt: skip
    ratio = first["seconds_ratio"]
    lines += ["", f"seconds plain / ours: {'none' if ratio is None else f'{ratio:.3f}'}", ""]
    lines += ["### cifar10_alexnet training images/s", "", "| pipeline | images/s |"]
    lines += ["| --- | --- |"]
    lines += [f"| {name} | {rate:,.0f} |" for name, rate in figures["alexnet"].items()]
    lines += ["", "### Speed options against fp32", ""]
    lines += ["| model | phase | option | fp32 images/s | option images/s | ratio |"]
    lines += ["| --- | --- | --- | --- | --- | --- |"]
    for row in figures["options"]:
        lines.append(f"| {row['model']} | {row['phase']} | {row['option']} | "
                     f"{row['base_images_per_s']:,.0f} | {row['option_images_per_s']:,.0f} | "
                     f"{row['ratio']:.3f} |")  # fmt: skip
    lines += ["", "### lightning-cv serve", "", figures["serve"]]
    return "\n".join(lines) + "\n"


def append(path: Path, section: str) -> None:
    """Add ``section`` at the end of ``path`` (created if missing), atomically."""
    before = path.read_text() if path.exists() else ""
    atomic_write_text(path, (before.rstrip("\n") + "\n\n" if before else "") + section)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="holds MNIST, CIFAR-10")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    parser.add_argument("--tiny", action="store_true", help="every part on the CPU, tiny sizes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    sizes = TINY if args.tiny else GPU
    if sizes.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check.py needs a CUDA GPU (none is visible); --tiny runs on the CPU")
    device = (
        torch.cuda.get_device_name() if sizes.device == "cuda" else f"CPU ({platform.machine()})"
    )
    quiet_lightning()
    use_device(sizes.device)
    root, results = args.root.resolve(), args.results.resolve()
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        # the Trainers' pictures without a logger (outputs/version_N) go with the folder
        figures, seconds = measure(sizes, root, device, tiny=args.tiny)
    section = render(device, figures, seconds)
    append(results, section)
    print(section)
    print(json.dumps({**figures, "seconds": round(seconds, 1)}))
    return figures


def measure(sizes: Sizes, root: Path, device: str, *, tiny: bool) -> tuple[dict, float]:
    """Every part's figures, and the seconds they took."""
    start = time.perf_counter()
    figures = {
        "benchmark": "gpu_check", "device": device, "tiny": tiny,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "time_to_accuracy": time_to_target(sizes, root),
        "alexnet": alexnet_rates(sizes, root),
        "options": option_ratios(sizes),
        "serve": serve_line(sizes.serve_requests),
    }  # fmt: skip
    return figures, time.perf_counter() - start


if __name__ == "__main__":
    main()
