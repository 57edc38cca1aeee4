"""k-nearest-neighbour baseline: "training" memorises the training set; testing votes.

The data-driven approach of the lectures in its plainest form (CS231n reports about 38.6%
(L1) and 35.4% (L2) test accuracy for 1-NN on CIFAR-10). It runs through the same Trainer,
CLI, metrics and callbacks as :class:`~lightning_cv.ImageClassifier`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_cv.errors import check_choice, check_range
from lightning_cv.task import ClassificationTask

__all__ = ["KNNClassifier", "knn_votes"]

# Lightning warns that a fit without an optimizer is unusual; for k-NN it is the point
warnings.filterwarnings(
    "ignore", message=r"`LightningModule.configure_optimizers` returned `None`", module="lightning"
)

DISTANCES = {"l1": 1.0, "l2": 2.0}


def knn_votes(
    queries: torch.Tensor,
    memory: torch.Tensor,
    memory_labels: torch.Tensor,
    *,
    k: int,
    p: float,
    num_classes: int,
    chunk_size: int = 4096,
) -> torch.Tensor:
    """Share of the ``k`` nearest stored samples in each class, (Q, num_classes).

    Distances are computed with ``torch.cdist`` one chunk of the memory at a time, keeping a
    running top-k, so memory stays at ``Q x chunk_size`` distances whatever the memory size.
    Ties in the vote go to the lower class index.

    Example:
        >>> memory = torch.tensor([[0.0], [1.0], [10.0]])
        >>> knn_votes(torch.tensor([[0.2]]), memory, torch.tensor([0, 0, 1]), k=1, p=2.0,
        ...           num_classes=2)
        tensor([[1., 0.]])
    """
    best_distances = queries.new_full((len(queries), 0), float("inf"))
    best_labels = memory_labels.new_empty((len(queries), 0))
    for start in range(0, len(memory), chunk_size):
        distances = torch.cdist(queries, memory[start : start + chunk_size], p=p)  # (Q, chunk)
        labels = memory_labels[start : start + chunk_size].expand(len(queries), -1)
        candidates = torch.cat([best_distances, distances], dim=1)
        nearest = candidates.topk(min(k, candidates.shape[1]), dim=1, largest=False)
        best_distances = nearest.values
        best_labels = torch.cat([best_labels, labels], dim=1).gather(1, nearest.indices)
    votes = torch.nn.functional.one_hot(best_labels, num_classes).sum(dim=1)  # (Q, num_classes)
    return votes.float() / best_labels.shape[1]


class KNNClassifier(ClassificationTask):
    """k-nearest neighbours on pixels, as a LightningModule.

    Fitting (one epoch, no gradients) stores the training images as flat feature vectors on
    the module's device; validation and test predict by majority vote among the ``k``
    nearest under L1 or L2 distance. Use the data's eval transform for training
    (``train_transform: eval``): augmenting a memory makes little sense.

    Args:
        k: number of neighbours that vote.
        distance: ``"l1"`` (sum of absolute differences) or ``"l2"`` (Euclidean).
        num_classes: number of classes (linked from the data module by the CLI).
        in_channels: image channels (linked from the data module by the CLI).
        image_size: image side or (height, width) (linked from the data module by the CLI).
        class_names: names of the classes, kept in checkpoints for prediction.
        chunk_size: stored samples compared per ``torch.cdist`` call (bounds memory).

    Example:
        >>> model = KNNClassifier(k=3, distance="l1", num_classes=10)
    """

    def __init__(
        self,
        k: int = 1,
        distance: Literal["l1", "l2"] = "l2",
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 28,
        class_names: Sequence[str] | None = None,
        chunk_size: int = 4096,
    ) -> None:
        super().__init__(num_classes, class_names)
        check_range("k", k, ">= 1")
        check_choice("distance", distance, DISTANCES)
        check_range("chunk_size", chunk_size, ">= 1")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.register_buffer("memory", torch.empty(0))
        self.register_buffer("memory_labels", torch.empty(0, dtype=torch.long))
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_train_epoch_start(self) -> None:
        self._pending = []  # every epoch memorises the training set afresh

    def training_step(self, batch, batch_idx: int) -> None:
        images, targets = batch
        self._pending.append((images.flatten(1), targets))

    def _memorise(self) -> None:
        """Turn the batches seen in training into the memory, gathered from every DDP rank."""
        if not self._pending:
            return
        features = torch.cat([features for features, _ in self._pending])
        labels = torch.cat([labels for _, labels in self._pending])
        self._pending = []
        if self.trainer.world_size > 1:
            features = self.all_gather(features).flatten(0, 1)
            labels = self.all_gather(labels).flatten(0, 1)
        self.memory, self.memory_labels = features, labels

    def on_train_epoch_end(self) -> None:
        self._memorise()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Vote shares (B, num_classes) among the ``k`` nearest stored images."""
        if self.memory.numel() == 0:
            raise RuntimeError("KNNClassifier has no memory yet: fit it on a training set first")
        return knn_votes(
            images.flatten(1),
            self.memory,
            self.memory_labels,
            k=self.hparams.k,
            p=DISTANCES[self.hparams.distance],
            num_classes=self.hparams.num_classes,
            chunk_size=self.hparams.chunk_size,
        )

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """The vote shares are already probabilities."""
        return self(images)

    def _step(self, batch, stage: str) -> dict[str, torch.Tensor]:
        self._memorise()  # validation runs before on_train_epoch_end
        images, targets = batch
        return self.evaluate_scores(self(images), targets, stage, loss=None)

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor] | None:
        if self.trainer.sanity_checking:
            return None  # nothing memorised before the first epoch
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._step(batch, "test")

    def configure_optimizers(self) -> None:
        return None  # nothing to optimise: fitting is memorising

    def configure_callbacks(self) -> list[Callback]:
        return [SaveMemory()]

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Size the memory buffers to the checkpoint's before loading them."""
        self.memory = torch.empty_like(state_dict["memory"])
        self.memory_labels = torch.empty_like(state_dict["memory_labels"])
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


class SaveMemory(Callback):
    """Write the fitted memory as ``last.ckpt`` where the run's ModelCheckpoint writes.

    ModelCheckpoint saves only after optimizer steps, and fitting a kNN takes none.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        checkpoint = trainer.checkpoint_callback
        if checkpoint is None or checkpoint.dirpath is None or trainer.fast_dev_run:
            return
        last = checkpoint.format_checkpoint_name({}, checkpoint.CHECKPOINT_NAME_LAST)
        trainer.save_checkpoint(last)
