"""PredictionWriter: ``Trainer.predict`` results as one CSV file of top-k classes per image."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lightning_cv._io import atomic_write
from lightning_cv.errors import ConfigError

__all__ = ["PredictionWriter", "prediction_rows"]


def prediction_rows(
    probs: torch.Tensor,
    class_names: Sequence[str],
    *,
    top_k: int,
    paths: Sequence[str | Path] | None = None,
    labels: Sequence[int] | None = None,
) -> list[dict[str, str]]:
    """One CSV row per image: ``path`` (with ``paths``), ``label`` (the true class, with
    ``labels``), then ``class_1``, ``prob_1`` ... ``class_k``, ``prob_k``, most probable first.

    Example:
        >>> prediction_rows(torch.tensor([[0.1, 0.9]]), ["cat", "dog"], top_k=1, paths=["a.png"])
        [{'path': 'a.png', 'class_1': 'dog', 'prob_1': '0.900000'}]
    """
    values, indices = probs.float().topk(min(top_k, len(class_names)), dim=1)
    rows = []
    for row, (scores, classes) in enumerate(zip(values.tolist(), indices.tolist(), strict=True)):
        record = {} if paths is None else {"path": str(paths[row])}
        if labels is not None:
            record["label"] = class_names[int(labels[row])]
        for rank, (score, index) in enumerate(zip(scores, classes, strict=True), start=1):
            record[f"class_{rank}"] = class_names[index]
            record[f"prob_{rank}"] = f"{score:.6f}"
        rows.append(record)
    return rows


class PredictionWriter(BasePredictionWriter):
    """Write the top-k classes of every predicted image to a CSV file, once, at the end.

    ``predict_step`` returns a dict with ``probs`` (B, num_classes), as
    :meth:`~lightning_cv.task.ClassificationTask.predict_step` does; ``paths`` and
    ``labels`` come from that dict when it has them, else from this writer's arguments,
    indexed by the batch indices Lightning records.

    Args:
        output: the CSV file (written atomically); one that this writer did not write itself is
            never replaced (ConfigError at the end of the epoch).
        class_names: one name per class index.
        top_k: how many classes per image (at most ``len(class_names)``).
        paths: the file of each predicted sample, in the data set's order.
        labels: the true class index of each sample (e.g. from class sub-folders).

    Raises:
        ConfigError: ``top_k`` below 1, or ``labels`` and ``paths`` of other lengths; at the
            end of the epoch, an ``output`` that exists and was not written by this writer.

    Example:
        >>> writer = PredictionWriter("predictions.csv", ["cat", "dog"], top_k=1)
        >>> trainer = L.Trainer(callbacks=[writer])  # doctest: +SKIP
        >>> trainer.predict(model, dataloaders=loader, return_predictions=False)  # doctest: +SKIP
    """

    def __init__(
        self,
        output: str | Path,
        class_names: Sequence[str],
        *,
        top_k: int = 5,
        paths: Sequence[str | Path] | None = None,
        labels: Sequence[int] | None = None,
    ) -> None:
        super().__init__(write_interval="epoch")
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        if paths is not None and labels is not None and len(paths) != len(labels):
            raise ConfigError(f"{len(labels)} labels for {len(paths)} paths")
        self.output = Path(output)
        self.class_names = list(class_names)
        self.top_k = top_k
        self.paths, self.labels = paths, labels
        self.rows: list[dict[str, str]] = []
        self._written: set[Path] = set()  # the files this writer may replace

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        batches = predictions[0] if len(batch_indices) > 1 else predictions  # the first loader
        indices = batch_indices[0] if batch_indices else []
        self.rows, start = [], 0
        for number, batch in enumerate(batches):
            size = len(batch["probs"])
            recorded = indices[number] if number < len(indices) else None
            self.rows += self._rows(batch, list(recorded or range(start, start + size)))
            start += size
        ours = self.output in self._written
        with (
            atomic_write(self.output, replace=ours) as staging,
            open(staging, "w", newline="") as file,
        ):
            writer = csv.DictWriter(file, fieldnames=list(self.rows[0]) if self.rows else [])
            writer.writeheader()
            writer.writerows(self.rows)
        self._written.add(self.output)

    def _rows(self, batch: dict[str, Any], order: list[int]) -> list[dict[str, str]]:
        """The rows of one batch; ``order``: its samples' indices in the data set."""
        paths = batch.get("paths")
        if paths is None and self.paths is not None:
            paths = [self.paths[i] for i in order]
        labels = batch.get("labels")
        if labels is None and self.labels is not None:
            labels = [self.labels[i] for i in order]
        return prediction_rows(
            batch["probs"], self.class_names, top_k=self.top_k, paths=paths, labels=labels
        )
