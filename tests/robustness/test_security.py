"""Nothing unsafe runs: no code from a checkpoint, no file outside the target folder from an
archive, no network connection from importing the package or training on the embedded data.
"""

import io
import os
import pickle
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import lightning.pytorch as L
import pytest
import torch

from lightning_cv import ImageClassifier
from lightning_cv.cli import main
from lightning_cv.data import DigitsDataModule
from lightning_cv.data._files import safe_extract
from lightning_cv.errors import ConfigError, DataFileError

from ..conftest import REPO


class Payload:
    """Unpickling this object creates the file ``marker`` (what an attacker's code could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    """A checkpoint that looks like ours and runs code when unpickled without restrictions."""
    model = ImageClassifier("linear", num_classes=10, in_channels=1, image_size=8)
    marker = tmp_path / "pwned"
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": {"backbone": "linear", "image_size": 8},
        "pytorch-lightning_version": L.__version__,
        "epoch": 0,
        "global_step": 0,
        "loops": {},
        "payload": Payload(marker),
    }
    path = tmp_path / "model.ckpt"
    torch.save(checkpoint, path)
    assert not marker.exists()
    return path, marker


def test_load_from_checkpoint_refuses_code_in_a_checkpoint(evil):
    path, marker = evil
    with pytest.raises((pickle.UnpicklingError, ConfigError)):  # ConfigError after the lead's fix
        ImageClassifier.load_from_checkpoint(path, weights_only=True)
    assert not marker.exists()


def test_lightning_cv_test_refuses_code_in_a_checkpoint(evil, in_tmp):
    path, marker = evil
    # Lightning 2.6's CLI reads the hyperparameters with torch.load(weights_only=True) first;
    # after the lead's read_checkpoint fix it ends with one line and exit code 2 instead
    with pytest.raises((pickle.UnpicklingError, SystemExit)):
        main(["test", "--ckpt_path", str(path), "--data.image_size", "8"])
    assert not marker.exists()


def test_the_trainer_itself_loads_checkpoints_weights_only(evil, monkeypatch):
    path, marker = evil
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    model = ImageClassifier("linear", num_classes=10, in_channels=1, image_size=8)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        trainer.test(model, datamodule=DigitsDataModule(image_size=8), ckpt_path=path)
    assert not marker.exists()


def tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w") as bundle:
        bundle.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname, member.size = kind, target, 1 if kind == tarfile.REGTYPE else 0
    return member


def zip_with(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr(name, "x")
    return path


REFUSED = "refusing to unpack: "
ESCAPES = (
    "'data/../../escaped.txt' would be extracted to '{deep}/escaped.txt', which is outside the "
    "destination"
)
# (id, archive writer, message after "refusing to unpack: "; {tmp} is the test's folder, {deep}
# the target's parent)
ARCHIVES = [
    ("tar-dot-dot", lambda p: tar_with(p, tar_member("data/../../escaped.txt")), ESCAPES),
    ("tar-absolute", lambda p: tar_with(p, tar_member("/tmp/escaped.txt")),
     "member '/tmp/escaped.txt' has an absolute path"),
    ("tar-symlink", lambda p: tar_with(p, tar_member("data/link", tarfile.SYMTYPE, "/etc")),
     "'data/link' is a link to an absolute path"),
    ("tar-hardlink", lambda p: tar_with(p, tar_member("data/hard", tarfile.LNKTYPE, "/etc/passwd")),
     "'data/hard' is a link to an absolute path"),
    ("tar-link-outside", lambda p: tar_with(p, tar_member("data/up", tarfile.SYMTYPE, "../../..")),
     "'data/up' would link to '{tmp}', which is outside the destination"),
    ("tar-device", lambda p: tar_with(p, tar_member("data/tty", tarfile.CHRTYPE)),
     "'data/tty' is a special file"),
    ("tar-dot-dot-inside", lambda p: tar_with(p, tar_member("data/../kept.txt")),
     "member 'data/../kept.txt' has '..' in its path"),
    ("zip-dot-dot", lambda p: zip_with(p, "data/../../escaped.txt"), ESCAPES),
    ("zip-absolute", lambda p: zip_with(p, "/tmp/escaped.txt"),
     "member '/tmp/escaped.txt' has an absolute path"),
    ("zip-dot-dot-inside", lambda p: zip_with(p, "data/../kept.txt"),
     "member 'data/../kept.txt' has '..' in its path"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("write", "problem"), [case[1:] for case in ARCHIVES], ids=[case[0] for case in ARCHIVES]
)
def test_an_archive_cannot_write_outside_its_folder(write, problem, tmp_path):
    archive = write(tmp_path / "archive.bin")
    before = archive.read_bytes()
    target = tmp_path / "deep" / "target"
    with pytest.raises(DataFileError) as error:
        safe_extract(archive, target)
    problem = problem.format(tmp=tmp_path.resolve(), deep=tmp_path.resolve() / "deep")
    assert str(error.value) == f"{str(archive)!r}: {REFUSED}{problem}"
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["archive.bin", "deep", "target"]
    assert archive.read_bytes() == before
    assert not Path("/tmp/escaped.txt").exists()


def test_every_refused_member_is_named_at_once(tmp_path):
    archive = tmp_path / "archive.tar"
    with tarfile.open(archive, "w") as bundle:
        for member in (tar_member("/abs.txt"), tar_member("ok.txt"), tar_member("a/../b.txt")):
            bundle.addfile(member, io.BytesIO(b"x"))
    with pytest.raises(DataFileError) as error:
        safe_extract(archive, tmp_path / "target")
    assert str(error.value) == (
        f"{str(archive)!r}: {REFUSED}member '/abs.txt' has an absolute path; "
        "member 'a/../b.txt' has '..' in its path"
    )
    assert list((tmp_path / "target").iterdir()) == []  # all or nothing


def test_a_link_inside_the_folder_is_unpacked(tmp_path):
    archive = tmp_path / "archive.tar"
    with tarfile.open(archive, "w") as bundle:
        bundle.addfile(tar_member("data/a.txt"), io.BytesIO(b"x"))
        bundle.addfile(tar_member("data/b.txt", tarfile.SYMTYPE, "a.txt"))
    safe_extract(archive, tmp_path / "target")
    link = tmp_path / "target" / "data" / "b.txt"
    assert link.is_symlink() and link.read_text() == "x"


def test_a_zip_symlink_member_is_unpacked_as_a_plain_file(tmp_path):
    archive = tmp_path / "archive.zip"
    link = zipfile.ZipInfo("data/link")
    link.external_attr = 0o120777 << 16  # a symlink to /etc in the member's Unix mode
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(link, "/etc")
    safe_extract(archive, tmp_path / "target")
    unpacked = tmp_path / "target" / "data" / "link"
    assert not unpacked.is_symlink() and unpacked.read_text() == "/etc"


GUARD = """
import socket, sys
attempts = []
def refuse(kind):
    def refused(*args, **kwargs):
        attempts.append(f"{kind}{args[1:2]}")
        raise OSError(f"network disabled by the test: {kind}")
    return refused
real_init = socket.socket.__init__
def guarded_init(self, family=-1, type=-1, proto=-1, fileno=None):
    if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):  # -1: AF_INET
        refuse("socket")(self, family)
    real_init(self, family, type, proto, fileno)
socket.socket.__init__ = guarded_init
socket.create_connection = refuse("create_connection")
socket.getaddrinfo = refuse("getaddrinfo")
import lightning_cv
from lightning_cv.cli import main
main(sys.argv[1:])
print("network attempts:", attempts)
"""


def test_import_and_a_quickstart_fit_open_no_network_connection(tmp_path):
    args = [
        "fit", "--config", str(REPO / "recipes" / "quickstart.yaml"),
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "4",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "WANDB_MODE"}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", GUARD, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "network attempts: []"
    assert "test top-1 accuracy:" in result.stdout
