"""Run every benchmark and rewrite ``benchmarks/RESULTS.md`` with the machine, the date and the
figures.

Each script runs as a subprocess of this Python (``sys.executable``) from the repository root;
its output is echoed as it comes and its last line, one JSON object, is its result. The
results file gets, between two markers, a description of the machine (CPU, cores, memory,
GPU, library versions, load average), the date, a summary table with each ratio, its target
and ``pass`` or ``miss``, and a section per benchmark with its figures, the exact command and
everything it printed. Whatever lies outside the markers (figures from other devices, e.g. a
``## GPU`` section a person added) is kept; a previous file without markers is kept whole
below the new block. The exit code is 1 when a benchmark failed.

    python benchmarks/run_all.py [--quick] [--output benchmarks/RESULTS.md]

``--quick`` passes tiny sizes to every script (synthetic arrays for the data-loading one): it
checks that the pipeline works in about a minute; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import operator
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BEGIN",
    "BENCHMARKS",
    "END",
    "Benchmark",
    "Outcome",
    "Target",
    "check_target",
    "last_json",
    "machine_info",
    "merge_results",
    "parse_args",
    "render_results",
    "run_benchmark",
]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BEGIN = "<!-- benchmarks/run_all.py: generated from here -->"
END = "<!-- benchmarks/run_all.py: generated up to here; text below is kept -->"
_COMPARE = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Target:
    """A goal on one figure of a benchmark's JSON result, e.g. ``ratio >= 0.95``.

    Attributes:
        key: the figure's key in the result.
        op: ``">="`` or ``"<="``.
        value: the bound.
        meaning: what meeting it says, in words.
    """

    key: str
    op: str
    value: float
    meaning: str

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Benchmark:
    """A benchmark script, its arguments (full and ``--quick``) and its targets.

    Attributes:
        name: the ``benchmark`` value its JSON result carries.
        title: the section heading.
        script: the script's path.
        measures: one sentence: what is compared with what.
        args: the arguments of the full run.
        quick_args: tiny sizes for ``--quick``.
        targets: the goals, empty when the issue sets none.
    """

    name: str
    title: str
    script: Path
    measures: str
    args: str = ""
    quick_args: str = ""
    targets: tuple[Target, ...] = ()

    def command(self, quick: bool = False) -> list[str]:
        """The command line, with this Python."""
        return [
            sys.executable,
            str(self.script),
            *shlex.split(self.quick_args if quick else self.args),
        ]


@dataclass
class Outcome:
    """What one run of a benchmark gave.

    Attributes:
        benchmark: the benchmark.
        command: the command line, as shown in the results (repository-relative paths).
        result: the last line's JSON object, or None when the script failed.
        output: what it printed on stdout, the JSON line excluded.
        error: stderr's last lines when it failed, else empty.
        load_before: the 1-minute load average when it started.
        load_after: the same when it ended.
        seconds: how long it ran.
    """

    benchmark: Benchmark
    command: str
    result: dict | None
    output: str
    error: str = ""
    load_before: float = 0.0
    load_after: float = 0.0
    seconds: float = 0.0


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "overhead",
        "Trainer overhead",
        HERE / "overhead.py",
        "images/s of LeNet-5 training under the Lightning Trainer vs a plain PyTorch loop",
        quick_args="--repeats 1 --batches 4",
        targets=(
            Target("ratio", ">=", 0.95, "ours within 5% of the plain loop"),
            Target("ours_vs_lightning", ">=", 0.98, "ours within 2% of a bare LightningModule"),
        ),
    ),
    Benchmark(
        "time_to_accuracy",
        "Time to accuracy",
        HERE / "time_to_accuracy.py",
        "images/s and seconds of training to 99.0% MNIST test accuracy, "
        "recipes/mnist_lenet5_fast.yaml through lightning-cv fit as documented and a stripped "
        "Trainer vs a hand-written loop over one in-memory tensor (same model, optimizer, "
        "schedule, batches), apart and in lockstep",
        quick_args="--train-limit 256 --test-limit 128 --max-epochs 1 --target 0",
        targets=(
            Target("throughput_ratio", ">=", 0.9, "documented fit / plain images/s (aim 1.0)"),
            Target("ratio", ">=", 0.9, "plain / documented fit seconds to 99% (aim 1.0)"),
            Target("lockstep_ratio", ">=", 0.9, "the same, the two in lockstep (aim 1.0)"),
        ),
    ),
    Benchmark(
        "dataloading",
        "Data loading",
        HERE / "dataloading.py",
        "train-loader images/s (loader + augmentation, 1 thread): the batch path's CIFAR and "
        "digits presets vs the albumentations per-sample path, and albumentations vs "
        "torchvision transforms v2",
        # a --root that does not exist: random arrays instead of decoding 50,000 JPEG files
        quick_args="--batches 2 --batch-size 32 --repeats 1 --root none",
        targets=(
            Target("ratio", ">=", 3.0, "batch path at least 3x albumentations (CIFAR preset)"),
            Target("digits_ratio", ">=", 3.0, "the same with the digits preset"),
            Target("albumentations_vs_torchvision", ">=", 1.5, "albumentations 1.5x torchvision"),
        ),
    ),
    Benchmark(
        "inference",
        "Inference",
        HERE / "inference.py",
        "images/s of every zoo architecture at batch 1 and 256: eager PyTorch, TorchScript, "
        "ONNX Runtime; ratio: geometric mean of ONNX Runtime / eager",
        quick_args="--models lenet5 --batch-sizes 1 4 --seconds 0.02 --repeats 1",
    ),
    Benchmark(
        "scaling",
        "Scaling with the training-set size",
        HERE / "scaling.py",
        "training images/s and seconds per epoch on 1/8, 1/4, 1/2 and all of MNIST",
        quick_args="--limit 512 --doublings 1 --repeats 1",
        targets=(Target("ratio", ">=", 0.9, "linear cost: images/s flat from 1/8 to all"),),
    ),
    Benchmark(
        "startup",
        "Start-up",
        HERE / "startup.py",
        "wall seconds of `lightning-cv --help`, `zoo list` and `recipes`, each in a fresh "
        'process, vs `python -c "import torch"`; ratio: the slowest / import torch',
        quick_args="--repeats 1",
        targets=(
            Target("worst_excess_seconds", "<=", 1.0, "every command within +1 s of import torch"),
            Target("lightning_imports", "<=", 0, "no command imports lightning.pytorch"),
        ),
    ),
    Benchmark(
        "precision",
        "Precision, memory format, compile and EMA",
        HERE / "precision.py",
        "training and prediction images/s of lenet5 and alexnet (3x32x32) through the Trainer "
        "with bf16-mixed, ChannelsLast, CompileBackbone or EMAWeightAveraging vs the same "
        "setup without it; ratio: geometric mean of option / base",
        quick_args="--models linear --batch-size 8 --steps 1 --warmup 1 --repeats 1",
    ),
    Benchmark(
        "imbalance",
        "Class imbalance",
        HERE / "imbalance.py",
        "macro F1 on the MNIST test split after training on digits 0-4 cut to 10%: uniform "
        "sampling vs the balanced sampler vs the class-weighted loss (reported)",
        quick_args="--epochs 1",
    ),
    Benchmark(
        "tta",
        "Test-time augmentation",
        HERE / "tta.py",
        "CIFAR-10 test top-1 of lenet5.cifar10 and alexnet.cifar10, plain vs flip vs flip and "
        "2-pixel shifts averaged (reported)",
        quick_args="--entries lenet5.cifar10",
    ),
    Benchmark(
        "finetune",
        "Fine-tuning",
        HERE / "finetune.py",
        "test top-1 on 3 CIFAR-10 classes x 100 training images: alexnet.cifar10 fine-tuned, "
        "head only, and from scratch (reported)",
        quick_args="--train 5 --epochs 1",
    ),
)


def check_target(target: Target, result: dict | None) -> str:
    """``"pass"`` when ``result`` meets ``target``, else ``"miss"`` (a missing figure misses).

    Example:
        >>> check_target(Target("ratio", ">=", 0.95, ""), {"ratio": 0.97})
        'pass'
    """
    value = None if result is None else result.get(target.key)
    if value is None:
        return "miss"
    return "pass" if _COMPARE[target.op](value, target.value) else "miss"


def last_json(output: str) -> dict | None:
    """The JSON object on the last non-empty line of ``output``, or None if there is none.

    Example:
        >>> last_json('figures\\n{"ratio": 1.02}\\n')
        {'ratio': 1.02}
    """
    lines = output.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None
    return result if isinstance(result, dict) else None


def machine_info() -> dict[str, str]:
    """The machine and software the figures were measured on, as ``{what: description}``."""
    cpu = platform.processor() or platform.machine()
    cpuinfo, meminfo = Path("/proc/cpuinfo"), Path("/proc/meminfo")
    if cpuinfo.is_file():
        names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    memory = "unknown"
    if meminfo.is_file():
        total = next(line for line in meminfo.read_text().splitlines() if "MemTotal" in line)
        memory = f"{int(total.split()[1]) / 2**20:.1f} GiB"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch  # here: the results file needs it, the argument parsing does not

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    versions = ", ".join(
        [f"torch {torch.__version__}"]  # with its build tag, e.g. +cpu or +cu126
        + [
            f"{name} {importlib.metadata.version(name)}"
            for name in ("lightning", "torchmetrics", "albumentations", "onnxruntime")
        ]
    )
    return {
        "CPU": cpu,
        "cores": f"{os.cpu_count()} ({usable} usable by this process)",
        "memory": memory,
        "GPU": gpu,
        "system": f"{platform.platform()}, Python {platform.python_version()}",
        "libraries": versions,
    }


def run_benchmark(benchmark: Benchmark, quick: bool = False) -> Outcome:
    """Run one benchmark script from the repository root, echoing its output as it comes.

    Args:
        benchmark: what to run.
        quick: pass its tiny ``quick_args`` instead of ``args``.

    Returns:
        The :class:`Outcome`; ``result`` is None when the script exits non-zero or its last
        line is not a JSON object.
    """
    command = benchmark.command(quick)
    shown = shlex.join([_relative(command[0]), _relative(command[1]), *command[2:]])
    print(f"$ {shown}", flush=True)
    env = {"NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline", **os.environ}
    env["PYTHONUNBUFFERED"] = "1"  # lines as they come, not when the pipe's buffer fills
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    lines = []
    with tempfile.TemporaryFile("w+") as stderr:
        with subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        ) as process:
            for line in process.stdout:
                print(line, end="", flush=True)
                lines.append(line)
        stderr.seek(0)
        error_lines = stderr.read().splitlines()
    stdout = "".join(lines)
    result = last_json(stdout) if process.returncode == 0 else None
    output = stdout.strip().splitlines()
    outcome = Outcome(
        benchmark,
        shown,
        result,
        "\n".join(output[:-1] if result is not None else output),
        load_before=load_before,
        load_after=os.getloadavg()[0],
        seconds=time.perf_counter() - start,
    )
    if result is None:
        problem = "no JSON object on its last line" if process.returncode == 0 else "failed"
        ending = "\n".join(error_lines[-30:])
        outcome.error = f"exit code {process.returncode}, {problem}; stderr ends with:\n{ending}"
        print(outcome.error, file=sys.stderr)
    return outcome


def _relative(path: str) -> str:
    """``path`` relative to the repository when inside it, so the command can be pasted."""
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return path


def _figures_table(result: dict) -> list[str]:
    """The JSON result as Markdown: one table of its figures, one more per list of rows."""
    tables = {
        key: value
        for key, value in result.items()
        if isinstance(value, list) and value and all(isinstance(row, dict) for row in value)
    }
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in result.items() if key not in tables]
    for key, rows in tables.items():
        columns = list(rows[0])
        lines += ["", f"{key}:", "", "| " + " | ".join(columns) + " |"]
        lines.append("|" + " --- |" * len(columns))
        lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def _cell(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return "n/a" if value is None else str(value)


def render_results(outcomes: list[Outcome], machine: dict[str, str], date: str) -> str:
    """The generated block of RESULTS.md, markers included.

    Args:
        outcomes: one per benchmark run.
        machine: :func:`machine_info`'s description.
        date: when the benchmarks ran.

    Returns:
        Markdown from :data:`BEGIN` to :data:`END`.

    Example:
        >>> render_results([], {"CPU": "x"}, "2025-01-01 12:00 UTC").splitlines()[0] == BEGIN
        True
    """
    lines = [BEGIN, "# Benchmark results", ""]
    lines += [
        f"Measured on {date} by `python benchmarks/run_all.py` (`make bench`); every comparison "
        "is a ratio of two runs side by side in one process, repeats interleaved. What each "
        "script measures: [README.md](README.md).",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    lines += [f"| {what} | {description} |" for what, description in machine.items()]
    lines += ["", "## Summary", "", "| benchmark | ratio | target | result |"]
    lines.append("| --- | --- | --- | --- |")
    for outcome in outcomes:
        ratio = _cell(outcome.result.get("ratio")) if outcome.result else "failed"
        targets = outcome.benchmark.targets
        verdicts = [f"{t}: {check_target(t, outcome.result)}" for t in targets]
        target_text = "; ".join(str(t) for t in targets) or "none set (reported)"
        lines.append(
            f"| {outcome.benchmark.title} | {ratio} | {target_text} | "
            f"{'; '.join(verdicts) or 'n/a'} |"
        )
    for outcome in outcomes:
        lines += _section(outcome)
    lines += ["", END]
    return "\n".join(lines) + "\n"


def _section(outcome: Outcome) -> list[str]:
    benchmark = outcome.benchmark
    lines = ["", f"## {benchmark.title}", "", f"{benchmark.measures}.", ""]
    lines += [f"Command: `{outcome.command}`", ""]
    lines += [
        f"Ran {outcome.seconds:.0f} s; load average (1 min) {outcome.load_before:.2f} at the "
        f"start, {outcome.load_after:.2f} at the end.",
        "",
    ]
    for target in benchmark.targets:
        verdict = check_target(target, outcome.result)
        lines.append(f"- target `{target}` ({target.meaning}): **{verdict}**")
    if not benchmark.targets:
        lines.append("- no target: the issue asks for the figures")
    lines.append("")
    if outcome.result is None:
        lines += ["**Failed**:", "", "```", outcome.error, "```"]
    else:
        lines += _figures_table(outcome.result)
    if outcome.output:
        lines += ["", "Output:", "", "```", outcome.output, "```"]
    return lines


def merge_results(previous: str | None, generated: str) -> str:
    """Put the ``generated`` block into the previous RESULTS.md, keeping what lies outside it.

    Args:
        previous: the file's text, or None when there is none.
        generated: :func:`render_results`' block.

    Returns:
        The new text: the old block replaced; a previous file without markers follows the
        new block whole.

    Example:
        >>> old = f"intro\\n{BEGIN}\\nold figures\\n{END}\\n## GPU\\nkept\\n"
        >>> new = merge_results(old, f"{BEGIN}\\nnew figures\\n{END}\\n")
        >>> new.startswith("intro"), "old figures" in new, new.endswith("## GPU\\nkept\\n")
        (True, False, True)
    """
    if not previous:
        return generated
    if BEGIN in previous and END in previous:
        head, _, rest = previous.partition(BEGIN)
        _, _, tail = rest.partition(END)
        return head + generated.rstrip("\n") + tail
    return generated + "\n" + previous


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the pipeline")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    outcomes = [run_benchmark(benchmark, args.quick) for benchmark in BENCHMARKS]
    generated = render_results(outcomes, machine_info(), date + (" (--quick)" * args.quick))
    previous = args.output.read_text() if args.output.is_file() else None
    args.output.write_text(merge_results(previous, generated))
    failed = [outcome.benchmark.name for outcome in outcomes if outcome.result is None]
    print(f"wrote {args.output}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
