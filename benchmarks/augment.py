"""Modern augmentation on ``cifar10_lenet5``: test top-1 as documented and with each option.

Runs ``lightning-cv fit --config cifar10_lenet5`` on the CIFAR-10 JPEG folders once per variant,
each a fresh process with the recipe's seed: the recipe as it is (the ``cifar`` preset), the
``randaugment`` and ``trivialaugment`` presets, and the recipe plus MixUp (alpha 0.2) or CutMix
(alpha 1.0). ``--epochs`` shortens the schedule (the same for every variant; the one-cycle
schedule follows it), since the full 30 epochs take 5 to 10 minutes per variant on 2 cores.

The last line is ``{"benchmark": "augment", "epochs": N, "<variant>": {"acc": %, "seconds": s}}``.
Example: ``nice python benchmarks/augment.py --epochs 8`` (about 8 minutes per variant there).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time

from _harness import DEFAULT_ROOT, REPO, print_result

_TRANSFORM = "--data.init_args.train_transform"
_CALLBACKS = "--trainer.callbacks+=lightning_cv.callbacks."
VARIANTS = {
    "recipe": [],
    "randaugment": [_TRANSFORM, "randaugment"],
    "trivialaugment": [_TRANSFORM, "trivialaugment"],
    "mixup": [f"{_CALLBACKS}MixUp", "--trainer.callbacks.alpha", "0.2"],
    "cutmix": [f"{_CALLBACKS}CutMix", "--trainer.callbacks.alpha", "1.0"],
}


def command(variant: str, epochs: int, runs: str) -> list[str]:
    """The documented ``lightning-cv fit`` command of ``variant``, run by this Python."""
    return [
        sys.executable, "-m", "lightning_cv", "fit", "--config", "cifar10_lenet5",
        "--data.init_args.root", str(DEFAULT_ROOT), "--trainer.max_epochs", str(epochs),
        "--trainer.logger.init_args.save_dir", runs, "--trainer.enable_progress_bar", "false",
        *VARIANTS[variant],
    ]  # fmt: skip


def measure(variant: str, epochs: int) -> dict[str, float]:
    """Test top-1 (percent) and wall seconds of one run of ``variant``."""
    with tempfile.TemporaryDirectory() as runs:
        start = time.perf_counter()
        done = subprocess.run(
            command(variant, epochs, runs), cwd=REPO, capture_output=True, text=True, check=False
        )
        seconds = time.perf_counter() - start
    found = re.search(r"test top-1 accuracy: ([\d.]+)%", done.stdout)
    if done.returncode or not found:
        sys.exit(f"{variant} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return {"acc": float(found[1]), "seconds": round(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="the recipe's is 30")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    figures = {}
    for variant in args.variants:
        figures[variant] = measure(variant, args.epochs)
        print(variant, figures[variant], flush=True)
    print_result("augment", {"epochs": args.epochs, **figures})


if __name__ == "__main__":
    main()
