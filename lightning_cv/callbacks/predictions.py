"""PredictionWriter: ``Trainer.predict`` results as one CSV file of top-k classes per image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import BasePredictionWriter

from lightning_cv.errors import ConfigError
from lightning_cv.predictions import prediction_rows, write_rows

__all__ = ["PredictionWriter", "prediction_rows"]


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
        write_rows(self.output, self.rows, replace=self.output in self._written)
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
