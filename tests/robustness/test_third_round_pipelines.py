"""Bad input, third round (issue 26): pipelines. A flip meets data whose classes change when
mirrored, a step changes the size or channels or yields NaN, a normalisation divides by a std
of 0: each ends in one line naming it, through the ``lightning-cv`` command where a user meets
it, and the user's files stay byte-identical. A fit run's damaged ``config.yaml`` is never read
by ``zoo predict``, which needs the checkpoint alone.

The bad inputs are built in their real forms: albumentations YAML files, batch pipelines of
real kornia steps given on the command line, a checkpoint and config.yaml of a real fit run.
"""

import csv
import json
import shutil
from pathlib import Path

import albumentations as A
import kornia.augmentation as K
import numpy as np
import pytest
import torch
import yaml
from albumentations.pytorch import ToTensorV2
from PIL import Image

from lightning_cv import ConfigError, DigitsDataModule
from lightning_cv.callbacks import TestTimeAugmentation
from lightning_cv.cli import main
from lightning_cv.data import (
    BatchAugment,
    CIFAR10DataModule,
    HorizontalFlip,
    KMNISTDataModule,
    MNISTDataModule,
    RandomApply,
    SVHNDataModule,
    save_transform,
)
from lightning_cv.data.transforms import check_normalize, run_checked
from lightning_cv.zoo import load

from ..fake_folders import snapshot
from .test_second_round import FAST, one_line_error

NO_FLIP = ("mirrors the images, but {}'s classes change when mirrored (allows_flip = False); "
           "remove the flip")  # fmt: skip
TTA_FLIP = f"TestTimeAugmentation: flip=True {NO_FLIP.format('DigitsDataModule')}"
NO_RECORDED_TTA = ("last has no test-time augmentation: its recipe lists no TestTimeAugmentation "
                   "callback; predict without tta")  # fmt: skip


def batch_augment(*steps: dict) -> str:
    """A BatchAugment on the command line, as a recipe would give it: one JSON value."""
    return json.dumps({"class_path": "lightning_cv.data.BatchAugment",
                       "init_args": {"steps": list(steps)}})  # fmt: skip


def step(class_path: str, **init_args) -> dict:
    return {"class_path": class_path, "init_args": init_args}


def write_pipeline(path: Path, *steps) -> str:
    """An albumentations YAML file, as save_transform writes it."""
    save_transform(A.Compose([*steps, ToTensorV2()]), path)
    return str(path)


# ---------------------------------------------------------------- 4: the no-flip rule


@pytest.mark.parametrize("data", [MNISTDataModule, KMNISTDataModule, SVHNDataModule])
@pytest.mark.parametrize(
    ("flip", "mirror"),
    [(HorizontalFlip(), "HorizontalFlip"),
     (RandomApply(K.RandomHorizontalFlip(p=1.0)), "RandomHorizontalFlip")],
    ids=["HorizontalFlip", "RandomApply(RandomHorizontalFlip)"],
)  # fmt: skip
def test_a_batch_flip_on_digits_like_data_is_refused_at_construction(tmp_path, data, flip, mirror):
    with pytest.raises(ConfigError) as error:
        data(root=tmp_path, train_transform=BatchAugment([K.RandomAffine(5), flip]))
    assert str(error.value) == f"train_transform: {mirror} {NO_FLIP.format(data.__name__)}"
    assert not any(tmp_path.iterdir())


def test_a_flip_in_any_pipeline_on_the_digits_is_refused_in_one_line(in_tmp, capsys):
    flip = A.OneOf([A.HorizontalFlip()])
    flip_yaml = write_pipeline(in_tmp / "flip.yaml", A.Resize(28, 28), flip, A.Normalize())
    forms = {
        "batch steps": (batch_augment(step("lightning_cv.data.HorizontalFlip", p=0.5)),
                        "train_transform: HorizontalFlip"),
        "kornia batch steps": (batch_augment(step("kornia.augmentation.RandomVerticalFlip")),
                               "train_transform: RandomVerticalFlip"),
        "batch preset": ("cifar", "train_transform: HorizontalFlip"),
        "albumentations YAML": (flip_yaml, "train_transform: HorizontalFlip"),
    }  # fmt: skip
    before = snapshot(in_tmp)
    for spec, where in forms.values():
        args = ["fit", "--data.train_transform", spec, *FAST]
        assert one_line_error(capsys, args) == f"{where} {NO_FLIP.format('DigitsDataModule')}"
    assert snapshot(in_tmp) == before  # no run folder, the pipeline file untouched


def test_a_composed_sample_pipeline_with_a_flip_is_refused_at_setup():
    flips = A.Compose([A.Resize(28, 28), A.Transpose(), A.Normalize(), ToTensorV2()])
    data = DigitsDataModule(pipeline="sample", eval_transform=flips)
    with pytest.raises(ConfigError) as error:
        data.setup("test")
    assert str(error.value) == f"eval_transform: Transpose {NO_FLIP.format('DigitsDataModule')}"


def test_photos_keep_their_flips(tmp_path):
    flips = BatchAugment([HorizontalFlip(), RandomApply(K.RandomHorizontalFlip(p=1.0))])
    data = CIFAR10DataModule(root=tmp_path, train_transform=flips)
    assert data.train_transform is flips


def test_tta_flip_on_the_digits_is_refused_in_one_line(in_tmp, capsys):
    args = ["fit", "--trainer.callbacks+=TestTimeAugmentation",
            "--trainer.callbacks.flip", "true", *FAST]  # fmt: skip
    (in_tmp / "notes.txt").write_text("mine")  # cli.py removes an empty working folder
    before = snapshot(in_tmp)
    assert one_line_error(capsys, args) == TTA_FLIP
    assert snapshot(in_tmp) == before


# ---------------------------------------------------------------- a real fit run's checkpoint


@pytest.fixture(scope="module")
def fit_run_folder(tmp_path_factory) -> Path:
    """A real `lightning-cv fit` run on the digits (8x8, linear, one batch): its folder."""
    root = tmp_path_factory.mktemp("fit_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # the run folder lands in runs/ below the working folder
        main(["fit", "--model.backbone", "linear", "--data.image_size", "8",
              "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
              "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false"])  # fmt: skip
    return root / "runs" / "lightning-cv" / "version_0"


@pytest.fixture
def fit_run(fit_run_folder, tmp_path) -> tuple[Path, Path]:
    """A copy of the fit run (its last.ckpt, config.yaml) and a folder of two digit images."""
    run = shutil.copytree(fit_run_folder, tmp_path / "run")
    images = tmp_path / "images"
    images.mkdir()
    for index in range(2):
        Image.fromarray(np.full((8, 8), 40 * index, dtype=np.uint8)).save(images / f"{index}.png")
    return run / "checkpoints" / "last.ckpt", images


def test_a_tta_in_the_runs_config_is_ignored_the_checkpoints_record_decides(fit_run, capsys):
    """Test-time augmentation comes from the checkpoint's preprocessing record, never from
    the run folder's config.yaml: a TTA added there afterwards changes nothing."""
    checkpoint, images = fit_run
    config = checkpoint.parent.parent / "config.yaml"
    text = yaml.safe_load(config.read_text())
    text["trainer"]["callbacks"] = [{"class_path": "lightning_cv.callbacks.TestTimeAugmentation",
                                     "init_args": {"flip": True, "shifts": 1}}]  # fmt: skip
    config.write_text(yaml.safe_dump(text))
    output = images.parent / "predictions.csv"
    before = snapshot(images.parent)
    args = ["zoo", "predict", str(checkpoint), str(images), "--tta", "true",
            "--output", str(output)]  # fmt: skip
    assert one_line_error(capsys, args) == NO_RECORDED_TTA
    assert snapshot(images.parent) == before
    pretrained = load(checkpoint)
    assert pretrained.preprocessing.tta is None
    with pytest.raises(ConfigError) as error:
        pretrained.predict(images / "0.png", tta=True)
    assert str(error.value) == NO_RECORDED_TTA
    assert pretrained.predict(images / "0.png", top_k=1)[0][0] in pretrained.class_names


def test_the_tta_callback_checks_the_data_it_is_given():
    callback = TestTimeAugmentation(flip=True)
    with pytest.raises(ConfigError) as error:
        callback.check_data(DigitsDataModule())
    assert str(error.value) == TTA_FLIP
    TestTimeAugmentation(shifts=1).check_data(DigitsDataModule())  # shifts only: accepted


# ---------------------------------------------------------------- 9: steps that break the input


BREAKING_BATCH_STEPS = [
    ("channels", "train_transform", [step("kornia.color.GrayscaleToRgb")],
     "train_transform step 1 (GrayscaleToRgb): output (B, 3, 28, 28) but the model expects "
     "(B, 1, 28, 28)"),
    ("size", "train_transform",
     [step("kornia.augmentation.RandomAffine", degrees=10), step("kornia.augmentation.Resize",
                                                                 size=[16, 16])],
     "train_transform step 2 (Resize): output (B, 1, 16, 16) but the model expects "
     "(B, 1, 28, 28)"),
    ("infinite", "train_transform",
     [step("kornia.augmentation.Normalize", mean=0.0, std=1e-40)],
     "train_transform step 1 (Normalize): output NaN or infinite values but the model expects "
     "finite values"),
    ("eval-size", "eval_transform", [step("kornia.augmentation.Resize", size=[16, 16])],
     "eval_transform step 1 (Resize): output (B, 1, 16, 16) but the model expects "
     "(B, 1, 28, 28)"),
]  # fmt: skip


@pytest.mark.parametrize(("option", "steps", "message"), [c[1:] for c in BREAKING_BATCH_STEPS],
                         ids=[c[0] for c in BREAKING_BATCH_STEPS])  # fmt: skip
def test_a_batch_step_that_breaks_the_input_is_named_on_the_first_batch(
    in_tmp, capsys, option, steps, message
):
    (in_tmp / "notes.txt").write_text("mine")
    before = snapshot(in_tmp)
    args = ["fit", f"--data.{option}", batch_augment(*steps), *FAST]
    assert one_line_error(capsys, args) == message
    assert snapshot(in_tmp) == before


def test_the_first_batch_is_checked_once_per_stage_and_augmented_as_every_other():
    data = DigitsDataModule(batch_size=8, train_transform=BatchAugment([K.RandomAffine(10)]))
    data.setup("fit")
    uint8, _ = next(iter(data.train_dataloader()))
    torch.manual_seed(0)
    checked = data.transform_batch(uint8, train=True)  # the first: step by step
    torch.manual_seed(0)
    assert torch.equal(data.transform_batch(uint8, train=True), checked)  # then: all at once
    assert data.active_pipeline.checked_stages == {"train"}


BREAKING_SAMPLE_STEPS = [
    ("size", [A.Resize(16, 16), A.Normalize(mean=0.5, std=0.25)],
     "train_transform step 1 (Resize): output (1, 16, 16) but the model expects (1, 28, 28)"),
    ("channels", [A.ToRGB(), A.Normalize()],
     "train_transform step 1 (ToRGB): output (3, 28, 28) but the model expects (1, 28, 28)"),
    ("no-normalize", [A.Resize(28, 28)],
     "train_transform (no step changes the input's dtype): output dtype torch.uint8 but the "
     "model expects dtype torch.float32"),
]  # fmt: skip


@pytest.mark.parametrize(("steps", "message"), [c[1:] for c in BREAKING_SAMPLE_STEPS],
                         ids=[c[0] for c in BREAKING_SAMPLE_STEPS])  # fmt: skip
def test_a_sample_step_that_breaks_the_input_is_named_at_setup(in_tmp, capsys, steps, message):
    pipeline = write_pipeline(in_tmp / "augment.yaml", *steps)
    before = snapshot(in_tmp)
    args = ["fit", "--data.train_transform", pipeline, *FAST]
    assert one_line_error(capsys, args) == message
    assert snapshot(in_tmp) == before


def test_a_grey_sample_of_any_layout_passes_the_check():
    image = np.zeros((8, 8), dtype=np.uint8)  # (H, W): albumentations keeps it two-dimensional
    pipeline = A.Compose([A.Normalize(mean=0.5, std=0.5), ToTensorV2()])
    output = run_checked("eval_transform", pipeline.transforms, image, channels=1, size=(8, 8),
                         batch=False)  # fmt: skip
    assert output.shape == (1, 8, 8) and output.dtype == torch.float32


# ---------------------------------------------------------------- 12: a std of 0


def test_a_std_of_0_in_a_yaml_eval_transform_is_refused_by_name(in_tmp, capsys):
    write_pipeline(in_tmp / "eval.yaml", A.Resize(28, 28), A.Normalize(mean=0.5, std=0))
    before = snapshot(in_tmp)
    message = (
        "transform file 'eval.yaml': Normalize std [0.0] divides by zero; expected std > 0 in "
        "every channel"
    )
    assert one_line_error(capsys, ["fit", "--data.eval_transform", "eval.yaml", *FAST]) == message
    assert snapshot(in_tmp) == before


def test_a_std_of_0_in_batch_steps_is_refused_at_construction(in_tmp, capsys):
    (in_tmp / "notes.txt").write_text("mine")
    normalize = step("kornia.augmentation.Normalize", mean=[0.5], std=[0.0])
    args = ["fit", "--data.eval_transform", batch_augment(normalize), *FAST]
    message = (
        "eval_transform: Normalize std [0.0] divides by zero; expected std > 0 in every channel"
    )
    assert one_line_error(capsys, args) == message
    nested = BatchAugment([RandomApply(K.Normalize(mean=0.5, std=float("nan")))])
    with pytest.raises(ConfigError) as error:
        DigitsDataModule(train_transform=nested)
    assert str(error.value) == (
        "train_transform: Normalize std [nan] divides by zero; expected std > 0 in every channel"
    )


def test_a_std_of_0_in_a_composed_eval_transform_is_refused_at_setup():
    eval_transform = A.Compose([A.Normalize(mean=(0.5,), std=(0.0,)), ToTensorV2()])
    data = DigitsDataModule(pipeline="sample", eval_transform=eval_transform)
    with pytest.raises(ConfigError) as error:
        data.setup("test")
    assert str(error.value) == (
        "eval_transform: Normalize std [0.0] divides by zero; expected std > 0 in every channel"
    )


def test_every_backends_normalisation_is_read():
    # kornia keeps K.Normalize's std in `flags`: this fails loudly if a kornia release moves it
    import kornia

    for normalize in (A.Normalize(mean=0, std=1e-3), K.Normalize(mean=0.0, std=1e-3),
                      kornia.enhance.Normalize(mean=0.0, std=1e-3)):  # fmt: skip
        check_normalize(normalize, source="x")
    for normalize in (K.Normalize(mean=0.0, std=-1.0), kornia.enhance.Normalize(0.0, -1.0)):
        with pytest.raises(ConfigError, match=r"^x: Normalize std \[-1.0\] divides by zero"):
            check_normalize(normalize, source="x")


# ---------------------------------------------------------------- 11: a damaged run config

# zoo predict reads the checkpoint alone (issue 22): whatever lies in the run's config.yaml,
# even a YAML tag that would run a command, is never opened, and the prediction goes ahead
DAMAGED_CONFIGS = {
    "malformed": "data: {class_path: lightning_cv.data.DigitsDataModule\nmodel: {}\n",
    "python-tag": "data: !!python/object/apply:os.system ['echo hacked > hacked']\n",
    "a-list": "- data\n- model\n",
    "empty": "",
    "data-a-string": "data: digits\n",
    "trainer-a-list": "data: {class_path: lightning_cv.data.DigitsDataModule}\ntrainer: [1]\n",
}


@pytest.mark.parametrize("text", DAMAGED_CONFIGS.values(), ids=DAMAGED_CONFIGS.keys())
def test_zoo_predict_never_reads_the_run_config(in_tmp, fit_run, capsys, text):
    checkpoint, images = fit_run
    config = checkpoint.parent.parent / "config.yaml"
    config.write_text(text)
    output = images.parent / "predictions.csv"
    main(["zoo", "predict", str(checkpoint), str(images), "--top_k", "1", "--output", str(output)])
    with open(output, newline="") as file:
        rows = list(csv.DictReader(file))
    assert sorted(Path(row["path"]).name for row in rows) == ["0.png", "1.png"]
    assert all(row["class_1"] in load(checkpoint).class_names for row in rows)
    assert config.read_text() == text and capsys.readouterr().err == ""
    assert not (images.parent / "hacked").exists() and not (in_tmp / "hacked").exists()
