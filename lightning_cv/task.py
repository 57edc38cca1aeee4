"""ImageClassifier: the one LightningModule; any backbone from the registry trains through it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as L
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from lightning_cv._checkpoint import first_difference, read_checkpoint
from lightning_cv.errors import ConfigError, NonFiniteLossError, check_range
from lightning_cv.losses import create_loss, weight_penalties
from lightning_cv.metrics import NonFiniteScores, eval_metrics
from lightning_cv.models import OPTIONS, architecture_options, create_model, freeze_body, head_of
from lightning_cv.optim import check_optimizer, check_scheduler, configure_optimization
from lightning_cv.preprocessing import CHECKPOINT_KEY, Preprocessing
from lightning_cv.step_batches import check_step_batches

__all__ = ["ClassificationTask", "ImageClassifier"]

# values nn.Module.__setattr__ stores as it is: never a parameter, buffer or submodule
_PLAIN_VALUES = (str, int, float, bool, type(None))

# ImageClassifier's options that configure_optimization takes as they are
_OPTIMIZATION = ("optimizer", "lr", "weight_decay", "decay_biases", "optimizer_kwargs", "scheduler",
                 "scheduler_kwargs", "warmup_steps", "scheduler_interval",
                 "lr_reference_batch_size", "step_batch_size")  # fmt: skip


def _backbone(given: dict[str, Any], weights: str | None) -> nn.Module:
    """A ready module as given, or the registry model ``create_model`` builds with ``weights``."""
    backbone = given["backbone"]
    if not isinstance(backbone, nn.Module):
        shape = {key: given[key] for key in ("num_classes", "in_channels", "image_size")}
        return create_model(backbone, weights=weights, **shape, **(given["backbone_kwargs"] or {}))
    if weights is not None:
        raise ConfigError(
            f"weights={weights!r} need a registry backbone name, not a "
            f"{type(backbone).__name__} module"
        )
    return backbone


class ClassificationTask(L.LightningModule):
    """What every lightning-cv classifier shares: metrics, the test confusion matrix, checks
    against the data module, and prediction.

    Subclasses compute class scores in :meth:`forward`, call :meth:`track_training` from their
    training step and :meth:`evaluate_scores` from their validation and test steps; they call
    ``save_hyperparameters`` themselves.

    Args:
        num_classes: number of classes.
        class_names: names of the classes, kept in checkpoints for prediction.
    """

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(
                f"class_names has {len(class_names)} names but num_classes is {num_classes}"
            )
        self.class_names = list(class_names) if class_names is not None else None
        self.val_metrics = eval_metrics(num_classes).clone(prefix="val/")
        self.test_metrics = eval_metrics(num_classes).clone(prefix="test/")
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        # means over every sample of all ranks (synced and weighted by batch size)
        self.train_loss = MeanMetric()
        self.train_acc = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self._train_sums: torch.Tensor | None = None  # this epoch's (loss x samples, correct)
        self._train_samples = 0
        self._nonfinite_scores = NonFiniteScores()

    def __setattr__(self, name: str, value: Any) -> None:
        """``nn.Module.__setattr__``, without its parameter, buffer and module checks for a
        plain value replacing an instance attribute.

        Lightning names the running hook on the module before and after each of its calls
        (about 45 times a training step); the checks cost 1.3 us a set on a CPU, 0.5% of a
        LeNet-5 step on MNIST.
        """
        if type(value) in _PLAIN_VALUES and name in self.__dict__:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule if self._trainer is not None else None
        for name in ("num_classes", "in_channels"):
            data_value, model_value = getattr(data, name, None), self.hparams.get(name)
            if data_value is not None and data_value != model_value:
                raise ConfigError(
                    f"model {name}={model_value} does not match the data's {name}={data_value} "
                    f"({type(data).__name__})"
                )

    def track_training(
        self,
        scores: torch.Tensor,
        targets: torch.Tensor,
        loss: torch.Tensor,
        *,
        ends_batch: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Add the step's loss and correct predictions to the epoch's running sums, which reach
        torchmetrics (synced over ranks) and the logger once, on the epoch's last batch (two
        torchmetrics updates a step took 2% of a LeNet-5 step on a CPU); ``train/loss_step``
        goes out only on steps a logger writes or a progress bar shows.

        ``ends_batch=False``: an optimizer step that is not the last of its loaded batch
        (:class:`ImageClassifier`'s ``step_batch_size``), which only adds to the sums."""
        samples = len(targets)
        correct = (scores.argmax(dim=1) == targets).sum()
        step = torch.stack((loss.detach().float() * samples, correct))  # float32, as the loss
        if self._train_sums is None:
            self._train_sums, self._train_samples = torch.zeros_like(step), 0
        self._train_sums += step
        self._train_samples += samples
        if not ends_batch:
            return {"loss": loss, "logits": scores.detach()}
        if self._step_is_shown():
            self.log("train/loss_step", loss, prog_bar=True, on_step=True, on_epoch=False)
        if self.trainer.is_last_batch:
            (loss_sum, correct_sum), seen = self._train_sums, self._train_samples
            self.train_loss.update(loss_sum / seen, weight=seen)
            self.train_acc.update(correct_sum / seen, weight=seen)
            self._train_sums = None
            means = {"train/loss_epoch": self.train_loss, "train/acc": self.train_acc}
            self.log_dict(means, on_step=False, on_epoch=True, prog_bar=True)
        return {"loss": loss, "logits": scores.detach()}

    def on_train_epoch_start(self) -> None:
        self._train_sums = None  # an epoch cut short (max_steps, an exception) leaves sums

    def evaluate_scores(
        self, scores: torch.Tensor, targets: torch.Tensor, stage: str, loss: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Update the validation or test metrics (Lightning computes and logs them at the
        epoch's end); callbacks get the scores as ``logits``."""
        self._nonfinite_scores.update(scores)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(scores, targets)
        batch_size = len(targets)
        if loss is not None:
            mean = getattr(self, f"{stage}_loss")
            mean.update(loss.detach(), weight=batch_size)
            self.log(f"{stage}/loss", mean, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(
            metrics, on_step=False, on_epoch=True, prog_bar=stage != "test", batch_size=batch_size
        )
        if stage == "test":
            self.test_confusion.update(scores, targets)
        return {"loss": loss, "logits": scores.detach()}

    def _step_is_shown(self) -> bool:
        """Whether this training step's values reach a logger or a progress bar refresh.

        A bar refreshes every ``refresh_rate``-th batch of an epoch and on its last batch (a
        bar without ``refresh_rate``: every batch); a bar that ``shows_step_loss`` reads it
        from the step's output. Logging for no reader costs a step 1 ms.
        """
        trainer = self.trainer
        if trainer.fast_dev_run:
            return True
        bar = trainer.progress_bar_callback
        if bar is not None and bar.is_enabled and not getattr(bar, "shows_step_loss", False):
            batch = trainer.fit_loop.epoch_loop.batch_idx + 1
            if batch % getattr(bar, "refresh_rate", 1) == 0 or trainer.is_last_batch:
                return True
        # Lightning's logging step counts loaded batches; optimizer steps are more when a
        # batch takes several (manual optimization)
        epoch_loop = trainer.fit_loop.epoch_loop
        step = self.global_step if self.automatic_optimization else epoch_loop.total_batch_idx
        return trainer.loggers != [] and (step + 1) % trainer.log_every_n_steps == 0

    def on_validation_epoch_start(self) -> None:
        self._nonfinite_scores.reset()

    def on_validation_epoch_end(self) -> None:
        self._nonfinite_scores.check("val")

    def on_test_epoch_start(self) -> None:
        self.test_confusion.reset()
        self._nonfinite_scores.reset()

    def on_test_epoch_end(self) -> None:
        self._nonfinite_scores.check("test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Name the class beside the hyperparameters (LightningCLI's ``_class_path``), so
        ``lightning-cv test --ckpt_path`` rebuilds this model, not the CLI's default one."""
        cls = type(self)
        checkpoint["hyper_parameters"]["_class_path"] = f"{cls.__module__}.{cls.__qualname__}"
        record = self._preprocessing()
        if record is not None:
            checkpoint[CHECKPOINT_KEY] = record.to_checkpoint()

    def _preprocessing(self) -> Preprocessing | None:
        """The trainer's data module's evaluation pipeline, classes and test-time augmentation
        (:class:`~lightning_cv.preprocessing.Preprocessing`); None without a data module."""
        from lightning_cv.callbacks.tta import TestTimeAugmentation
        from lightning_cv.data import ImageDataModule

        trainer = self._trainer
        data = trainer.datamodule if trainer is not None else None
        if not isinstance(data, ImageDataModule):
            return None
        views = [c for c in trainer.callbacks if isinstance(c, TestTimeAugmentation)]
        tta = (
            {"flip": views[0].flip, "shifts": views[0].shifts, "padding": views[0].padding}
            if views
            else None
        )
        return data.preprocessing(tta=tta, class_names=self.class_names)

    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, num_classes): the softmax of :meth:`forward`'s scores."""
        return self(images).softmax(dim=1)

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Class indices (``preds``) and probabilities (``probs``) of a batch."""
        images = batch[0] if isinstance(batch, list | tuple) else batch
        probs = self.predict_proba(images)
        return {"preds": probs.argmax(dim=1), "probs": probs}


class ImageClassifier(ClassificationTask):
    """Train, evaluate and predict with any image-classification backbone.

    Every option is plain data, so a recipe states it in YAML and a checkpoint rebuilds the
    model with ``load_from_checkpoint(path, weights_only=True)``. The CLI links the image
    shape and class count from the data module.

    Args:
        backbone: a registry name (:func:`lightning_cv.models.list_models`) or an ``nn.Module``
            mapping ``(B, C, H, W)`` images to ``(B, num_classes)`` logits; by default the
            architecture of ``weights``, else ``"lenet5"``.
        backbone_kwargs: architecture options for a registry name, e.g. ``{"dropout": 0.5}``.
        num_classes: number of classes; by default the entry's with ``weights`` (another
            count gets a new head), else 10.
        in_channels: image channels; by default the entry's, else 1.
        image_size: image side or (height, width); by default the entry's, else 28.
        class_names: names of the classes, kept in checkpoints; by default the entry's.
        weights: a zoo entry to start from (``lightning-cv zoo list``), e.g. ``"alexnet.cifar10"``.
        freeze_backbone: train the head only (the rest frozen and kept in eval mode).
        loss: a name from :data:`lightning_cv.losses.LOSSES`.
        loss_kwargs: its options, e.g. ``{"label_smoothing": 0.1}``.
        optimizer: a name from :data:`lightning_cv.optim.OPTIMIZERS`.
        lr: learning rate (the reference rate when ``lr_reference_batch_size`` is set).
        weight_decay: L2 weight decay applied by the optimizer.
        decay_biases: apply ``weight_decay`` to biases and norm weights too.
        optimizer_kwargs: other optimizer options, e.g. ``{"momentum": 0.9}``.
        scheduler: a name from :data:`lightning_cv.optim.SCHEDULERS`, or none.
        scheduler_kwargs: its options, e.g. ``{"step_size": 10, "gamma": 0.3}``.
        warmup_steps: linear warm-up steps (intervals) in front of the schedule.
        scheduler_interval: step the schedule every ``"epoch"`` or every optimizer ``"step"``.
        l1_strength: L1 penalty on the weights added to the loss (``train/l1_penalty``).
        l2_strength: L2 penalty on the weights added to the loss (``train/l2_penalty``).
        lr_reference_batch_size: scale ``lr`` by global batch size / this (Goyal et al. 2017).
        step_batch_size: split each loaded batch into optimizer steps of this many samples
            (the data's ``batch_size`` a multiple of it), the same steps on the same samples as
            loading ``step_batch_size`` at a time, with Lightning's fixed cost per batch paid
            once per loaded batch (:mod:`lightning_cv.step_batches`). One device; schedules
            step every optimizer step; Lightning's own step count for logging and
            ``log_every_n_steps`` is loaded batches.

    Raises:
        ConfigError: an unknown name or an invalid value, naming it; ``weights`` of another
            architecture, or options that change the shape of one of its weights.
        DataFileError: ``weights`` whose file cannot be fetched or has another sha256.

    Example:
        >>> model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=28)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        >>> tuned = ImageClassifier(weights="lenet5.cifar10", num_classes=3, freeze_backbone=True)
        >>> tuned.hparams.in_channels, tuned.backbone.head.out_features
        (3, 3)
    """

    def __init__(
        self,
        backbone: str | nn.Module | None = None,
        backbone_kwargs: dict | None = None,
        num_classes: int | None = None,
        in_channels: int | None = None,
        image_size: int | tuple[int, int] | None = None,
        class_names: Sequence[str] | None = None,
        weights: str | None = None,
        freeze_backbone: bool = False,
        loss: str = "cross_entropy",
        loss_kwargs: dict | None = None,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        decay_biases: bool = True,
        optimizer_kwargs: dict | None = None,
        scheduler: str | None = None,
        scheduler_kwargs: dict | None = None,
        warmup_steps: int = 0,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        l1_strength: float = 0.0,
        l2_strength: float = 0.0,
        lr_reference_batch_size: int | None = None,
        step_batch_size: int | None = None,
    ) -> None:
        # checked now, before any data or weights are read, by the functions that build them
        check_optimizer(optimizer, lr=lr, weight_decay=weight_decay, **(optimizer_kwargs or {}))
        check_scheduler(scheduler, warmup_steps=warmup_steps, **(scheduler_kwargs or {}))
        check_range("l1_strength", l1_strength, ">= 0")
        check_range("l2_strength", l2_strength, ">= 0")
        if step_batch_size is not None:
            check_range("step_batch_size", step_batch_size, ">= 1")
            if scheduler == "plateau":
                raise ConfigError(
                    f"step_batch_size={step_batch_size} steps the schedule after every "
                    "optimizer step, and 'plateau' steps once per epoch: choose another "
                    "scheduler or leave step_batch_size out"
                )
            if scheduler is not None and scheduler_interval != "step":
                raise ConfigError(
                    f"step_batch_size={step_batch_size} steps the {scheduler!r} schedule after "
                    "every optimizer step: set scheduler_interval 'step'"
                )
        given = (backbone, backbone_kwargs, num_classes, in_channels, image_size, class_names)
        given = dict(zip(OPTIONS, given, strict=True))
        module = _backbone(given, weights)
        options = architecture_options(given, module.pretrained_cfg if weights else None)
        # save_hyperparameters reads these locals: checkpoints state what was built
        backbone, backbone_kwargs, num_classes, in_channels, image_size, class_names = (
            options.values()
        )
        super().__init__(num_classes, class_names)
        self.backbone = module
        if freeze_backbone:
            freeze_body(self.backbone)
        self.save_hyperparameters(ignore=["backbone"] if isinstance(backbone, nn.Module) else [])
        self.loss = create_loss(loss, **(loss_kwargs or {}))
        self._schedule_total: int | None = None  # set by configure_optimizers
        self._resumed_schedule: int | None = None  # from a checkpoint being resumed

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    @property
    def automatic_optimization(self) -> bool:
        """Lightning steps the optimizer, unless ``step_batch_size`` splits each batch into
        several steps, which :meth:`training_step` then takes itself."""
        return self.hparams.get("step_batch_size") is None

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and not self.automatic_optimization:
            check_step_batches(self.hparams.step_batch_size, self.trainer.datamodule, self.trainer)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Lightning's loader, after :func:`read_checkpoint` has checked a checkpoint file."""
        if isinstance(checkpoint_path, str | Path):
            read_checkpoint(checkpoint_path)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def on_train_start(self) -> None:
        """With ``freeze_backbone``, the frozen layers go to eval mode (after Lightning's check
        that training starts with every module in train mode; validation restores modes)."""
        if self.hparams.freeze_backbone:
            self.backbone.eval()
            head_of(self.backbone).train()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        hparams = checkpoint["hyper_parameters"]  # a copy of self.hparams
        if hparams.get("weights") is not None:
            # the checkpoint holds the trained weights: rebuilding it must not fetch the entry
            # (it may live on W&B or a URL, and the user may be offline); kept as provenance
            checkpoint["lightning_cv_weights"] = hparams["weights"]
            hparams["weights"] = None
        if self._schedule_total is not None:  # what a resumed run's schedule must span too
            checkpoint["lightning_cv_schedule_length"] = self._schedule_total

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse, naming the first difference, weights whose names or shapes do not fit."""
        self._resumed_schedule = checkpoint.get("lightning_cv_schedule_length")
        difference = first_difference(checkpoint["state_dict"], self.state_dict())
        if difference is None:
            return
        keys = ("backbone", "num_classes", "in_channels", "image_size")
        model = ", ".join(f"{key}={self.hparams.get(key)!r}" for key in keys)
        raise ConfigError(f"the checkpoint's weights do not fit this model ({model}): {difference}")

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        images, targets = batch
        if self.automatic_optimization:
            return self._train_on(images, targets, batch_idx)
        size = self.hparams.step_batch_size
        steps = list(zip(images.split(size), targets.split(size), strict=True))
        if self.trainer.max_steps >= 0:  # a step limit may fall inside the batch
            steps = steps[: self.trainer.max_steps - self.global_step]
        optimizer, schedule = self.optimizers(), self.lr_schedulers()
        for number, (step_images, step_targets) in enumerate(steps, 1):
            output = self._train_on(step_images, step_targets, batch_idx, number == len(steps))
            optimizer.zero_grad()
            self.manual_backward(output["loss"])
            optimizer.step()
            if schedule is not None:
                schedule.step()
        return output

    def _train_on(
        self, images: torch.Tensor, targets: torch.Tensor, batch_idx: int, ends_batch: bool = True
    ) -> dict[str, torch.Tensor]:
        """The loss of one optimizer step's samples, checked, and its metrics tracked."""
        logits = self(images)
        data_loss = self.loss(logits, targets)
        hp = self.hparams
        penalties = weight_penalties(self.backbone, hp.l1_strength, hp.l2_strength)
        loss = data_loss + sum(penalties.values()) if penalties else data_loss
        if not torch.isfinite(loss):
            clipping = " or gradient clipping (--trainer.gradient_clip_val)"
            raise NonFiniteLossError(
                f"training stopped: the loss is {loss.item()} at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); no checkpoint was written "
                f"after it. Try a lower lr{clipping if self.automatic_optimization else ''}"
            )
        if penalties:  # the data loss and each penalty, apart
            parts = {"data_loss": data_loss, **penalties}
            parts = {f"train/{name}": value for name, value in parts.items()}
            self.log_dict(parts, on_step=False, on_epoch=True, batch_size=len(targets))
        labels = targets.argmax(dim=1) if targets.is_floating_point() else targets  # mixed batch
        return self.track_training(logits, labels, loss, ends_batch=ends_batch)

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluate_batch(batch, "val")

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self._evaluate_batch(batch, "test")

    def _evaluate_batch(self, batch, stage: str) -> dict[str, torch.Tensor]:
        images, targets = batch
        logits = self(images)
        return self.evaluate_scores(logits, targets, stage, loss=self.loss(logits, targets))

    def configure_optimizers(self):
        hp = self.hparams
        trainable = [param for param in self.parameters() if param.requires_grad]
        if not trainable:
            raise ConfigError(
                "every parameter is frozen, so the optimizer has nothing to train; with "
                "Lightning's BackboneFinetuning use lightning_cv.callbacks.HeadFirstFinetuning (it "
                "keeps the head trainable)"
            )
        config, self._schedule_total = configure_optimization(
            trainable,
            self._trainer,
            resumed_length=self._resumed_schedule,
            **{key: hp[key] for key in _OPTIMIZATION},
        )
        return config
