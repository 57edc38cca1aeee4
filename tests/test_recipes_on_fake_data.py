"""Every bundled recipe runs (``lightning-cv fit --config RECIPE --trainer.fast_dev_run true``) on
fake data in the real on-disk format, with or without the real data sets: IDX gz files for
MNIST and Fashion-MNIST, CIFAR-10 python batches, an image folder for fine-tuning (whose zoo
weights are the bundled checkpoint); the digits ship with scikit-learn.

The fakes' MD5s stand in for the official ones, as torchvision's dataset tests do.
"""

from pathlib import Path

import pytest
import yaml

from lightning_cv.cli import main
from lightning_cv.data import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule

from .conftest import REPO
from .fake_folders import write_cifar10_batches, write_image_folder
from .fakes import fake_split, md5_table, write_idx_dataset

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
IDX_SIZES = {"train": 200, "test": 50}  # 20 validation images: every class on both sides
# --data.root under the fake root, per data module: the digits ship with scikit-learn
ROOTS = {"DigitsDataModule": None, "ImageFolderDataModule": "photos"}
FAKED = {"MNISTDataModule", "FashionMNISTDataModule", "CIFAR10DataModule", *ROOTS}


def data_class(recipe: Path) -> str:
    """The recipe's data module class name, e.g. ``MNISTDataModule``."""
    return yaml.safe_load(recipe.read_text())["data"]["class_path"].rsplit(".", 1)[-1]


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory) -> Path:
    """One folder holding every fake data set a recipe reads."""
    root = tmp_path_factory.mktemp("fake_data")
    for module in (MNISTDataModule, FashionMNISTDataModule):
        write_idx_dataset(root, module.folder, sizes=IDX_SIZES)
    images, labels = fake_split(200, (32, 32, 3), seed=1)  # test batch: the first ten
    write_cifar10_batches(root, images, labels.tolist())
    write_image_folder(root / "photos", per_class=10, size=40)
    return root


@pytest.fixture
def fake_md5s(fake_root, monkeypatch) -> None:
    """The data modules check their files against the fakes' MD5s instead of the official."""
    for module in (MNISTDataModule, FashionMNISTDataModule):
        monkeypatch.setattr(module, "md5s", md5_table(fake_root / module.folder / "raw"))
    md5s = md5_table(fake_root / CIFAR10DataModule.base_folder)
    for batches in ("train_list", "test_list"):
        names = [name for name, _ in getattr(CIFAR10DataModule, batches)]
        monkeypatch.setattr(CIFAR10DataModule, batches, [[name, md5s[name]] for name in names])


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_every_recipe_runs_on_fake_data(recipe, fake_root, fake_md5s, in_tmp, monkeypatch):
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(in_tmp / "home"))  # caches: stats, zoo files
    folder = ROOTS.get(data_class(recipe), "")
    args = [] if folder is None else ["--data.root", str(fake_root / folder)]
    before = {path: path.read_bytes() for path in fake_root.rglob("*") if path.is_file()}
    main(["fit", "--config", str(recipe), "--trainer.fast_dev_run", "true", *args, *QUICK])
    assert not (in_tmp / "runs").exists(), "a fast_dev_run writes no run folder"
    assert {path: path.read_bytes() for path in before} == before  # the data are only read


def test_every_data_module_of_the_recipes_has_a_fake():
    """A recipe on a data set with no fake here fails by name (add its writer above)."""
    assert {data_class(recipe) for recipe in RECIPES} <= FAKED
