"""Bad input, second round: each class of mistake ends in one line naming it, through the
``lightning-cv`` command where a user meets it, and the user's files stay byte-identical.

The bad inputs are built in their real on-disk formats (albumentations YAML, Lightning
checkpoints, image folders).
"""

import errno
import gzip
import hashlib
import logging
import os
import re
import struct
import subprocess
import tarfile
from pathlib import Path
from unittest import mock

import albumentations as A
import lightning.pytorch as L
import numpy as np
import pytest
import torch
import yaml
from albumentations.pytorch import ToTensorV2
from fsspec.implementations import local as fsspec_local
from PIL import Image

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier
from lightning_cv._checkpoint import read_checkpoint as zoo_read_checkpoint
from lightning_cv.cli import main
from lightning_cv.data import (
    CIFAR10DataModule,
    CSVDataModule,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    KMNISTDataModule,
    MNISTDataModule,
    load_transform,
    save_transform,
)
from lightning_cv.data._files import safe_extract
from lightning_cv.data.cifar import CIFAR10_CLASSES
from lightning_cv.data.transforms import transform_from_dict
from lightning_cv.errors import NonFiniteLossError
from lightning_cv.zoo import get_entry
from lightning_cv.zoo.evaluate import build_datamodule

from ..conftest import REPO, require_shared_datasets
from ..fake_folders import snapshot, write_image_folder
from .disks import mount_tmpfs, unavailable

FAST = [
    "--trainer.fast_dev_run", "true",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip


def one_line_error(capsys, args: list[str]) -> str:
    """Run ``lightning-cv args``; it must exit 2 with one line on stderr, returned."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0].removeprefix("lightning-cv: error: ")


# ---------------------------------------------------------------- 7: transform YAML files


def pipeline_dict(*steps) -> dict:
    return A.to_dict(A.Compose([A.Resize(28, 28), *steps]))


VALID = A.to_dict(A.Compose([A.Resize(28, 28), A.Normalize(), ToTensorV2()]))
UNKNOWN = yaml.safe_load(yaml.safe_dump(VALID))
UNKNOWN["transform"]["transforms"][0]["__class_fullname__"] = "Sharpenify"
NEGATIVE = yaml.safe_load(yaml.safe_dump(VALID))
NEGATIVE["transform"]["transforms"][0]["height"] = -5

BAD_TRANSFORMS = [
    ("unknown-name", yaml.safe_dump(UNKNOWN),
     "unknown transform 'Sharpenify'; expected an albumentations class name"),
    ("a-list", "- Resize\n- Normalize\n",
     "holds a list; expected an albumentations pipeline (a mapping with a 'transform' entry, "
     "as written by save_transform)"),
    ("empty", "", "holds an empty file; expected an albumentations pipeline"),
    ("negative-size", yaml.safe_dump(NEGATIVE),
     "invalid parameter height=-5: Input should be greater than or equal to 1"),
    ("no-tensor", yaml.safe_dump(pipeline_dict(A.HorizontalFlip())),
     "does not end in ToTensorV2; a pipeline must map an image to a tensor"),
    ("python-tag", "transform: !!python/object/apply:os.system ['echo hacked']\n",
     "YAML tags are not allowed (could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object/apply:os.system')"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in BAD_TRANSFORMS],
                         ids=[c[0] for c in BAD_TRANSFORMS])  # fmt: skip
def test_a_transform_file_that_is_not_a_pipeline_ends_in_one_line(in_tmp, capsys, text, message):
    (in_tmp / "augment.yaml").write_text(text)
    before = snapshot(in_tmp)
    args = ["fit", "--data.train_transform", "augment.yaml", *FAST]
    assert message in one_line_error(capsys, args)
    assert snapshot(in_tmp) == before
    assert not (in_tmp / "hacked").exists()


def test_an_empty_transform_file_is_refused_by_name(tmp_path):
    # also from Python (the command line's case is in the table above: jsonargparse reads an
    # empty file as null, which the option's type does not admit, so the path itself arrives)
    (tmp_path / "empty.yaml").write_text("")
    message = "holds an empty file; expected an albumentations pipeline"
    with pytest.raises(ConfigError, match=message):
        load_transform(tmp_path / "empty.yaml")


def test_a_valid_transform_file_still_loads_and_round_trips(tmp_path):
    pipeline = A.from_dict(VALID)
    save_transform(pipeline, tmp_path / "ok.yaml")
    assert A.to_dict(load_transform(tmp_path / "ok.yaml")) == A.to_dict(pipeline)


def test_a_zoo_manifest_transform_is_checked_the_same_way():
    with pytest.raises(
        ConfigError, match="zoo entry 'x' transform: unknown transform 'Sharpenify'"
    ):
        transform_from_dict(UNKNOWN, source="zoo entry 'x' transform")


# ---------------------------------------------------------------- 5: class folders behind links


def test_a_dangling_class_folder_link_is_refused_by_name(tmp_path):
    root = tmp_path / "photos"
    write_image_folder(root, ("cat", "dog"), per_class=3)
    (root / "fox").symlink_to(tmp_path / "gone")
    before = snapshot(tmp_path)
    message = f"class folder {str(root / 'fox')!r} is a link to {str(tmp_path / 'gone')!r}"
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ImageFolderDataModule(root, image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert snapshot(tmp_path) == before


def test_a_dangling_image_link_inside_a_class_folder_is_refused_by_name(tmp_path):
    root = tmp_path / "photos"
    write_image_folder(root, ("cat", "dog"), per_class=3)
    (root / "cat" / "lost.jpg").symlink_to(tmp_path / "lost.jpg")
    message = f"image file {str(root / 'cat' / 'lost.jpg')!r} is a link to"
    with pytest.raises(ConfigError, match=message):
        ImageFolderDataModule(root, image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_class_folder_is_refused_by_name(tmp_path):
    root = tmp_path / "photos"
    write_image_folder(root, ("cat", "dog"), per_class=3)
    (root / "dog").chmod(0)
    try:
        with pytest.raises(ConfigError, match=f"cannot read class folder {str(root / 'dog')!r}"):
            ImageFolderDataModule(root, image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3)
    finally:
        (root / "dog").chmod(0o755)


# ---------------------------------------------------------------- 3: non-finite weights and data


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A real ImageClassifier checkpoint: one short fit on the digits."""
    folder = tmp_path_factory.mktemp("trained")
    model = ImageClassifier("linear", num_classes=10, in_channels=1, image_size=28)
    trainer = L.Trainer(max_steps=2, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=folder)  # fmt: skip
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    trainer.save_checkpoint(folder / "good.ckpt")
    return folder / "good.ckpt"


def poisoned(source: Path, target: Path) -> Path:
    """``source`` with one NaN in the classifier's weight, saved as a real checkpoint."""
    checkpoint = torch.load(source, weights_only=True)
    checkpoint["state_dict"]["backbone.head.weight"][3, 5] = float("nan")
    torch.save(checkpoint, target)
    return target


def test_a_checkpoint_with_nan_weights_is_refused_when_read(trained_checkpoint, in_tmp, capsys):
    bad = poisoned(trained_checkpoint, in_tmp / "bad.ckpt")
    before = snapshot(in_tmp)
    message = (
        f"checkpoint {str(bad)!r}: weight 'backbone.head.weight' holds 1 NaN/inf value(s) of 7840"
    )
    assert one_line_error(capsys, ["test", "--ckpt_path", str(bad), *FAST]).startswith(message)
    with pytest.raises(ConfigError, match=re.escape(message)):
        ImageClassifier.load_from_checkpoint(bad, weights_only=True)
    with pytest.raises(ConfigError, match=re.escape(message)):
        zoo_read_checkpoint(bad)  # what zoo register, predict and load read with
    assert snapshot(in_tmp) == before


def test_nan_scores_stop_evaluation_naming_the_batch(trained_checkpoint):
    model = ImageClassifier.load_from_checkpoint(trained_checkpoint, weights_only=True)
    with torch.no_grad():
        model.backbone.head.bias[2] = float("inf")
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    message = "test stopped: the model's scores are NaN or infinite from test batch 0 on"
    with pytest.raises(NonFiniteLossError, match=message):
        trainer.test(model, datamodule=DigitsDataModule(batch_size=64), verbose=False)


def test_a_constant_channel_is_refused_before_it_makes_nan_inputs(tmp_path):
    for label, name in enumerate(("red", "blue")):
        for index in range(5):
            path = tmp_path / name / f"{index}.png"
            path.parent.mkdir(exist_ok=True)
            Image.new("RGB", (12, 12), (40 * label + index, 7, 90)).save(path)  # green: 7 always
    data = ImageFolderDataModule(tmp_path, image_size=12)
    message = "ImageFolderDataModule: the std of channel 1 is 0.0 (mean 0.0275)"
    with pytest.raises(ConfigError, match=re.escape(message)):
        data.setup("fit")


# ---------------------------------------------------------------- 8: --ckpt_path last, damaged


def test_a_truncated_last_checkpoint_found_by_last_is_named_with_what_to_do(in_tmp, capsys):
    args = [
        "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
    ]  # fmt: skip
    main(args)
    last = in_tmp / "runs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:2000])  # a copy cut short, as by a full disk
    before = snapshot(in_tmp)
    capsys.readouterr()
    line = one_line_error(capsys, [*args, "--ckpt_path", "last"])
    assert line.startswith(f"checkpoint {str(last.relative_to(in_tmp))!r} is not a complete")
    assert line.endswith(
        "--ckpt_path last picked it: delete it to resume from an earlier run, or pass another "
        "checkpoint with --ckpt_path"
    )
    assert snapshot(in_tmp) == before


# ---------------------------------------------------------------- 1: a stale decode cache


def test_the_decode_cache_is_rebuilt_when_class_folders_are_swapped(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path / "cache"))
    root = tmp_path / "cifar"
    for split, seed in (("train", 0), ("test", 5000)):
        write_image_folder(root / split, CIFAR10_CLASSES, per_class=2, size=32, seed=seed)
    first, labels = CIFAR10DataModule(root=root).load_split("train")
    airplane, automobile = root / "train" / "airplane", root / "train" / "automobile"
    airplane.rename(tmp_path / "swap")  # same names, count and total size: only classes move
    automobile.rename(airplane)
    (tmp_path / "swap").rename(automobile)
    again, labels_again = CIFAR10DataModule(root=root).load_split("train")
    assert labels_again.tolist() == labels.tolist()
    np.testing.assert_array_equal(again[:2], first[2:4])  # airplane now holds those images
    np.testing.assert_array_equal(again[2:4], first[:2])
    write_image_folder(root / "train", ("cat",), per_class=3, size=32, seed=99)  # one added
    grown, _ = CIFAR10DataModule(root=root).load_split("train")
    assert len(grown) == len(first) + 1
    assert len(list((tmp_path / "cache" / "cifar").glob("*.npy"))) == 3


# ---------------------------------------------------------------- 12: class paths in data files

EVIL_MODULE = "import pathlib\npathlib.Path('imported').write_text('ran')\nclass Model: pass\n"


@pytest.fixture
def evil_module(in_tmp, monkeypatch) -> str:
    """A module whose import leaves ``imported`` in the current folder."""
    (in_tmp / "evil_module.py").write_text(EVIL_MODULE)
    monkeypatch.syspath_prepend(str(in_tmp))
    return "evil_module.Model"


def test_a_checkpoint_naming_a_foreign_class_is_refused_before_import(
    trained_checkpoint, in_tmp, capsys, evil_module
):
    checkpoint = torch.load(trained_checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["_class_path"] = evil_module
    torch.save(checkpoint, in_tmp / "foreign.ckpt")
    line = one_line_error(capsys, ["test", "--ckpt_path", "foreign.ckpt", *FAST])
    assert line == (
        "checkpoint 'foreign.ckpt' names the model class 'evil_module.Model', outside "
        "lightning_cv; refusing to import it (its module's code would run): pass --model with "
        "that class to trust it"
    )
    assert not (in_tmp / "imported").exists()


def test_a_zoo_manifest_naming_a_foreign_data_module_is_refused_before_import(in_tmp, evil_module):
    entry = get_entry("lenet5.mnist").model_copy(update={"datamodule": evil_module})
    message = (
        "zoo entry 'lenet5.mnist': datamodule 'evil_module.Model' is not one of lightning_cv's "
        "data modules; a manifest may name lightning_cv classes only"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_datamodule(entry, in_tmp)
    assert not (in_tmp / "imported").exists()


# ---------------------------------------------------------------- 11: disk trouble


RUN = [
    "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
    "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
    "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false", "--test_after_fit", "false",
]  # fmt: skip


def test_a_full_disk_leaves_no_damaged_checkpoint_and_names_the_file(in_tmp, capsys):
    disk = in_tmp / "runs"  # a real 256 KiB file system: the first checkpoint does not fit
    if not mount_tmpfs(disk, "256k"):
        unavailable("needs root to mount a 256 KiB tmpfs (a real full disk)")
    try:
        line = one_line_error(capsys, RUN)
        folder = disk / "quickstart" / "version_0" / "checkpoints"
        assert line.startswith(f"'{folder.relative_to(in_tmp)}/best-epoch00-acc")
        assert line.endswith(
            ".ckpt': No space left on device; free space, fix the folder's permissions, or "
            "write elsewhere (--trainer.default_root_dir, the logger's save_dir)"
        )
        assert list(folder.iterdir()) == []  # nothing under a checkpoint's name, no staging
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_run_folder_that_cannot_be_written_is_named_in_one_line(in_tmp, capsys, monkeypatch):
    makedirs, mkdir = os.makedirs, Path.mkdir

    def read_only(path, *args, **kwargs):  # what a read-only mount answers, for every writer
        if "runs" in Path(path).parts:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return (makedirs if isinstance(path, str) else mkdir)(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", read_only)
    monkeypatch.setattr(Path, "mkdir", read_only)
    line = one_line_error(capsys, RUN)
    # the first write is the run folder's lock, before anything else
    assert line.startswith("'runs/quickstart/version_0': Read-only file system; ")


# ---------------------------------------------------------------- 0: outputs over user files

USER_FILES = {
    "predictions.csv": "my predictions\n",
    "confusion_matrix.png": "my picture",
    "confusion_matrix.csv": "my matrix\n",
    "class_report.csv": "my report\n",
}


@pytest.mark.parametrize("subcommand", ["test", "predict"])
def test_without_a_logger_outputs_go_to_a_fresh_folder_not_over_user_files(
    trained_checkpoint, in_tmp, capsys, subcommand
):
    for name, text in USER_FILES.items():
        (in_tmp / name).write_text(text)
    before = snapshot(in_tmp)
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    for _ in range(2):  # twice: the second run gets its own folder too
        main([subcommand, "--ckpt_path", str(trained_checkpoint), "--trainer.logger", "false",
              *quiet])  # fmt: skip
    after = snapshot(in_tmp)
    assert {name: after[name] for name in before} == before  # the user's files are untouched
    outputs = {path.relative_to(in_tmp).as_posix() for path in (in_tmp / "outputs").rglob("*.*")}
    wanted = "predictions.csv" if subcommand == "predict" else "confusion_matrix.csv"
    assert {f"outputs/version_0/{wanted}", f"outputs/version_1/{wanted}"} <= outputs
    assert f"run folder: {in_tmp / 'outputs' / 'version_1'}\n" in capsys.readouterr().out


def test_an_archive_is_not_unpacked_over_files_already_there(tmp_path):
    archive = tmp_path / "data.tar.gz"
    source = tmp_path / "source"
    (source / "images").mkdir(parents=True)
    (source / "images" / "a.jpg").write_bytes(b"from the archive")
    (source / "images" / "b.jpg").write_bytes(b"from the archive")
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(source / "images", arcname="images")
    target = tmp_path / "target"
    (target / "images").mkdir(parents=True)
    (target / "images" / "a.jpg").write_bytes(b"the user's own")
    before = snapshot(target)
    message = (
        f"{str(archive)!r}: refusing to unpack over files that are already there: "
        f"{str(target / 'images' / 'a.jpg')!r}; move them away or unpack into an empty folder"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        safe_extract(archive, target)
    assert snapshot(target) == before  # nothing unpacked, nothing replaced


# ---------------------------------------------------------------- 10: errors in loader workers


def test_a_corrupt_image_decoded_in_a_worker_ends_in_the_same_one_line(in_tmp, capsys):
    root = in_tmp / "photos"
    write_image_folder(root, ("cat", "dog"), per_class=6, size=16)
    broken = root / "dog" / "0003.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg at all")
    before = snapshot(root)
    args = [
        "fit", "--data", "ImageFolderDataModule", "--data.root", str(root),
        "--data.image_size", "16", "--data.num_workers", "1", "--data.batch_size", "24",
        "--data.val_fraction", "0.25",
        "--data.mean", "[0.5, 0.5, 0.5]", "--data.std", "[0.25, 0.25, 0.25]",
        "--model.backbone", "linear", *FAST,
    ]  # fmt: skip
    line = one_line_error(capsys, args)
    assert line.startswith(f"{str(broken)!r}: cannot decode image (")
    assert line.endswith("); replace or delete the file")
    assert snapshot(root) == before


def test_a_csv_file_that_is_not_utf8_is_named_with_its_encoding_problem(tmp_path):
    write_image_folder(tmp_path / "images", ("cat",), per_class=2)
    table = tmp_path / "labels.csv"
    table.write_bytes("image,label\nimages/cat/0000.jpg,chat\u00e9\n".encode("latin-1"))
    message = (
        f"CSV file {str(table)!r} is not UTF-8 text (byte 0xe9 at offset 36 is not UTF-8); "
        "save it as UTF-8"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        CSVDataModule(table)


# ---------------------------------------------------------------- 9: files that lie about size


def test_an_idx_header_claiming_billions_of_images_is_refused_before_allocating(tmp_path):
    raw = tmp_path / "KMNIST" / "raw"  # unpacked KMNIST: no content MD5 known, the header read
    raw.mkdir(parents=True)
    for stem, magic, dims in (
        ("train-images-idx3-ubyte", 2051, (2_000_000_000, 28, 28)),
        ("train-labels-idx1-ubyte", 2049, (2_000_000_000,)),
    ):  # unpacked copies: no MD5 to check, only the header and the bytes
        header = struct.pack(f">{1 + len(dims)}i", magic, *dims)
        (raw / stem).write_bytes(header + bytes(784))
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / stem).write_bytes(b"")
    before = snapshot(tmp_path)
    message = (
        f"KMNIST: {str(raw / 'train-images-idx3-ubyte')!r} claims 1,568,000,000,000 bytes of "
        "images, more than its 800 bytes can hold; delete it and download it again"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        KMNISTDataModule(root=tmp_path).load_split("train")
    assert snapshot(tmp_path) == before


def test_an_image_size_whose_batch_cannot_fit_in_memory_is_refused_in_one_line(in_tmp, capsys):
    line = one_line_error(capsys, ["fit", "--data.image_size", "200000", *FAST])
    assert line.startswith(
        "DigitsDataModule: image_size 200000x200000 needs 9,536.7 GiB for one batch of 64 "
        "float images; this machine has "
    )


# ---------------------------------------------------------------- 4: another architecture


def test_a_checkpoint_of_another_backbone_wins_with_a_notice(trained_checkpoint, in_tmp, caplog):
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    with caplog.at_level(logging.WARNING, logger="lightning_cv"):
        main(["test", "--ckpt_path", str(trained_checkpoint), "--model.backbone", "mlp", *quiet])
    notice = (
        f"--ckpt_path {trained_checkpoint}: the checkpoint's backbone='linear' is used, not "
        "backbone='mlp'"
    )
    assert notice in caplog.messages
    config = yaml.safe_load(next((in_tmp / "runs").rglob("config.yaml")).read_text())
    assert config["model"]["init_args"]["backbone"] == "linear"  # what ran, not what was asked


def test_a_class_count_that_contradicts_the_data_stops_naming_both(in_tmp, capsys):
    assert one_line_error(capsys, ["fit", "--model.num_classes", "5", *FAST]) == (
        "--model.num_classes 5 contradicts the data: DigitsDataModule has num_classes=10, "
        "which is linked into the model; leave --model.num_classes out"
    )


# ---------------------------------------------------------------- 6: option values of a wrong type

WRONG_TYPES = [
    ("optimizer", ["--model.optimizer", "sgd", "--model.optimizer_kwargs", "{momentum: fast}"],
     "optimizer 'sgd': momentum='fast' is a str; expected float"),
    ("optimizer-bool", ["--model.optimizer", "sgd", "--model.optimizer_kwargs",
                        "{momentum: 0.9, nesterov: maybe}"],
     "optimizer 'sgd': nesterov='maybe' is a str; expected bool"),
    ("scheduler", ["--model.scheduler", "step", "--model.scheduler_kwargs",
                   "{step_size: ten, gamma: 0.5}"],
     "scheduler 'step': step_size='ten' is a str; expected int"),
    ("loss", ["--model.loss", "hinge", "--model.loss_kwargs", "{margin: wide}"],
     "loss 'hinge': margin='wide' is a str; expected float"),
    ("backbone", ["--model.backbone", "mlp", "--model.backbone_kwargs", "{hidden_sizes: 300}"],
     "model 'mlp': hidden_sizes=300 is an int; expected"),
    ("lr-inf", ["--model.lr", ".inf"], "lr must be a finite number, got inf"),
    ("lr-nan", ["--model.lr", ".nan"], "lr must be a finite number, got nan"),
    ("momentum-inf", ["--model.optimizer", "sgd", "--model.optimizer_kwargs", "{momentum: .inf}"],
     "optimizer 'sgd': momentum=inf is not a finite number"),
    ("seed", ["--seed_everything", "-3"], "seed_everything must be in [0, 2**32 - 1], got -3"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in WRONG_TYPES],
                         ids=[c[0] for c in WRONG_TYPES])  # fmt: skip
def test_an_option_value_of_the_wrong_type_ends_in_one_line(in_tmp, capsys, args, message):
    line = one_line_error(capsys, ["fit", *args, *FAST])
    assert line.startswith(message), line
    assert not (in_tmp / "runs").exists()  # refused before anything was built or written


# ---------------------------------------------------------------- 2: unpacked IDX files


def test_an_unpacked_mnist_file_with_other_content_is_refused_by_its_md5(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    shared = require_shared_datasets() / "MNIST" / "raw"
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).write_bytes(gzip.decompress((shared / f"{name}.gz").read_bytes()))
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (raw / name).symlink_to(shared / name)
    data = MNISTDataModule(root=tmp_path)
    images, _ = data.load_split("train")  # the official content, unpacked: accepted
    assert images.shape == (60000, 28, 28, 1)
    content = bytearray((raw / "train-images-idx3-ubyte").read_bytes())
    content[5000] ^= 0xFF  # one pixel flipped: same size, same header
    (raw / "train-images-idx3-ubyte").write_bytes(bytes(content))
    before = snapshot(tmp_path)
    message = f"MNIST: {str(raw / 'train-images-idx3-ubyte')!r} is corrupt or truncated (MD5 "
    with pytest.raises(ConfigError, match=re.escape(message)):
        MNISTDataModule(root=tmp_path).load_split("train")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("module", [MNISTDataModule, FashionMNISTDataModule], ids=str)
def test_the_unpacked_md5_table_is_the_official_files_content(module):
    raw = require_shared_datasets() / module.folder / "raw"
    for stem, md5 in module.unpacked_md5s.items():
        assert hashlib.md5(gzip.decompress((raw / f"{stem}.gz").read_bytes())).hexdigest() == md5


def test_a_full_disk_while_metrics_are_written_names_the_metrics_file(in_tmp, capsys):
    written = fsspec_local.LocalFileOpener.write

    def full_disk(self, data):
        if not str(self.path).endswith("metrics.csv"):
            return written(self, data)
        raise OSError(errno.ENOSPC, "No space left on device")

    with mock.patch.object(fsspec_local.LocalFileOpener, "write", full_disk):
        line = one_line_error(capsys, RUN)
    assert line.startswith("'runs/quickstart/version_0/metrics.csv': No space left on device; ")
