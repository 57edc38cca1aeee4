"""ImageClassifier: forward, metrics, prediction, checkpoints and bad values."""

import re
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch
from torch import nn

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    options = {
        "max_epochs": 1,
        "limit_train_batches": 4,
        "limit_val_batches": 2,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
        **kwargs,
    }
    return L.Trainer(**options)


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    return DigitsDataModule(image_size=28, batch_size=64)


def _classifier(data: DigitsDataModule, **kwargs) -> ImageClassifier:
    return ImageClassifier(
        num_classes=data.num_classes,
        in_channels=data.in_channels,
        image_size=data.image_size,
        class_names=data.class_names,
        **kwargs,
    )


def test_test_metrics_and_confusion_matrix(digits, tmp_path):
    model = _classifier(digits)
    trainer = _trainer(tmp_path, enable_checkpointing=False)
    trainer.fit(model, datamodule=digits)
    metrics = trainer.test(model, datamodule=digits, verbose=False)[0]
    expected = {
        "test/loss",
        "test/acc",
        "test/acc_top5",
        "test/precision",
        "test/recall",
        "test/f1",
    }
    assert set(metrics) == expected
    matrix = model.test_confusion.compute()
    assert matrix.sum() == 360
    assert matrix.trace() / 360 == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert metrics["test/acc_top5"] >= metrics["test/acc"]


def test_top5_only_with_more_than_five_classes():
    model = ImageClassifier("linear", num_classes=5, in_channels=1, image_size=8)
    assert "val/acc_top5" not in model.val_metrics.keys(keep_base=False)
    assert "val/acc_top5" in ImageClassifier("linear").val_metrics.keys(keep_base=False)


def test_predict_step_returns_indices_and_probabilities():
    model = ImageClassifier("mlp", num_classes=10, in_channels=1, image_size=28).eval()
    out = model.predict_step((torch.randn(3, 1, 28, 28), torch.zeros(3)), 0)
    assert out["preds"].shape == (3,) and out["probs"].shape == (3, 10)
    torch.testing.assert_close(out["probs"].sum(dim=1), torch.ones(3))
    torch.testing.assert_close(out["preds"], out["probs"].argmax(dim=1))
    assert model.predict_step(torch.randn(2, 1, 28, 28), 0)["preds"].shape == (2,)


def test_checkpoint_rebuilds_the_model_with_weights_only(digits, tmp_path):
    model = _classifier(digits, backbone="mlp", backbone_kwargs={"hidden_sizes": [64, 32]})
    trainer = _trainer(tmp_path)
    trainer.fit(model, datamodule=digits)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    torch.load(path, weights_only=True)  # plain data only: nothing to unpickle
    loaded = ImageClassifier.load_from_checkpoint(path, weights_only=True).eval()
    images = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(loaded(images), model.eval()(images), rtol=0, atol=0)
    assert loaded.class_names == list(digits.class_names)
    assert [
        len(layer.weight) for layer in loaded.backbone.modules() if isinstance(layer, nn.Linear)
    ] == [64, 32, 10]


def test_any_nn_module_is_a_backbone(digits, tmp_path):
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    model = _classifier(digits, backbone=backbone)
    assert model.backbone is backbone and "backbone" not in model.hparams
    _trainer(tmp_path, enable_checkpointing=False).fit(model, datamodule=digits)


def test_class_count_that_does_not_match_the_data(digits, tmp_path):
    model = ImageClassifier("lenet5", num_classes=5, in_channels=1, image_size=28)
    message = "model num_classes=5 does not match the data's num_classes=10 (DigitsDataModule)"
    with pytest.raises(ConfigError, match=re.escape(message)):
        _trainer(tmp_path).fit(model, datamodule=digits)


def test_bad_optimizer_option_stops_the_fit_with_its_name(digits, tmp_path):
    model = _classifier(digits, optimizer="sgd", optimizer_kwargs={"momentum": -1})
    message = "optimizer 'sgd': Invalid momentum value: -1"
    with pytest.raises(ConfigError, match=re.escape(message)):
        _trainer(tmp_path).fit(model, datamodule=digits)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss_kwargs": {"label_smoothing": 1.0}}, "label_smoothing must be in [0, 1), got 1.0"),
        ({"lr": -0.1}, "lr must be > 0, got -0.1"),
        ({"loss": "focal"}, "unknown loss 'focal'; expected one of"),
        ({"scheduler": "warm"}, "unknown scheduler 'warm'; expected one of"),
        (
            {"scheduler": "step", "scheduler_kwargs": {"step_size": 0}},
            "step_size must be >= 1, got 0",
        ),
        (
            {"warmup_steps": 5},
            "warmup_steps=5 and scheduler_kwargs={} need a scheduler ('constant' gives a "
            "warm-up alone)",
        ),
        ({"optimizer": "sgd", "weight_decay": -1.0}, "weight_decay must be >= 0, got -1.0"),
        ({"l1_strength": -1.0}, "l1_strength must be >= 0, got -1.0"),
        ({"class_names": ["a", "b"]}, "class_names has 2 names but num_classes is 10"),
        ({"backbone": "resnet"}, "unknown model 'resnet'; expected one of"),
        ({"image_size": 8}, "lenet5 needs image_size >= 12x12, got 8x8"),
    ],
)
def test_bad_values_name_the_value(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        ImageClassifier(**kwargs)


def test_metrics_stay_right_when_the_first_batch_is_perfect():
    """A perfect first batch makes top-1 and top-5 states equal: they must not be merged."""
    from sklearn.metrics import f1_score, precision_score

    from lightning_cv.metrics import eval_metrics

    torch.manual_seed(0)
    targets = torch.randint(0, 10, (300,))
    logits = torch.randn(300, 10)
    logits[:100] += 10 * torch.nn.functional.one_hot(targets[:100], 10)  # all right
    metrics = eval_metrics(10)
    for start in range(0, 300, 100):
        metrics.update(logits[start : start + 100], targets[start : start + 100])
    values = metrics.compute()
    preds = logits.argmax(1)
    assert values["f1"] == pytest.approx(f1_score(targets, preds, average="macro"), abs=1e-6)
    assert values["precision"] == pytest.approx(
        precision_score(targets, preds, average="macro"), abs=1e-6
    )
    assert values["acc"] == pytest.approx((preds == targets).float().mean().item(), abs=1e-6)


def test_l1_and_l2_penalties_are_added_and_logged_apart(digits, tmp_path):
    model = _classifier(digits, backbone="linear", lr=1e-12, l1_strength=1e-3, l2_strength=1e-2)
    weight = model.backbone.head.weight.detach().clone()
    trainer = _trainer(tmp_path, enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(model, datamodule=digits)
    logged = trainer.callback_metrics
    # lr 1e-12: the weights stay put, so every step's penalty is the initial one
    assert logged["train/l1_penalty"] == pytest.approx(1e-3 * weight.abs().sum().item(), rel=1e-4)
    assert logged["train/l2_penalty"] == pytest.approx(
        1e-2 * weight.square().sum().item(), rel=1e-4
    )
    total = logged["train/data_loss"] + logged["train/l1_penalty"] + logged["train/l2_penalty"]
    assert logged["train/loss_epoch"] == pytest.approx(total.item(), rel=1e-5)


def test_step_losses_reach_the_logger_on_its_steps_and_the_epoch_means_are_exact(tmp_path):
    """No progress bar: ``train/loss_step`` goes out every ``log_every_n_steps``;
    ``train/loss_epoch`` and ``train/acc`` are the sample-weighted means over each epoch's
    steps (the running sums start again every epoch)."""
    import csv

    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import CSVLogger
    from torch.utils.data import DataLoader, TensorDataset

    class RecordSteps(Callback):
        def __init__(self):
            self.steps = []  # (epoch, loss, samples, correct)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            correct = (outputs["logits"].argmax(1) == batch[1]).sum().item()
            step = (trainer.current_epoch, outputs["loss"].item(), len(batch[1]), correct)
            self.steps.append(step)

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(70, 1, 28, 28), torch.randint(0, 10, (70,)))
    record = RecordSteps()
    model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=28, lr=0.01)
    trainer = _trainer(
        tmp_path, max_epochs=2, limit_train_batches=None, limit_val_batches=0,
        log_every_n_steps=2, logger=CSVLogger(tmp_path), callbacks=[record],
        enable_checkpointing=False,
    )  # fmt: skip
    trainer.fit(model, DataLoader(data, batch_size=16))  # 5 steps an epoch, the last of 6 images
    rows = list(csv.DictReader((Path(trainer.log_dir) / "metrics.csv").open()))
    step_rows = {int(row["step"]): float(row["train/loss_step"]) for row in rows
                 if row["train/loss_step"]}  # fmt: skip
    assert sorted(step_rows) == [1, 3, 5, 7, 9]
    for step, value in step_rows.items():
        assert value == pytest.approx(record.steps[step][1], rel=1e-6)
    epoch_rows = [row for row in rows if row["train/loss_epoch"]]
    assert [int(row["epoch"]) for row in epoch_rows] == [0, 1]
    for epoch, row in enumerate(epoch_rows):
        steps = [step for step in record.steps if step[0] == epoch]
        mean_loss = sum(loss * n for _, loss, n, _ in steps) / 70
        accuracy = sum(correct for *_, correct in steps) / 70
        assert float(row["train/loss_epoch"]) == pytest.approx(mean_loss, rel=1e-6)
        assert float(row["train/acc"]) == pytest.approx(accuracy, abs=1e-7)
    assert {step[3] for step in record.steps} != {0}  # some right answers to count


def test_non_finite_loss_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_cv.errors import NonFiniteLossError

    images, labels = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    good = DataLoader(TensorDataset(images, labels), batch_size=16)
    poisoned = images.clone()
    poisoned[40] = float("nan")  # in the third batch
    bad = DataLoader(TensorDataset(poisoned, labels), batch_size=16)

    def trainer(epochs):
        checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
        return _trainer(
            tmp_path, max_epochs=epochs, callbacks=[checkpoint], limit_train_batches=None
        )

    model = ImageClassifier("lenet5")
    trainer(1).fit(model, train_dataloaders=good)
    last = tmp_path / "last.ckpt"
    before = last.read_bytes()
    message = "training stopped: the loss is nan at step 6 (epoch 1, batch 2)"
    with pytest.raises(NonFiniteLossError, match=re.escape(message)):
        trainer(2).fit(model, train_dataloaders=bad, ckpt_path=last)
    assert last.read_bytes() == before


def test_linear_scaling_rule_scales_lr_by_global_batch(digits, tmp_path):
    model = _classifier(digits, optimizer="sgd", lr=0.1, lr_reference_batch_size=256)
    trainer = _trainer(tmp_path, max_steps=1, enable_checkpointing=False)
    trainer.fit(model, datamodule=digits)  # batch 64 on one device
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 64 / 256)


def test_non_finite_scores_name_the_first_bad_batch_once_per_epoch():
    from lightning_cv.errors import NonFiniteLossError
    from lightning_cv.metrics import NonFiniteScores

    watch = NonFiniteScores()
    for scores in ([[0.0, 1.0]], [[2.0, 3.0]], [[float("nan"), 0.0]], [[float("inf"), 0.0]]):
        watch.update(torch.tensor(scores))
    message = (
        "validation stopped: the model's scores are NaN or infinite from validation batch 2 on; "
        "the input images or the weights hold NaN/inf (check the data's mean and std, and the "
        "checkpoint)"
    )
    with pytest.raises(NonFiniteLossError, match=f"^{re.escape(message)}$"):
        watch.check("val")
    watch.update(torch.zeros(1, 2))  # a new epoch starts clean
    watch.check("val")
