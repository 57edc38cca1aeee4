"""ImageClassifier: the one LightningModule; any backbone from the registry trains through it."""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from lightning_cv.errors import ConfigError
from lightning_cv.models import create_model

__all__ = ["ImageClassifier"]


def _eval_metrics(num_classes: int) -> MetricCollection:
    metrics = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "precision": MulticlassPrecision(num_classes, average="macro"),
        "recall": MulticlassRecall(num_classes, average="macro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
    }
    if num_classes > 5:
        metrics["acc_top5"] = MulticlassAccuracy(num_classes, top_k=5, average="micro")
    return MetricCollection(metrics)


class ImageClassifier(L.LightningModule):
    """Train, evaluate and predict with any image-classification backbone.

    Args:
        backbone: a registry name (see :func:`lightning_cv.models.list_models`) or a ready
            ``nn.Module`` mapping ``(B, C, H, W)`` images to ``(B, num_classes)`` logits.
        backbone_kwargs: architecture options for a registry name, e.g. ``{"dropout": 0.5}``.
        num_classes: number of classes (linked from the data module by the CLI).
        in_channels: image channels (linked from the data module by the CLI).
        image_size: image side or (height, width) (linked from the data module by the CLI).
        class_names: names of the classes, kept in checkpoints for prediction.
        label_smoothing: cross-entropy label smoothing in [0, 1).
        optimizer: builds the optimizer from the parameters (default Adam, lr 1e-3).
        lr_scheduler: builds an LR scheduler from the optimizer (default none).

    Example:
        >>> model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=28)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        backbone: str | nn.Module = "lenet5",
        backbone_kwargs: dict | None = None,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 28,
        class_names: Sequence[str] | None = None,
        label_smoothing: float = 0.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(
                f"class_names has {len(class_names)} names but num_classes is {num_classes}"
            )
        ignore = ["optimizer", "lr_scheduler"]
        if isinstance(backbone, nn.Module):
            ignore.append("backbone")
            self.backbone = backbone
        else:
            self.backbone = create_model(
                backbone,
                num_classes=num_classes,
                in_channels=in_channels,
                image_size=image_size,
                **(backbone_kwargs or {}),
            )
        self.save_hyperparameters(ignore=ignore)
        self.class_names = list(class_names) if class_names is not None else None
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_metrics = MetricCollection(
            {"acc": MulticlassAccuracy(num_classes, average="micro")}, prefix="train/"
        )
        self.val_metrics = _eval_metrics(num_classes).clone(prefix="val/")
        self.test_metrics = _eval_metrics(num_classes).clone(prefix="test/")
        self.test_confusion = MulticlassConfusionMatrix(num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule if self._trainer is not None else None
        for name in ("num_classes", "in_channels"):
            data_value, model_value = getattr(data, name, None), self.hparams[name]
            if data_value is not None and data_value != model_value:
                raise ConfigError(
                    f"model {name}={model_value} does not match the data's {name}={data_value} "
                    f"({type(data).__name__})"
                )

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, targets = batch
        logits = self(images)
        loss = self.loss(logits, targets)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(logits, targets)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "test")
        if stage == "test":
            self.test_confusion.update(logits, targets)
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self.test_confusion.reset()

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Class indices (``preds``) and softmax probabilities (``probs``) of a batch."""
        images = batch[0] if isinstance(batch, list | tuple) else batch
        probs = self(images).softmax(dim=1)
        return {"preds": probs.argmax(dim=1), "probs": probs}

    def configure_optimizers(self):
        try:
            optimizer = self.optimizer(self.parameters())
        except ValueError as error:  # torch.optim checks lr, momentum, betas, ...
            raise ConfigError(f"model.optimizer: {error}") from None
        if self.lr_scheduler is None:
            return optimizer
        scheduler = self.lr_scheduler(optimizer)
        config = {"scheduler": scheduler}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": config}
