"""Picture callbacks: their pure helpers against oracles, one real run, and the W&B hand-off."""

import csv
import math
import re
import warnings
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from PIL import Image
from sklearn.metrics import precision_recall_fscore_support

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier
from lightning_cv.callbacks.class_report import ClassReport, class_report, plot_class_report
from lightning_cv.callbacks.curves import (
    CURVE_COLUMNS,
    LearningRatePlot,
    TrainingCurves,
    epoch_values,
    history_table,
    learning_rates,
)
from lightning_cv.callbacks.misclassified import (
    MisclassifiedGrid,
    images_for_display,
    select_misclassified,
)
from lightning_cv.callbacks.templates import LinearTemplates, linear_templates, plot_templates

PICTURES = (
    "class_report.png",
    "misclassified.png",
    "templates.png",
    "training_curves.png",
    "learning_rate.png",
)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def _assert_png(path: Path) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 0 and image.height > 0


# class report


def test_class_report_equals_sklearn():
    # class 3 is never predicted (precision 0/0), class 4 never occurs (recall 0/0)
    matrix = np.array(
        [
            [5, 1, 0, 0, 0],
            [2, 7, 1, 0, 0],
            [0, 0, 4, 0, 1],
            [1, 0, 2, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    true, pred = np.nonzero(matrix)
    y_true = np.repeat(true, matrix[true, pred])
    y_pred = np.repeat(pred, matrix[true, pred])
    expected = precision_recall_fscore_support(y_true, y_pred, labels=range(5), zero_division=0)
    report = class_report(matrix)
    for name, values in zip(("precision", "recall", "f1", "support"), expected, strict=True):
        np.testing.assert_allclose(report[name], values, err_msg=name)


def test_class_report_rejects_unknown_sort_key():
    message = (
        "unknown sort_by 'name'; expected one of ['class', 'precision', 'recall', 'f1', 'support']"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        ClassReport(sort_by="name")


def test_class_report_picture_splits_many_classes_into_panels(tmp_path):
    rng = np.random.default_rng(0)
    for num_classes in (10, 100):
        matrix = rng.integers(0, 3, (num_classes, num_classes)) + 30 * np.eye(
            num_classes, dtype=int
        )
        names = [f"class_{i}" for i in range(num_classes)]
        plot_class_report(class_report(matrix), names, tmp_path / f"{num_classes}.png", "f1")
    with Image.open(tmp_path / "10.png") as small, Image.open(tmp_path / "100.png") as large:
        assert large.width == 5 * small.width  # 101 rows: 5 panels of 21, none taller than 25


# misclassified images


def test_select_misclassified_keeps_wrong_most_confident_first():
    logits = torch.tensor(
        [
            [4.0, 0.0, 0.0],  # right
            [0.0, 1.0, 0.0],  # wrong, p=0.58
            [0.0, 0.0, 5.0],  # wrong, p=0.99
            [0.0, 1.0, 0.0],  # wrong, p=0.58: a tie, keeps its place after index 1
            [0.0, 3.0, 0.0],  # right
        ]
    )
    targets = torch.tensor([0, 0, 1, 2, 1])
    assert select_misclassified(logits, targets, max_images=10).tolist() == [2, 1, 3]
    assert select_misclassified(logits, targets, max_images=2).tolist() == [2, 1]
    assert select_misclassified(logits, torch.tensor([0, 1, 2, 1, 1]), 10).tolist() == []


@pytest.mark.parametrize("max_images", [0, -3, 2.5, True, "8"])
def test_misclassified_rejects_bad_max_images(max_images):
    message = f"max_images must be an integer >= 1, got {max_images!r}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        MisclassifiedGrid(max_images=max_images)


def test_images_for_display_undoes_normalization_or_min_max_scales():
    pixels = torch.rand(2, 3, 4, 5)  # (N, C, H, W) in [0, 1]
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    normalized = (pixels - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    shown = images_for_display(normalized, mean, std)
    assert shown.shape == (2, 4, 5, 3)
    np.testing.assert_allclose(shown, pixels.permute(0, 2, 3, 1).numpy(), atol=1e-6)
    scaled = images_for_display(torch.tensor([[[[-2.0, 0.0], [2.0, 6.0]]]]))
    np.testing.assert_allclose(scaled[0, ..., 0], [[0.0, 0.25], [0.5, 1.0]])


# templates


def test_linear_templates_one_scaled_image_per_class_in_order():
    weight = torch.randn(4, 3 * 5 * 6)
    weight[2] = 7.0  # a constant template becomes all zeros, not NaN
    templates = linear_templates(weight, in_channels=3, image_size=(5, 6))
    assert templates.shape == (4, 3, 5, 6)
    assert templates.min() >= 0 and templates.max() <= 1
    for k in (0, 1, 3):
        row = weight[k].reshape(3, 5, 6)
        torch.testing.assert_close(templates[k], (row - row.min()) / (row.max() - row.min()))
    assert torch.equal(templates[2], torch.zeros(3, 5, 6))


def test_templates_picture_wraps_rows_of_ten(tmp_path):
    sizes = {}
    for num_classes in (10, 12):
        templates = linear_templates(torch.randn(num_classes, 3 * 4 * 4), 3, (4, 4))  # colour
        plot_templates(templates, [f"class_{i}" for i in range(num_classes)], tmp_path / "t.png")
        with Image.open(tmp_path / "t.png") as image:
            sizes[num_classes] = image.size
    assert sizes[12][0] == sizes[10][0] and sizes[12][1] > sizes[10][1]


def test_linear_templates_warns_once_for_other_backbones(tmp_path):
    trainer = L.Trainer(logger=False, default_root_dir=tmp_path, enable_progress_bar=False)
    model = ImageClassifier("mlp", num_classes=10, in_channels=1, image_size=8)
    callback = LinearTemplates()
    message = "LinearTemplates: the backbone is a MLP, not a LinearClassifier on pixels"
    with pytest.warns(UserWarning, match=re.escape(message)):
        callback.on_fit_end(trainer, model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        callback.on_test_end(trainer, model)  # silent the second time
    assert not (tmp_path / "templates.png").exists()


# curves


def test_epoch_values_and_history_table():
    metrics = {"val/loss": torch.tensor(0.5), "val/acc": 0.75, "val/f1": 0.7}
    assert epoch_values(metrics, {"val_loss": "val/loss", "val_acc": "val/acc"}) == {
        "val_loss": 0.5,
        "val_acc": 0.75,
    }
    assert epoch_values(metrics, {"train_acc": "train/acc"}) == {}
    history = {1: {"train_loss": 1.0, "val_acc": 0.8}, 0: {"train_loss": 2.0, "train_acc": 0.5}}
    rows = history_table(history)
    assert CURVE_COLUMNS == ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")
    assert [row[0] for row in rows] == [0, 1]
    assert rows[0][:2] == [0, 2.0] and rows[0][3] == 0.5
    assert math.isnan(rows[0][2]) and math.isnan(rows[0][4]) and math.isnan(rows[1][2])
    assert rows[1][4] == 0.8


def test_learning_rates_names_each_group():
    first, second = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    adam = torch.optim.Adam([first], lr=0.01)
    assert learning_rates([adam]) == {"lr": 0.01}
    groups = torch.optim.SGD([{"params": [first]}, {"params": [second], "lr": 0.5}], lr=0.1)
    assert learning_rates([groups]) == {"lr_group0": 0.1, "lr_group1": 0.5}
    assert learning_rates([adam, groups]) == {
        "lr_opt0": 0.01,
        "lr_opt1_group0": 0.1,
        "lr_opt1_group1": 0.5,
    }


# one real run with every callback


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Fit a linear classifier on 8x8 digits for 2 epochs (validating at the 2nd only), test."""
    data = DigitsDataModule(image_size=8, batch_size=64)
    model = ImageClassifier(
        "linear", num_classes=10, in_channels=1, image_size=8, class_names=data.class_names
    )
    misclassified = MisclassifiedGrid()
    trainer = L.Trainer(
        max_epochs=2,
        check_val_every_n_epoch=2,  # epoch 0 has no validation, only the skipped sanity check
        logger=CSVLogger(tmp_path_factory.mktemp("run")),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[
            ClassReport(),
            misclassified,
            LinearTemplates(),
            TrainingCurves(),
            LearningRatePlot(),
        ],
    )
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, verbose=False)
    return trainer, model, misclassified, Path(trainer.log_dir)


def test_run_writes_real_pngs(run):
    folder = run[3]
    for name in PICTURES:
        _assert_png(folder / name)


def test_run_class_report_csv_matches_the_confusion_matrix(run):
    _, model, _, folder = run
    matrix = model.test_confusion.compute().numpy()
    rows = _read_csv(folder / "class_report.csv")
    assert [row["class"] for row in rows] == [str(i) for i in range(10)]
    assert sum(int(row["support"]) for row in rows) == 360
    recall = [float(row["recall"]) for row in rows]
    np.testing.assert_allclose(recall, matrix.diagonal() / matrix.sum(axis=1))


def test_run_misclassified_keeps_the_most_confident_mistakes(run):
    _, model, misclassified, _ = run
    matrix = model.test_confusion.compute()
    assert misclassified.num_wrong == int(matrix.sum() - matrix.trace())
    images, logits, targets = misclassified.kept
    assert len(images) == min(32, misclassified.num_wrong)
    assert images.shape[1:] == (1, 8, 8)
    # oracle: the same selection over the whole test set at once
    model.eval()
    with torch.no_grad():
        data = run[0].datamodule
        batches = [
            (model(data.transform_batch(x, train=False)), y) for x, y in data.test_dataloader()
        ]
    all_logits, all_targets = (torch.cat(part) for part in zip(*batches, strict=True))
    best = select_misclassified(all_logits, all_targets, 32)
    torch.testing.assert_close(logits, all_logits[best])
    assert torch.equal(targets, all_targets[best])


def test_run_training_curves_match_the_logged_metrics(run):
    folder = run[3]
    rows = _read_csv(folder / "training_curves.csv")
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert rows[0]["val_acc"] == "nan"  # the sanity check is not an epoch
    logged = _read_csv(folder / "metrics.csv")
    val_acc = [float(row["val/acc"]) for row in logged if row["val/acc"]]
    train_acc = [float(row["train/acc"]) for row in logged if row["train/acc"]]
    assert float(rows[1]["val_acc"]) == val_acc[0]
    assert [float(row["train_acc"]) for row in rows] == train_acc


def test_run_learning_rate_has_one_row_per_optimizer_step(run):
    trainer, _, _, folder = run
    rows = _read_csv(folder / "learning_rate.csv")
    assert trainer.global_step == 42  # 2 epochs of 21 batches
    assert [int(row["step"]) for row in rows] == list(range(42))
    assert {float(row["lr"]) for row in rows} == {1e-3}


# W&B


def test_pictures_and_tables_go_to_wandb_when_it_logs(tmp_path, monkeypatch):
    wandb = WandbLogger(offline=True, save_dir=tmp_path)
    calls = []
    monkeypatch.setattr(wandb, "log_image", lambda **kwargs: calls.append(("image", kwargs)))
    monkeypatch.setattr(wandb, "log_table", lambda **kwargs: calls.append(("table", kwargs)))
    trainer = L.Trainer(logger=[CSVLogger(tmp_path), wandb], enable_progress_bar=False)
    model = ImageClassifier("linear", num_classes=3, in_channels=1, image_size=8)
    model.test_confusion.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    ClassReport().on_test_epoch_end(trainer, model)
    folder = Path(trainer.loggers[0].log_dir)  # the CSV logger's run folder comes first
    _assert_png(folder / "class_report.png")
    image, table = calls
    assert image == (
        "image",
        {"key": "plots/class_report", "images": [str(folder / "class_report.png")]},
    )
    assert table[1]["key"] == "tables/class_report"
    assert table[1]["columns"] == ["class", "precision", "recall", "f1", "support"]
    assert table[1]["data"] == [
        ["0", 1.0, 1.0, 1.0, 1],
        ["1", 1.0, 0.5, 2 / 3, 2],
        ["2", 0.5, 1.0, 2 / 3, 1],
    ]
