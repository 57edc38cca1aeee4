"""What a classifier's evaluation measures over an epoch of class scores: the torchmetrics it
logs, and the first batch whose scores are not finite."""

from __future__ import annotations

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from lightning_cv.errors import NonFiniteLossError

__all__ = ["NonFiniteScores", "eval_metrics"]


def eval_metrics(num_classes: int) -> MetricCollection:
    """Top-1 (and top-5 beyond five classes) accuracy and macro precision, recall and F1, as
    the task logs them under ``val/`` and ``test/`` (and test-time augmentation under
    ``test/..._tta``): ``acc``, ``acc_top5``, ``precision``, ``recall``, ``f1``.

    Example:
        >>> sorted(eval_metrics(10).keys())
        ['acc', 'acc_top5', 'f1', 'precision', 'recall']
    """
    metrics = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "precision": MulticlassPrecision(num_classes, average="macro"),
        "recall": MulticlassRecall(num_classes, average="macro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
    }
    if num_classes > 5:
        metrics["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    # explicit groups: torchmetrics' automatic grouping merges metrics whose states are equal
    # after the first update, which ties F1 to top-5 when the first batch is all correct
    groups = [["acc"], ["precision", "recall", "f1"], *([["acc_top5"]] if num_classes > 5 else [])]
    return MetricCollection(metrics, compute_groups=groups)


class NonFiniteScores:
    """The first evaluation batch of an epoch whose scores hold NaN or inf.

    Kept as a device tensor (-1: none yet) and read once, by :meth:`check` at the epoch's end:
    a check per batch would sync a GPU every step.

    Example:
        >>> watch = NonFiniteScores()
        >>> watch.update(torch.zeros(2, 3)); watch.check("val")
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.first: torch.Tensor | None = None
        self.batches = 0

    def update(self, scores: torch.Tensor) -> None:
        """Note whether this batch's scores are the first non-finite ones (no sync)."""
        if self.first is None:
            self.first = torch.full((), -1, device=scores.device)
        bad = ~torch.isfinite(scores).all() & (self.first < 0)
        self.first = torch.where(bad, self.batches, self.first)
        self.batches += 1

    def check(self, stage: str) -> None:
        """Forget the epoch; raise if it held NaN or inf scores.

        Raises:
            NonFiniteLossError: naming the ``stage`` (``val`` or ``test``) and the first batch.
        """
        first = self.first
        self.reset()
        if first is not None and int(first) >= 0:
            split = {"val": "validation", "test": "test"}[stage]
            raise NonFiniteLossError(
                f"{split} stopped: the model's scores are NaN or infinite from {split} batch "
                f"{int(first)} on; the input images or the weights hold NaN/inf (check the "
                "data's mean and std, and the checkpoint)"
            )
