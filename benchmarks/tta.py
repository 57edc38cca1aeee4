"""Test-time augmentation on zoo entries: test/acc against test/acc_tta on CIFAR-10's test split.

For each entry, two ``Trainer.test`` runs with :class:`TestTimeAugmentation`: ``flip`` (the
plain view and its mirror) and ``flip + shifts 2`` (also four 2-pixel translations, reflect
padding). bf16 mixed precision, as ``alexnet.cifar10`` was trained.

The last line is ``{"benchmark": "tta", "<entry>": {"acc": %, "flip": %, "flip_shift2": %}}``.
Example: ``nice python benchmarks/tta.py`` (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse

import lightning.pytorch as L
from _harness import DEFAULT_ROOT, print_result, quiet_lightning, use_threads

from lightning_cv import ImageClassifier
from lightning_cv.callbacks.tta import TestTimeAugmentation
from lightning_cv.data import CIFAR10DataModule
from lightning_cv.zoo import checkpoint_file

VARIANTS = {"flip": {"flip": True}, "flip_shift2": {"flip": True, "shifts": 2}}


def measure(name: str, batch_size: int) -> dict[str, float]:
    """Plain and TTA top-1 (percent) of zoo entry ``name`` on CIFAR-10's test split."""
    model = ImageClassifier.load_from_checkpoint(checkpoint_file(name), weights_only=True)
    data = CIFAR10DataModule(root=DEFAULT_ROOT, batch_size=batch_size)
    figures = {}
    for variant, options in VARIANTS.items():
        trainer = L.Trainer(
            accelerator="cpu",
            precision="bf16-mixed",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[TestTimeAugmentation(**options)],
        )
        scores = trainer.test(model, datamodule=data, verbose=False)[0]
        figures["acc"] = round(100 * scores["test/acc"], 2)
        figures[variant] = round(100 * scores["test/acc_tta"], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", nargs="+", default=["lenet5.cifar10", "alexnet.cifar10"])
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    quiet_lightning()
    use_threads(args.threads)
    print_result("tta", {name: measure(name, args.batch_size) for name in args.entries})


if __name__ == "__main__":
    main()
