"""Bad checkpoint files and checkpoints of another model: one clear line, the file untouched.

Without the checked loader (``lightning_cv._checkpoint.read_checkpoint``) each of these would
end in a traceback from ``torch.load`` or ``load_state_dict``.
"""

from pathlib import Path

import lightning.pytorch as L
import pytest
import torch

from lightning_cv import ImageClassifier
from lightning_cv.cli import main
from lightning_cv.data import DigitsDataModule
from lightning_cv.errors import ConfigError

from ..fake_folders import write_image_folder

QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
NOT_TORCH = "is not a complete PyTorch file (truncated, or not written by torch.save)"
NOT_LIGHTNING = (
    "is not a Lightning checkpoint (no 'state_dict' and 'pytorch-lightning_version'); "
    "expected a file written by lightning-cv fit"
)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A LeNet-5 checkpoint of the digits after one optimizer step."""
    model = ImageClassifier("lenet5", num_classes=10, in_channels=1, image_size=28)
    trainer = L.Trainer(
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DigitsDataModule(batch_size=8))
    path = tmp_path_factory.mktemp("checkpoints") / "lenet5.ckpt"
    trainer.save_checkpoint(path)
    return path


def half(path: Path, good: Path) -> None:
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])


# (id, how the file at ``path`` is written from the good checkpoint, message after the path)
BAD_FILES = [
    ("missing", lambda path, good: None, "does not exist"),
    ("empty", lambda path, good: path.write_bytes(b""), "is empty (0 bytes)"),
    ("truncated", half, NOT_TORCH),
    ("text", lambda path, good: path.write_text("epoch=3, acc=0.97\n"), NOT_TORCH),
    ("plain-dict", lambda path, good: torch.save({"weights": torch.zeros(3)}, path), NOT_LIGHTNING),
    ("bare-state-dict", lambda path, good: torch.save(
        torch.load(good, weights_only=True)["state_dict"], path), NOT_LIGHTNING),
]  # fmt: skip


def bad_file(write, folder: Path, good: Path) -> tuple[Path, bytes | None]:
    path = folder / "model.ckpt"
    write(path, good)
    return path, path.read_bytes() if path.exists() else None


@pytest.mark.parametrize(
    ("write", "problem"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES]
)
def test_lightning_cv_test_names_a_bad_checkpoint(write, problem, good, in_tmp, capsys):
    path, before = bad_file(write, in_tmp, good)
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "--ckpt_path", str(path), *QUICK])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line == f"lightning-cv: error: checkpoint {str(path)!r} {problem}"
    assert (path.read_bytes() if path.exists() else None) == before


@pytest.mark.parametrize(
    ("write", "problem"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES]
)
def test_load_from_checkpoint_names_a_bad_checkpoint(write, problem, good, tmp_path):
    path, before = bad_file(write, tmp_path, good)
    with pytest.raises(ConfigError) as error:
        ImageClassifier.load_from_checkpoint(path, weights_only=True)
    assert str(error.value) == f"checkpoint {str(path)!r} {problem}"
    assert (path.read_bytes() if path.exists() else None) == before


MISFIT = "the checkpoint's weights do not fit this model ({model}): {difference}"
FIRST_CONV = "'backbone.features.0.weight' is (6, 1, 5, 5) in the checkpoint"
FEWER_CLASSES = (
    "backbone='lenet5', num_classes=3, in_channels=1, image_size=28",
    "'backbone.head.weight' is (10, 84) in the checkpoint, (3, 84) in this model",
)


@pytest.mark.parametrize(
    ("options", "model", "difference"),
    [
        ({"backbone": "mlp"}, "backbone='mlp', num_classes=10, in_channels=1, image_size=28",
         f"{FIRST_CONV}, (300, 784) in this model"),
        ({"num_classes": 3}, *FEWER_CLASSES),
        ({"in_channels": 3}, "backbone='lenet5', num_classes=10, in_channels=3, image_size=28",
         f"{FIRST_CONV}, (6, 3, 5, 5) in this model"),
    ],
    ids=["other-backbone", "other-class-count", "other-channels"],
)  # fmt: skip
def test_a_checkpoint_of_another_model_is_named(options, model, difference, good):
    before = good.read_bytes()
    with pytest.raises(ConfigError) as error:
        ImageClassifier.load_from_checkpoint(good, weights_only=True, **options)
    assert str(error.value) == MISFIT.format(model=model, difference=difference)
    assert good.read_bytes() == before


def test_testing_a_checkpoint_on_data_with_other_classes_ends_in_one_line(good, in_tmp, capsys):
    write_image_folder(in_tmp / "photos", per_class=5, size=28)  # 3 classes, not 10
    before = good.read_bytes()
    args = ["--data", "ImageFolderDataModule", "--data.root", str(in_tmp / "photos")]
    args += ["--data.in_channels", "1", "--data.image_size", "28"]
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "--ckpt_path", str(good), *args, *QUICK])
    assert exit_info.value.code == 2
    model, difference = FEWER_CLASSES
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line == "lightning-cv: error: " + MISFIT.format(model=model, difference=difference)
    assert good.read_bytes() == before
