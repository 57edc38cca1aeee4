"""The `lightning-cv` command: recipes, the run folder, linking, and one-line errors."""

import csv
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lightning_cv import DigitsDataModule, ImageClassifier
from lightning_cv.cli import main
from lightning_cv.zoo.pretrained import load

from .conftest import REPO, require_shared_datasets
from .fake_folders import write_image_folder

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_every_recipe_runs(recipe, monkeypatch, tmp_path_factory):
    """Each recipe, as written (real data sets come from $LIGHTNING_CV_DATA, see conftest)."""
    if recipe.stem == "finetune_folder":
        pytest.skip("needs --data.root: tests/test_finetune.py runs it on a fake image folder")
    if re.search(r"class_path: lightning_cv\.data\.(?!DigitsDataModule)", recipe.read_text()):
        require_shared_datasets()
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    before = sorted(REPO.iterdir())
    main(["fit", "--config", str(recipe), "--trainer.fast_dev_run", "true", *QUICK])
    assert sorted(REPO.iterdir()) == before, "a fast_dev_run must write no files"


def test_fit_writes_the_run_folder(in_tmp, capsys):
    main(
        [
            "fit",
            "--config", str(REPO / "recipes" / "quickstart.yaml"),
            "--trainer.max_epochs", "2",
            "--trainer.limit_train_batches", "8",
            *QUICK,
        ]
    )  # fmt: skip
    run = in_tmp / "runs" / "quickstart" / "version_0"
    files = {str(path.relative_to(run)) for path in run.rglob("*") if path.is_file()}
    assert {"config.yaml", "metrics.csv", "hparams.yaml", "checkpoints/last.ckpt"} <= files
    pictures = {"confusion_matrix", "class_report", "misclassified", "training_curves"}
    assert {f"{name}.png" for name in pictures} | {"learning_rate.csv"} <= files
    assert any(name.startswith("checkpoints/best-epoch") for name in files)

    data = DigitsDataModule(image_size=28)
    data.setup("fit")
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["split_fingerprint"] == data.hparams["split_fingerprint"]

    rows = list(csv.DictReader((run / "metrics.csv").open()))
    val_epochs = sorted({int(row["epoch"]) for row in rows if row.get("val/acc")})
    assert val_epochs == [0, 1]
    test_acc = float(next(row["test/acc"] for row in rows if row.get("test/acc")))

    matrix = np.loadtxt(
        run / "confusion_matrix.csv", delimiter=",", skiprows=1, usecols=range(1, 11)
    )
    assert matrix.sum() == 360
    assert matrix.trace() == round(test_acc * 360)

    out = capsys.readouterr().out
    assert f"test top-1 accuracy: {100 * test_acc:.2f}%" in out
    assert f"run folder: {Path('runs/quickstart/version_0')}" in out

    model = ImageClassifier.load_from_checkpoint(
        run / "checkpoints" / "last.ckpt", weights_only=True
    )
    assert model.hparams.image_size == 28 and model.class_names == list("0123456789")


def test_data_facts_are_linked_into_the_model(in_tmp):
    main(
        [
            "fit", "--data.image_size", "32", "--model.backbone", "linear",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", *QUICK,
        ]
    )  # fmt: skip
    checkpoint = next((in_tmp / "runs").rglob("last.ckpt"))
    hparams = torch.load(checkpoint, weights_only=True)["hyper_parameters"]
    assert (hparams["image_size"], hparams["in_channels"], hparams["num_classes"]) == (32, 1, 10)


def test_print_config_shows_the_resolved_recipe(in_tmp, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(REPO / "recipes" / "digits_lenet5.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "backbone: lenet5" in out and "class_path: lightning_cv.data.DigitsDataModule" in out
    assert "scheduler: step" in out and "optimizer: sgd" in out


def test_test_and_predict_reuse_a_recipe(in_tmp, capsys):
    recipe = str(REPO / "recipes" / "quickstart.yaml")
    main(
        [
            "fit",
            "--config",
            recipe,
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "2",
            *QUICK,
        ]
    )
    checkpoint = str(next((in_tmp / "runs").rglob("last.ckpt")))
    main(["test", "--config", recipe, "--ckpt_path", checkpoint, *QUICK])
    tested = re.search(r"test top-1 accuracy: ([\d.]+)%", capsys.readouterr().out)
    main(["predict", "--config", recipe, "--ckpt_path", checkpoint, *QUICK])
    predictions = list(csv.DictReader(next((in_tmp / "runs").rglob("predictions.csv")).open()))
    assert len(predictions) == 360  # the test split, in order, with its true class
    assert list(predictions[0]) == ["label"] + [
        f"{key}_{k}" for k in range(1, 6) for key in ("class", "prob")
    ]
    data = DigitsDataModule()
    data.setup("test")
    assert [row["label"] for row in predictions] == [
        str(label) for label in data.test_set.labels[data.test_set.indices]
    ]
    for row in predictions:
        probs = [float(row[f"prob_{k}"]) for k in range(1, 6)]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-5
    top1 = sum(row["class_1"] == row["label"] for row in predictions) / len(predictions)
    assert 100 * top1 == pytest.approx(float(tested[1]), abs=0.01)  # what `test` measured


def test_wandb_logger_offline(in_tmp):
    main(
        [
            "fit", "--trainer.logger", "WandbLogger", "--trainer.logger.project", "lcv-test",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", *QUICK,
        ]
    )  # fmt: skip
    offline_runs = list((in_tmp / "runs" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert list(offline_runs[0].glob("*.wandb")), "the offline run holds its history file"
    run_id = offline_runs[0].name.rsplit("-", 1)[1]
    run = in_tmp / "runs" / "lcv-test" / run_id
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.backbone", "nope"], "unknown model 'nope'; expected one of"),
        (["--model.lr", "-0.1"], "lr must be > 0, got -0.1"),
        (["--model.optimizer", "lbfgs"], "unknown optimizer 'lbfgs'; expected one of"),
        (
            ["--model.optimizer_kwargs", "{momentum: -1}", "--model.optimizer", "sgd"],
            "optimizer 'sgd': Invalid momentum value: -1",
        ),
        (["--data.image_size", "10"], "lenet5 needs image_size >= 12x12, got 10x10"),
        (["--data.batch_size", "0"], "batch_size must be >= 1, got 0"),
        (["--model.backbone_kwargs", "{depth: 3}"], "model 'lenet5' has no option ['depth']"),
    ],
)
def test_bad_values_end_with_one_line(args, message, in_tmp, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--trainer.fast_dev_run", "true", *QUICK])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"lightning-cv: error: {message}")


def test_console_script_is_installed(in_tmp):
    script = Path(sys.executable).with_name("lightning-cv")
    result = subprocess.run(
        [script, "fit", "--model.backbone", "nope"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("lightning-cv: error: unknown model")


def test_same_recipe_and_seed_give_identical_metrics(in_tmp):
    recipe = str(REPO / "recipes" / "digits_mlp.yaml")
    short = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "10", *QUICK]
    for _ in range(2):
        main(["fit", "--config", recipe, "--trainer.deterministic", "true", *short])
    first, second = (
        (in_tmp / "runs" / "digits_mlp" / version / "metrics.csv").read_text()
        for version in ("version_0", "version_1")
    )
    assert first == second and "val/acc" in first


def test_the_distribution_is_lightning_cv_zoo_and_installs_the_command():
    # `lightning-cv` on the package index is another project (cross validation on Fabric)
    distribution = importlib.metadata.distribution("lightning-cv-zoo")
    assert distribution.metadata["License-Expression"] == "MIT"
    # this checkout's pyproject, not the installed metadata (an editable install of another
    # checkout); tests/test_wheel.py runs the script of the wheel built from it
    scripts = '[project.scripts]\nlightning-cv = "lightning_cv.cli:main"\n\n'
    assert scripts in (REPO / "pyproject.toml").read_text()
    assert importlib.import_module("lightning_cv.cli").main is main


def test_a_run_without_a_logger_keeps_everything_in_its_own_run_folder(in_tmp, capsys):
    args = ["fit", "--config", "quickstart", "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "4", "--trainer.logger", "false", *QUICK]  # fmt: skip
    main(args)  # Lightning's LearningRateMonitor alone would refuse a run without a logger
    main(args)
    for version in (0, 1):
        run = in_tmp / "outputs" / f"version_{version}"
        files = {str(path.relative_to(run)) for path in run.rglob("*") if path.is_file()}
        assert {"config.yaml", "checkpoints/last.ckpt", "training_curves.png"} <= files
        assert any(name.startswith("checkpoints/best-epoch00") for name in files)
    assert not (in_tmp / "checkpoints").exists()  # Lightning's default, shared by such runs
    assert f"run folder: {in_tmp / 'outputs' / 'version_1'}" in capsys.readouterr().out


def test_a_run_that_fails_in_setup_leaves_no_empty_run_folder(in_tmp, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--data", "MNISTDataModule", "--data.root", str(in_tmp / "none"), *QUICK])
    assert "MNIST: missing" in capsys.readouterr().err
    assert list((in_tmp / "runs" / "lightning-cv").iterdir()) == []


def test_a_checkpoint_of_an_image_folder_predicts_with_its_computed_normalisation(in_tmp, capsys):
    write_image_folder(in_tmp / "pets", per_class=20, size=16)
    main([
        "fit", "--data", "ImageFolderDataModule", "--data.root", "pets", "--data.image_size", "16",
        "--trainer.max_epochs", "1", *QUICK,
    ])  # fmt: skip
    [checkpoint] = (in_tmp / "runs").rglob("last.ckpt")
    data = torch.load(checkpoint, weights_only=True)["ImageFolderDataModule"]
    pretrained = load(str(checkpoint))
    assert tuple(data["mean"]) == pretrained.preprocessing.mean and len(data["std"]) == 3
    rows = pretrained.predict(in_tmp / "pets" / "cat" / "0000.jpg", top_k=3)
    assert sorted(name for name, _ in rows) == ["bird", "cat", "dog"]


def test_our_defaults_cause_no_warnings(in_tmp, recwarn):
    """A recipe run with --test_after_fit, and a cross-validation with a final run on the
    whole training split (no validation), warn about nothing our configuration chose."""
    quick = ["--trainer.limit_train_batches", "3", *QUICK]
    main(["fit", "--config", "quickstart", "--trainer.max_epochs", "1", *quick])
    main(["cv", "--config", "digits_linear", "--num_folds", "2", "--grid", "{model.lr: [0.1]}",
          "--trainer.max_epochs", "1", *quick])  # fmt: skip
    shown = [w for w in recwarn if not issubclass(w.category, DeprecationWarning)]  # as users
    assert [str(w.message) for w in shown if "lightning" in w.filename] == []


def test_a_folders_own_validation_split_is_validated_with_val_fraction_zero(in_tmp):
    for split, count in (("train", 12), ("val", 4), ("test", 4)):
        write_image_folder(in_tmp / "pets" / split, per_class=count, size=16)
    args = ["--data", "ImageFolderDataModule", "--data.root", "pets", "--data.image_size", "16"]
    main(["fit", *args, "--data.val_fraction", "0", "--trainer.max_epochs", "1", *QUICK])
    checkpoints = sorted(p.name for p in (in_tmp / "runs").rglob("*.ckpt"))
    assert len(checkpoints) == 2 and checkpoints[0].startswith("best-epoch00-acc")
    main(["fit", "--data.val_fraction", "0", "--trainer.max_epochs", "1", *QUICK])  # digits
    assert len(list((in_tmp / "runs").rglob("last.ckpt"))) == 2
    assert len(list((in_tmp / "runs").rglob("best-*.ckpt"))) == 1  # no validation: last only
