"""Inference images/s of every zoo architecture: eager PyTorch vs TorchScript vs ONNX Runtime.

Each architecture of ``list_models()`` is built at its zoo input size (linear, mlp, lenet5:
1x28x28 as MNIST; alexnet: 3x32x32 as CIFAR-10, which picks its "small" variant: the
ImageNet variant at 224x224 is out of reach of a 2-core CPU) with random weights (speed does
not depend on them), in eval mode, then exported with ``lightning_cv.zoo.export`` to
TorchScript (traced) and ONNX (dynamic batch axis). Before timing, both exports must give the
eager logits on the timed batch (atol 1e-4).

- eager: ``model(images)`` under ``torch.inference_mode``.
- torchscript: the ``torch.jit.load``-ed file, called the same way.
- onnxruntime: ``InferenceSession(...).run`` on the CPU provider with as many intra-op threads
  as torch has; the input is a NumPy view of the same batch.

At batch 1 (one request at a time: per-call overhead) and batch 256 (throughput), each
runtime is called once untimed, then timed over calls lasting at least ``--seconds``; repeats
alternate the runtimes so drift hits all three; the median is kept. One thread by default:
on a small shared machine a second thread mostly waits for a core. Results: images/s per
architecture, batch and runtime, and each export's speed-up over eager; ``ratio`` is the
geometric mean over architectures and batches of ONNX Runtime / eager (``torchscript_ratio``
the same for TorchScript). The issue sets no target: the figures are reported. The last line
is one JSON object.

    python benchmarks/inference.py [--models lenet5 alexnet] [--batch-sizes 1 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import onnxruntime
import torch
from _harness import interleaved, print_result, use_threads
from torch import nn

from lightning_cv.models import create_model, list_models
from lightning_cv.zoo import export_onnx, export_torchscript

__all__ = [
    "INPUT_SHAPES",
    "RUNTIMES",
    "geometric_mean",
    "images_per_second",
    "input_shape",
    "parse_args",
]

INPUT_SHAPES = {"alexnet": (3, 32, 32)}
"""(C, H, W) per architecture, where it differs from MNIST's (1, 28, 28)."""
RUNTIMES = ("eager", "torchscript", "onnxruntime")
SEED = 0

Runner = Callable[[torch.Tensor], torch.Tensor]


def input_shape(name: str) -> tuple[int, int, int]:
    """The ``(C, H, W)`` an architecture is benchmarked at: its zoo data set's image size.

    Example:
        >>> input_shape("lenet5"), input_shape("alexnet")
        ((1, 28, 28), (3, 32, 32))
    """
    return INPUT_SHAPES.get(name, (1, 28, 28))


def geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean: the average of ratios that neither side's scale dominates.

    Example:
        >>> round(geometric_mean([0.5, 2.0]), 6)
        1.0
    """
    return math.exp(statistics.fmean(math.log(value) for value in values))


def images_per_second(run: Runner, images: torch.Tensor, min_seconds: float) -> float:
    """Images per second of ``run(images)``: one untimed call, then calls for ``min_seconds``.

    Example:
        >>> images_per_second(torch.nn.Identity(), torch.zeros(8, 1, 2, 2), 0.01) > 0
        True
    """
    run(images)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds or calls == 0:
        run(images)
        calls += 1
    return calls * len(images) / elapsed


def build_runners(
    model: nn.Module, shape: tuple[int, int, int], folder: Path, threads: int
) -> dict[str, Runner]:
    """Eager, TorchScript and ONNX Runtime callables of ``model``, each (B, C, H, W) -> logits."""
    script_path = export_torchscript(model, folder / "model.pt", input_shape=shape)
    onnx_path = export_onnx(model, folder / "model.onnx", input_shape=shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
        scripted = torch.jit.load(str(script_path))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(
        str(onnx_path), options, providers=["CPUExecutionProvider"]
    )

    @torch.inference_mode()
    def eager(images: torch.Tensor) -> torch.Tensor:
        return model(images)

    @torch.inference_mode()
    def torchscript(images: torch.Tensor) -> torch.Tensor:
        return scripted(images)

    def onnx_runtime(images: torch.Tensor) -> torch.Tensor:
        (logits,) = session.run(["logits"], {"images": images.numpy()})
        return torch.from_numpy(logits)

    return {"eager": eager, "torchscript": torchscript, "onnxruntime": onnx_runtime}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list_models(), choices=list_models())
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 256])
    parser.add_argument("--seconds", type=float, default=0.5, help="timed calls per measure")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    use_threads(args.threads)
    print(f"random weights, eval mode, {args.threads} thread(s); images/s, median of "
          f"{args.repeats} repeats of >= {args.seconds} s")  # fmt: skip
    header = "".join(f"{runtime:>13}" for runtime in RUNTIMES)
    print(f"{'model':>8} {'input':>8} {'batch':>5}{header} {'ts/eager':>9} {'ort/eager':>9}")
    rows = []
    for name in args.models:
        shape = input_shape(name)
        torch.manual_seed(SEED)
        model = create_model(name, num_classes=10, in_channels=shape[0], image_size=shape[1:])
        model.eval()
        with tempfile.TemporaryDirectory() as folder:
            runners = build_runners(model, shape, Path(folder), args.threads)
            for batch in args.batch_sizes:
                images = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(SEED))
                expected = runners["eager"](images)
                for runtime in RUNTIMES[1:]:
                    got = runners[runtime](images)
                    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
                rates = {runtime: [] for runtime in RUNTIMES}
                for _, runtime in interleaved(RUNTIMES, args.repeats):
                    rate = images_per_second(runners[runtime], images, args.seconds)
                    rates[runtime].append(rate)
                row = {"model": name, "input": "x".join(map(str, shape)), "batch": batch}
                row |= {runtime: round(statistics.median(rates[runtime]), 1) for runtime in rates}
                row["torchscript_ratio"] = round(row["torchscript"] / row["eager"], 3)
                row["onnxruntime_ratio"] = round(row["onnxruntime"] / row["eager"], 3)
                rows.append(row)
                figures = "".join(f"{row[runtime]:>13.0f}" for runtime in RUNTIMES)
                print(
                    f"{name:>8} {row['input']:>8} {batch:>5}{figures} "
                    f"{row['torchscript_ratio']:>9.2f} {row['onnxruntime_ratio']:>9.2f}"
                )
    torchscript_ratio = geometric_mean([row["torchscript_ratio"] for row in rows])
    ratio = geometric_mean([row["onnxruntime_ratio"] for row in rows])
    print(f"geometric mean speed-up over eager: TorchScript {torchscript_ratio:.2f}x, "
          f"ONNX Runtime {ratio:.2f}x")  # fmt: skip
    figures = {
        "models": args.models,
        "batch_sizes": args.batch_sizes,
        "rows": rows,
        "torchscript_ratio": round(torchscript_ratio, 4),
        "ratio": round(ratio, 4),
        "repeats": args.repeats,
        "torch_threads": args.threads,
        "onnxruntime": onnxruntime.__version__,
        "device": "cpu",
    }
    print_result("inference", figures)


if __name__ == "__main__":
    main()
