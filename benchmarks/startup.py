"""Start-up: wall time of ``lightning-cv`` commands that need no Trainer vs ``import torch``.

Each command runs in a fresh subprocess of this Python, in a temporary folder that holds
``one.png`` (a 28x28 grey digit): ``lightning-cv --help``, ``lightning-cv zoo list``,
``lightning-cv recipes`` and ``lightning-cv zoo predict lenet5.mnist one.png`` (a new
``--output`` file each run; issue 22: it loads and predicts in plain torch), each the console
script next to this Python (``python .../lightning-cv ARGS``; ``python -m lightning_cv``
where there is none), and the baseline ``python -c "import torch"``: what any command that
touches a model pays at least, so the difference is what lightning-cv adds to it. One untimed run of
each, under ``python -X importtime``, warms the file cache, tells whether the command imports
``lightning.pytorch`` and finds commands that fail: those are skipped with a printed note
(``recipes`` may not exist yet). Then ``--repeats`` timed rounds; who goes first rotates,
and the median is kept.

Target: each command within +1 s of the baseline, and none imports ``lightning.pytorch``
(issue 14: commands that need no Trainer must not). ``ratio`` = the slowest command's seconds
/ the baseline's (reported); ``worst_excess_seconds`` the largest difference. The last line
is one JSON object.

    python benchmarks/startup.py [--repeats 5] [--only help zoo-list recipes zoo-predict]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _harness import interleaved, print_result
from PIL import Image

__all__ = ["BASELINE", "COMMANDS", "WITHIN_SECONDS", "imported_modules", "parse_args", "summarize"]

BASELINE = "import torch"
COMMANDS = {
    "help": ["--help"],
    "zoo-list": ["zoo", "list"],
    "recipes": ["recipes"],
    "zoo-predict": ["zoo", "predict", "lenet5.mnist", "one.png", "--output", "{run}.csv"],
}
"""Short name -> ``lightning-cv`` arguments; ``{run}`` becomes a number new to each run."""
WITHIN_SECONDS = 1.0
"""How much slower than ``import torch`` a command may start."""


def imported_modules(importtime: str) -> set[str]:
    """The modules named in ``python -X importtime``'s report (its stderr).

    Example:
        >>> report = "import time: self [us] | cumulative | imported package\\n"
        >>> report += "import time:       120 |        150 |   lightning.pytorch\\n"
        >>> sorted(imported_modules(report))
        ['lightning.pytorch']
    """
    names = set()
    for line in importtime.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


RUNS = itertools.count()  # numbers each run's files, so no run finds an earlier one's output


def command_line(name: str) -> list[str]:
    """The argv that runs ``name`` (a :data:`COMMANDS` key, or ``torch`` for the baseline),
    with ``{run}`` replaced by the next number of :data:`RUNS`."""
    if name == "torch":
        return [sys.executable, "-c", BASELINE]
    script = Path(sys.executable).parent / "lightning-cv"
    entry = [str(script)] if script.is_file() else ["-m", "lightning_cv"]
    run = next(RUNS)
    return [sys.executable, *entry, *(arg.format(run=run) for arg in COMMANDS[name])]


def write_image(folder: Path) -> None:
    """``one.png`` in ``folder``: a 28x28 grey image of a vertical stroke (a 1)."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 13:16] = 255
    Image.fromarray(pixels).save(folder / "one.png")


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {"NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "offline", **os.environ}
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, cwd=cwd)


def warm_up(names: list[str], cwd: Path | None = None) -> dict[str, bool]:
    """Run each command once under ``-X importtime`` in ``cwd``; ``{name: imports
    lightning.pytorch}`` for those that succeed, a printed note for each that fails."""
    imports = {}
    for name in names:
        argv = command_line(name)
        done = _run([argv[0], "-X", "importtime", *argv[1:]], cwd)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"skipped {name}: exit code {done.returncode} ({last})")
            continue
        imports[name] = "lightning.pytorch" in imported_modules(done.stderr)
    return imports


def summarize(seconds: dict[str, list[float]], imports: dict[str, bool]) -> list[dict]:
    """One row per command (the baseline ``torch`` excluded): median seconds, the difference
    to the baseline's median, whether it is within :data:`WITHIN_SECONDS`, and whether it
    imports ``lightning.pytorch``.

    Example:
        >>> row = summarize({"torch": [2.0, 2.2, 2.1], "help": [2.5, 3.4, 2.6]}, {"help": False})
        >>> row == [{"command": "help", "seconds": 2.6, "minus_torch": 0.5, "within": True,
        ...     "lightning": False}]
        True
    """
    torch_seconds = statistics.median(seconds["torch"])
    rows = []
    for name, values in seconds.items():
        if name == "torch":
            continue
        median = statistics.median(values)
        excess = round(median - torch_seconds, 3)
        rows.append(
            {
                "command": name,
                "seconds": round(median, 3),
                "minus_torch": excess,
                "within": excess <= WITHIN_SECONDS,
                "lightning": imports[name],
            }
        )
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (``sys.argv`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="+", choices=list(COMMANDS), default=list(COMMANDS))
    return parser.parse_args(argv)


def time_commands(names: list[str], repeats: int, cwd: Path) -> dict[str, list[float]]:
    """Seconds of each command per repeat, who goes first rotating (:func:`interleaved`)."""
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for repeat, name in interleaved(names, repeats):
        argv = command_line(name)
        start = time.perf_counter()
        _run(argv, cwd)
        seconds[name].append(time.perf_counter() - start)
        print(f"repeat {repeat}: {name:>11} {seconds[name][-1]:6.2f} s")
    return seconds


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        write_image(Path(folder))
        imports = warm_up(["torch", *args.only], Path(folder))
        if "torch" not in imports:
            sys.exit(f"the baseline failed: {command_line('torch')}")
        seconds = time_commands(list(imports), args.repeats, Path(folder))
    rows = summarize(seconds, imports)
    torch_seconds = statistics.median(seconds["torch"])
    print(f"{'command':>50} {'seconds':>8} {'- torch':>8} {'+1 s':>5} lightning.pytorch")
    print(f"{BASELINE:>50} {torch_seconds:>8.2f}")
    for row in rows:
        shown = " ".join(["lightning-cv", *COMMANDS[row["command"]]]).replace("{run}", "N")
        within = "yes" if row["within"] else "no"
        imported = "imported" if row["lightning"] else "not imported"
        print(
            f"{shown:>50} {row['seconds']:>8.2f} {row['minus_torch']:>+8.2f} {within:>5} {imported}"
        )
    figures = {
        "torch_seconds": round(torch_seconds, 3),
        "rows": rows,
        "skipped": [name for name in args.only if name not in imports],
        "ratio": round(max(row["seconds"] for row in rows) / torch_seconds, 3) if rows else None,
        "worst_excess_seconds": max((row["minus_torch"] for row in rows), default=None),
        "lightning_imports": sum(row["lightning"] for row in rows),
        "repeats": args.repeats,
    }
    print_result("startup", figures)


if __name__ == "__main__":
    main()
