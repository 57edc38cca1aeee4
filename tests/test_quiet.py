"""What the commands print: their own lines, never Lightning's notices (devices found, seed
set, tips, the model table), one line for an error, one line per cross-validation fold; and
the predictions CSV of a labelled folder."""

import re

import pytest

from lightning_cv.cli import main

from .conftest import REPO

NOTICES = ("GPU available", "TPU available", "Tip:", "Seed set", "Restoring states", "| Name")
FEW = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
       "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"]  # fmt: skip


def no_notices(text: str) -> bool:
    return not any(notice in text for notice in NOTICES)


def test_fit_prints_a_header_its_result_and_its_run_folder(in_tmp, capfd):
    main(["fit", "--config", str(REPO / "recipes" / "quickstart.yaml"), *FEW,
          "--test_after_fit", "true"])  # fmt: skip
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert lines[0] == (
        "fit: lenet5 (61,706 parameters) on DigitsDataModule (1,293 training, 144 validation "
        "images), 1 epoch on cpu; run folder runs/quickstart/version_0"
    )
    assert re.fullmatch(r"test top-1 accuracy: \d+\.\d\d%", lines[1])
    assert lines[2] == "run folder: runs/quickstart/version_0"
    assert no_notices(out + err), out + err
    assert "Test metric" not in out  # the table is for `lightning-cv test`


def test_a_wrong_data_root_is_the_one_line_printed(in_tmp, capfd):
    with pytest.raises(SystemExit):
        main(["fit", "--data", "MNISTDataModule", "--data.root", "nowhere"])
    out, err = capfd.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "lightning-cv: error: MNIST: missing ['train-images-idx3-ubyte.gz', "
        "'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'] "
        "in 'nowhere/MNIST/raw'; pass download=True (or --data.download true) or copy the "
        "official files there"
    ]


def test_cv_prints_one_line_per_fold_then_its_table(in_tmp, capfd):
    grid = "{model.lr: [0.001, 0.003]}"
    main(["cv", "--config", str(REPO / "recipes" / "quickstart.yaml"), "--num_folds", "3",
          "--grid", grid, *FEW])  # fmt: skip
    out, err = capfd.readouterr()
    lines = out.splitlines()
    folds = [f"model.lr={lr}, fold {k}/3: val/acc " for lr in (0.001, 0.003) for k in (1, 2, 3)]
    for line, start in zip(lines[:6], folds, strict=True):
        assert line.startswith(start) and re.fullmatch(r"\d\.\d{4}", line.removeprefix(start))
    assert lines[6].startswith("model.lr=0.001: val/acc ")
    assert lines[7].startswith("model.lr=0.003: val/acc ")
    assert lines[8].startswith("best: model.lr=")
    assert lines[9] == "training on the whole training split with it, then testing once"
    assert lines[10].startswith("fit: lenet5 ")  # then the final run's result and folder
    assert no_notices(out + err), out + err


def test_zoo_predict_prints_its_predictions_only(in_tmp, capfd):
    from PIL import Image

    Image.new("L", (28, 28), 0).save(in_tmp / "blank.png")
    main(["zoo", "predict", "lenet5.mnist", "blank.png"])
    out, err = capfd.readouterr()
    assert out.splitlines()[0] == "blank.png" and out.splitlines()[-1] == "wrote predictions.csv"
    assert no_notices(out + err), out + err


def test_zoo_predict_labels_folders_named_by_class_index_or_name(in_tmp, capfd):
    from PIL import Image

    for folder in ("7", "3 - three"):  # MNIST's classes are "0 - zero" ... "9 - nine"
        (in_tmp / "digits" / folder).mkdir(parents=True)
        Image.new("L", (28, 28), 0).save(in_tmp / "digits" / folder / "blank.png")
    main(["zoo", "predict", "lenet5.mnist", "digits", "--output", "labelled.csv"])
    rows = (in_tmp / "labelled.csv").read_text().splitlines()
    assert rows[0].startswith("path,label,class_1,")
    assert [row.split(",")[1] for row in rows[1:]] == ["3 - three", "7 - seven"]


def test_a_resumed_run_names_its_checkpoint_in_the_header(in_tmp, capfd):
    recipe = ["fit", "--config", str(REPO / "recipes" / "quickstart.yaml"), *FEW,
              "--model.scheduler", "null"]  # fmt: skip
    main(recipe)
    capfd.readouterr()
    main([*recipe, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    out, err = capfd.readouterr()
    assert out.splitlines()[0].endswith(
        "; run folder runs/quickstart/version_0, resumed from "
        "runs/quickstart/version_0/checkpoints/last.ckpt"
    )
    assert no_notices(out + err), out + err
