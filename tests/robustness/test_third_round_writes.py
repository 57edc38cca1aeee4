"""Bad input, third round: writes that lose nothing. A killed checkpoint write, an export
over the user's file, a failed download, a full disk and a CIFAR batch claiming terabytes each
leave the user's files as they were, and end (where a user meets them) in one line.

Everything happens on real file systems: a tmpfs for ``$TMPDIR`` and for a full disk, real
SIGKILLs, real pickles and a real closed port.
"""

import errno
import itertools
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from PIL import Image

from lightning_cv import AtomicCheckpointIO, ConfigError
from lightning_cv._checkpoint import read_checkpoint
from lightning_cv._io import STAGING_MARK, remove_stale_staging
from lightning_cv.callbacks.predictions import PredictionWriter
from lightning_cv.data import CIFAR10DataModule
from lightning_cv.data._files import download_file
from lightning_cv.errors import DataFileError
from lightning_cv.hub.manifest import TABLE_BEGIN, TABLE_END
from lightning_cv.models import create_model
from lightning_cv.zoo import export_torchscript, get_entry, write_manifest

from ..fake_folders import md5, snapshot, write_cifar10_batches
from ..test_data_folders import cifar_pattern, use_md5s
from .disks import mount_tmpfs, unavailable
from .test_second_round import one_line_error

ARTIFACT = "me/zoo/mlp.mnist:v0"
PACKAGE_CHECKPOINTS = Path(__file__).parents[2] / "lightning_cv" / "zoo" / "checkpoints"

# ---------------------------------------------------------------- file systems


@pytest.fixture
def other_fs(tmp_path):
    """A folder on another file system than ``tmp_path``: under /dev/shm, else a tmpfs."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != tmp_path.stat().st_dev:
        folder = Path(tempfile.mkdtemp(dir=shm))
        yield folder
        shutil.rmtree(folder)
        return
    folder = tmp_path / "tmpfs"
    if not mount_tmpfs(folder, "512m"):
        unavailable("needs /dev/shm on another file system than tmp_path, or root for a tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs: a real full disk (root only)."""
    folder = tmp_path / "tiny"
    if not mount_tmpfs(folder, "64k"):
        unavailable("needs root to mount a 64 KiB tmpfs (a real full disk)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


# ---------------------------------------------------------------- 1: killed checkpoint writes

FLOATS = 10_000_000  # 40 MB: a write takes long enough to be killed in the middle
CONTENTS = [
    {"epoch": epoch, "global_step": 10 * epoch, "pytorch-lightning_version": "2.6.0",
     "state_dict": {"backbone.weight": torch.full((FLOATS,), float(epoch))}}
    for epoch in (1, 2)
]  # fmt: skip


def _fork(target, *args) -> int:
    """Run ``target(*args)`` in a forked child (no second import of torch); its pid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
    if pid == 0:
        try:
            target(*args)
        finally:
            os._exit(0)
    return pid


def _use_tmpdir(folder: Path) -> None:
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = None  # tempfile reads TMPDIR again


def _save_forever(path: Path, tmpdir: Path, ready: int) -> None:
    """Save the two contents in turn through the CLI's checkpoint IO; say so after the first."""
    _use_tmpdir(tmpdir)
    checkpoint_io = AtomicCheckpointIO()
    for number in itertools.count():
        checkpoint_io.save_checkpoint(CONTENTS[number % 2], path)
        if number == 0:
            os.write(ready, b"1")


def _wait_ready(ready: int) -> None:
    assert select.select([ready], [], [], 120)[0], "the saving process never finished a save"
    assert os.read(ready, 1) == b"1"


def _staging_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if STAGING_MARK in p.name)


def _assert_one_of_the_contents(path: Path) -> None:
    checkpoint = read_checkpoint(path)
    expected = CONTENTS[checkpoint["epoch"] - 1]
    assert checkpoint.keys() == expected.keys()
    assert torch.equal(checkpoint["state_dict"]["backbone.weight"],
                       expected["state_dict"]["backbone.weight"])  # fmt: skip


def test_a_checkpoint_killed_mid_write_leaves_the_old_or_the_new_one(tmp_path, other_fs):
    folder, kills = tmp_path / "checkpoints", 20
    last = folder / "last.ckpt"
    started = time.perf_counter()
    AtomicCheckpointIO().save_checkpoint(CONTENTS[0], last)
    seconds = time.perf_counter() - started
    left_by_kills = 0
    for delay in (2.5 * seconds * k / kills for k in range(kills)):
        ready, told = os.pipe()
        pid = _fork(_save_forever, last, other_fs, told)
        _wait_ready(ready)
        # its first save removed what the killed processes left; its own staging file may be there
        assert [n for n in _staging_files(folder) if f"{STAGING_MARK}{pid}-" not in n] == []
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready), os.close(told)
        _assert_one_of_the_contents(last)
        assert list(other_fs.iterdir()) == []  # nothing went through $TMPDIR
        left_by_kills += bool(_staging_files(folder))
    assert left_by_kills > 0, "no kill landed during a write: the test proved nothing"
    AtomicCheckpointIO().save_checkpoint(CONTENTS[1], last)
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    _assert_one_of_the_contents(last)


def _kill_at_the_copy() -> None:
    """SIGKILL this process when it starts copying bytes between files (shutil's sendfile)."""
    os.sendfile = lambda *args: os.kill(os.getpid(), signal.SIGKILL)


def _save_once(checkpoint_io, path: Path, tmpdir: Path) -> None:
    _use_tmpdir(tmpdir)
    _kill_at_the_copy()
    checkpoint_io.save_checkpoint(CONTENTS[1], path)


@pytest.mark.parametrize("checkpoint_io", [TorchCheckpointIO(), AtomicCheckpointIO()],
                         ids=["lightning", "atomic"])  # fmt: skip
def test_lightning_copies_over_the_checkpoint_across_file_systems(
    checkpoint_io, tmp_path, other_fs
):
    last = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(CONTENTS[0], last)
    os.waitpid(_fork(_save_once, checkpoint_io, last, other_fs), 0)
    if isinstance(checkpoint_io, AtomicCheckpointIO):  # a rename: no copy to be killed in
        _assert_one_of_the_contents(last)
        assert read_checkpoint(last)["epoch"] == 2 and list(other_fs.iterdir()) == []
        return
    # Lightning's TorchCheckpointIO, killed in shutil.move's copy from $TMPDIR: if this fails,
    # Lightning (fsspec) stopped copying over the target, and AtomicCheckpointIO may go
    assert last.stat().st_size == 0, "Lightning no longer copies over the target: see docstring"
    (temporary,) = other_fs.iterdir()
    assert temporary.stat().st_size > 4 * FLOATS  # the whole checkpoint, stranded in $TMPDIR


def test_stale_staging_files_of_live_processes_stay(tmp_path):
    live = tmp_path / f".last.ckpt{STAGING_MARK}{os.getpid()}-abcdefgh.tmp"
    dead_pid = _fork(lambda: None)
    os.waitpid(dead_pid, 0)
    dead = tmp_path / f".last.ckpt{STAGING_MARK}{dead_pid}-abcdefgh.tmp"
    partial = Path(f"{dead}.0123456789abcdef0123456789abcdef.partial")  # torch.hub's
    folder = Path(f"{dead}.k2j3h4g5")  # a W&B download folder
    user = tmp_path / f"notes.{dead_pid}.txt"
    for path in (live, dead, partial, user):
        path.write_bytes(b"x")
    folder.mkdir()
    (folder / "mlp.ckpt").write_bytes(b"x")
    assert sorted(remove_stale_staging(tmp_path)) == sorted([dead, partial, folder])
    assert sorted(tmp_path.iterdir()) == sorted([live, user])


# ---------------------------------------------------------------- 3: failed downloads


def _closed_port_url(name: str) -> str:
    """A URL on 127.0.0.1 whose port nothing listens on: the connection is refused."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
    return f"https://127.0.0.1:{port}/{name}"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("source", ["url", "wandb"])
def test_a_failed_download_leaves_nothing_in_the_cache(source, home, tmp_path, monkeypatch, capsys):
    url = _closed_port_url("mlp.mnist.ckpt")
    update = {"file": None, "url": url} if source == "url" else {"file": None, "wandb": ARTIFACT}
    manifest = write_manifest([get_entry("mlp.mnist").model_copy(update=update)],
                              tmp_path / "manifest.yaml")  # fmt: skip
    monkeypatch.setenv("WANDB_MODE", "offline")
    reason = {
        "url": f"{url}: <urlopen error [Errno {errno.ECONNREFUSED}] Connection refused>",
        "wandb": f"{ARTIFACT}: downloading the W&B artifact {ARTIFACT} needs a W&B server, but "
        "W&B is in offline mode (WANDB_MODE=offline)",
    }[source]
    for _ in range(2):  # the next attempt meets the network again, not a "tampered" file
        message = one_line_error(capsys, ["zoo", "download", "mlp.mnist", "--manifest",
                                          str(manifest)])  # fmt: skip
        assert message == f"zoo entry 'mlp.mnist': could not download it: {reason}"
        assert [p.name for p in (home / "zoo").iterdir()] == []


def test_a_failed_data_download_leaves_nothing(tmp_path):
    url, path = _closed_port_url("train.gz"), tmp_path / "MNIST" / "raw" / "train.gz"
    message = (
        f"MNIST: could not download train.gz (nothing was saved): {url}: <urlopen error "
        f"[Errno {errno.ECONNREFUSED}] Connection refused>"
    )
    for _ in range(2):
        with pytest.raises(DataFileError) as error:
            download_file(url, path, "0" * 32, dataset="MNIST")
        assert str(error.value) == message
        assert list(path.parent.iterdir()) == []


# ---------------------------------------------------------------- 2: outputs over the user's files

NEW_OUTPUT = "which this command did not create; pass --output NEWPATH or move it"


def _users_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"the user's own file\n")
    return path.read_bytes()


@pytest.mark.parametrize(
    ("args", "output"),
    [
        (["zoo", "export", "linear.mnist"], "linear.mnist.pt2"),
        (["zoo", "export", "linear.mnist", "--format", "onnx", "--output", "run/last.onnx"],
         "run/last.onnx"),
        (["zoo", "predict", "linear.mnist", "seven.png"], "predictions.csv"),
    ],
    ids=["export-default", "export-output", "predict"],
)  # fmt: skip
def test_export_and_predict_never_replace_the_users_file(args, output, in_tmp, capsys):
    Image.new("L", (28, 28)).save(in_tmp / "seven.png")
    before = _users_file(in_tmp / output)
    assert one_line_error(capsys, args) == f"refusing to overwrite {output!r}, {NEW_OUTPUT}"
    assert (in_tmp / output).read_bytes() == before


def test_an_export_refuses_a_file_that_appeared_while_it_ran(tmp_path):
    path = tmp_path / "m.pt"
    net = create_model("linear", num_classes=3, in_channels=1, image_size=8)
    before = _users_file(path)
    with pytest.raises(ConfigError) as error:
        export_torchscript(net, path, input_shape=(1, 8, 8), replace=False)
    assert str(error.value) == (
        f"refusing to overwrite {str(path)!r}, which this command did not create; move it or "
        "choose another output path"
    )
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


def test_the_prediction_writer_replaces_only_its_own_csv(tmp_path):
    output = tmp_path / "predictions.csv"
    before = _users_file(output)
    writer = PredictionWriter(output, ["a", "b"], top_k=1)
    predictions, indices = [{"probs": torch.tensor([[0.3, 0.7]])}], [[[0]]]
    with pytest.raises(ConfigError, match=r"^refusing to overwrite .*predictions\.csv', which"):
        writer.write_on_epoch_end(None, None, predictions, indices)
    assert output.read_bytes() == before
    output.unlink()
    for _ in range(2):  # the second epoch replaces the file the first one wrote
        writer.write_on_epoch_end(None, None, predictions, indices)
        assert output.read_text().splitlines() == ["class_1,prob_1", "b,0.700000"]


def test_register_never_replaces_a_bundled_file_the_manifest_does_not_record(tmp_path, capsys):
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("entries: []\n")
    (tmp_path / "README.md").write_text(f"{TABLE_BEGIN}\n{TABLE_END}\n")
    bundled = tmp_path / "checkpoints" / "mlp.mnist.ckpt"
    before = _users_file(bundled)
    args = ["zoo", "register", str(PACKAGE_CHECKPOINTS / "mlp.mnist.ckpt"), "--name",
            "mlp.mnist", "--recipe", "recipes/mnist_mlp.yaml", "--data.root", str(tmp_path),
            "--bundle", "true", "--manifest", str(manifest), "--table+",
            str(tmp_path / "README.md")]  # fmt: skip
    assert one_line_error(capsys, args) == (
        f"refusing to overwrite {str(bundled)!r}, which this command did not create; move it, "
        "or register under another name"
    )
    assert bundled.read_bytes() == before and manifest.read_text() == "entries: []\n"


# ---------------------------------------------------------------- 4: a full disk


def _fill(disk: Path) -> bytes:
    """Fill ``disk`` with the user's file, to the last byte; its content."""
    with open(disk / "filler.bin", "wb", buffering=0) as file, pytest.raises(OSError) as error:
        while True:
            file.write(b"u" * 4096)
    assert error.value.errno == errno.ENOSPC
    return (disk / "filler.bin").read_bytes()


def test_a_full_disk_names_the_destination_and_changes_nothing(tiny_disk, capsys):
    destination = tiny_disk / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(CONTENTS[0] | {"state_dict": {}}, destination)
    before, filler = destination.read_bytes(), _fill(tiny_disk)
    big = {"state_dict": {"weight": torch.ones(100_000)}}
    with pytest.raises(OSError) as error:
        AtomicCheckpointIO().save_checkpoint(big, destination)
    assert (error.value.errno, error.value.filename) == (errno.ENOSPC, str(destination))
    output = tiny_disk / "linear.mnist.pt2"
    args = ["zoo", "export", "linear.mnist", "--output", str(output)]
    assert one_line_error(capsys, args) == (
        f"{str(output)!r}: No space left on device; free space, fix the folder's permissions, or "
        "write elsewhere (--trainer.default_root_dir, the logger's save_dir)"
    )
    assert destination.read_bytes() == before and (tiny_disk / "filler.bin").read_bytes() == filler
    assert sorted(p.name for p in tiny_disk.rglob("*")) == [
        "checkpoints",
        "filler.bin",
        "last.ckpt",
    ]


# ---------------------------------------------------------------- 11: CIFAR claiming terabytes


@pytest.mark.parametrize("protocol", [3, 5])
def test_a_cifar_batch_claiming_terabytes_is_refused_before_allocating(
    protocol, tmp_path, monkeypatch
):
    md5s = write_cifar10_batches(tmp_path, cifar_pattern(10), list(range(10)), protocol)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    real_shape = b"K\x02M\x00\x0c\x86"  # the array's header: (2, 3072), BININT1 BININT2 TUPLE2
    huge = struct.pack("<cicic", b"J", 1_000_000, b"J", 1_000_000, b"\x86")  # (10**6, 10**6)
    assert path.read_bytes().count(real_shape) == 1
    path.write_bytes(path.read_bytes().replace(real_shape, huge))
    use_md5s(monkeypatch, CIFAR10DataModule, {**md5s, "data_batch_1": md5(path)})
    before = snapshot(tmp_path)
    with pytest.raises(DataFileError) as error:
        CIFAR10DataModule(root=tmp_path).load_split("train")
    assert str(error.value) == (
        f"{str(path)!r}: an array claims shape (1000000, 1000000) of uint8 "
        f"(1,000,000,000,000 bytes), more than this {path.stat().st_size:,}-byte file holds; a "
        "CIFAR batch holds uint8 arrays of at most (50000, 3072) (153,600,000 bytes)"
    )
    assert snapshot(tmp_path) == before
