"""DDP on two CPU processes through the CLI, checked against a test of the same split in one.

The data is real MNIST with its test split cut to 9,999 images: an odd count, so two ranks
cannot share it evenly, which is where distributed evaluation goes wrong if it does.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as L
import numpy as np
import pytest
import torch

from lightning_cv import ImageClassifier
from lightning_cv.data.mnist import IMAGES_MAGIC, LABELS_MAGIC, read_idx

from .conftest import REPO, SHARED_DATASETS
from .fakes import UncheckedMNIST, write_idx

MNIST_RAW = SHARED_DATASETS / "MNIST" / "raw"
TEST_IMAGES = 9_999
QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``lightning-cv args`` in a subprocess, one torch thread, with tests/ importable."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "lightning_cv", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=500,
    )  # fmt: skip


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory) -> Path:
    """``root/MNIST/raw``: the official training files (linked, read in place) and the first
    9,999 test images and labels, unpacked (read by UncheckedMNIST, which knows no MD5 of the
    unpacked content)."""
    if not MNIST_RAW.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the MNIST files are missing in {MNIST_RAW}")
        pytest.skip(f"the MNIST files are missing in {MNIST_RAW}")
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (raw / name).symlink_to(MNIST_RAW / name)
    for stem, magic, shape in (
        ("t10k-images-idx3-ubyte", IMAGES_MAGIC, (28, 28)),
        ("t10k-labels-idx1-ubyte", LABELS_MAGIC, ()),
    ):
        array = read_idx(MNIST_RAW / f"{stem}.gz", magic=magic, item_shape=shape, dataset="MNIST")
        write_idx(raw / stem, array[:TEST_IMAGES])
    return root


@pytest.fixture(scope="module")
def ddp_run(mnist_root, tmp_path_factory) -> Path:
    """``lightning-cv fit`` with two DDP ranks on the CPU and ``--test_after_fit true``."""
    cwd = tmp_path_factory.mktemp("ddp")
    args = [
        "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
        "--data", "tests.fakes.UncheckedMNIST", "--data.root", str(mnist_root),
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "20",
        "--trainer.limit_val_batches", "4", "--trainer.logger.name", "ddp", *QUICK,
    ]  # fmt: skip
    result = run_cli(args, cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "runs" / "ddp" / "version_0"


@pytest.fixture(scope="module")
def one_process(ddp_run, mnist_root) -> dict[str, float]:
    """The best checkpoint of the DDP run, tested on the same split in one process."""
    (best,) = (ddp_run / "checkpoints").glob("best-*.ckpt")
    model = ImageClassifier.load_from_checkpoint(best, weights_only=True)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (metrics,) = trainer.test(model, datamodule=UncheckedMNIST(mnist_root), verbose=False)
    finally:
        torch.set_num_threads(threads)
    return {**metrics, "evaluated": int(model.test_confusion.compute().sum())}


def ddp_metrics(run: Path) -> dict[str, float]:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    row = next(row for row in rows if row.get("test/acc"))
    matrix = np.loadtxt(
        run / "confusion_matrix.csv", delimiter=",", skiprows=1, usecols=range(1, 11)
    )
    return {
        "test/acc": float(row["test/acc"]),
        "test/loss": float(row["test/loss"]),
        "evaluated": int(matrix.sum()),
    }


def test_ddp_fit_writes_one_run_folder_and_a_loadable_best_checkpoint(ddp_run, one_process):
    assert sorted(path.name for path in ddp_run.parent.iterdir()) == ["version_0"]
    files = {str(path.relative_to(ddp_run)) for path in ddp_run.rglob("*") if path.is_file()}
    assert {"config.yaml", "metrics.csv", "checkpoints/last.ckpt"} <= files
    assert len([name for name in files if name.startswith("checkpoints/best-")]) == 1
    # two ranks evaluate at most one test image twice: the accuracies differ by <= 1/9,999
    assert abs(ddp_metrics(ddp_run)["test/acc"] - one_process["test/acc"]) <= 1 / TEST_IMAGES


def test_ddp_tests_each_image_once_as_one_process_does(ddp_run, one_process):
    ddp = ddp_metrics(ddp_run)
    assert one_process["evaluated"] == TEST_IMAGES
    assert ddp["evaluated"] == TEST_IMAGES
    assert ddp["test/acc"] == one_process["test/acc"]


def test_ddp_test_loss_is_the_mean_over_all_test_images(ddp_run, one_process):
    assert ddp_metrics(ddp_run)["test/loss"] == pytest.approx(one_process["test/loss"], abs=1e-6)


def test_ddp_ranks_train_on_disjoint_equal_shares_with_their_own_augmentation(mnist_root, tmp_path):
    probe = (
        "--trainer.callbacks+={class_path: tests.probes.RecordBatchPath, "
        f"init_args: {{folder: {tmp_path / 'probe'}}}}}"
    )
    args = [
        "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
        "--data", "MNISTDataModule", "--data.root", str(mnist_root),
        "--data.train_transform", "digits", "--trainer.accelerator", "cpu",
        "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_steps", "1",
        "--trainer.limit_val_batches", "0", "--test_after_fit", "false",
        "--trainer.logger.name", "probe", probe, *QUICK,
    ]  # fmt: skip
    result = run_cli(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = (
        torch.load(tmp_path / "probe" / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)
    )
    assert first["uses_batches"] and second["uses_batches"]
    shares = [set(record["samples"].tolist()) for record in (first, second)]
    assert len(shares[0]) == len(shares[1]) == 54_000 // 2  # 90% of 60,000 kept for training
    assert not shares[0] & shares[1]
    assert not torch.equal(first["augmented"], second["augmented"])
