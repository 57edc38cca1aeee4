"""Array-format DataModules (MNIST family, SVHN, STL-10) on fake files in the real formats."""

import gzip
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.error import URLError

import albumentations as A
import numpy as np
import pytest
import torch
from torchvision import datasets

from lightning_cv.data import _files
from lightning_cv.data.mnist import FashionMNISTDataModule, KMNISTDataModule, MNISTDataModule
from lightning_cv.data.stl10 import STL10DataModule
from lightning_cv.data.svhn import SVHNDataModule
from lightning_cv.errors import DataFileError

from .fakes import (
    md5_table,
    write_idx,
    write_idx_dataset,
    write_stl10,
    write_stl10_archive,
    write_svhn,
)

HINT = "pass download=True (or --data.download true) or copy the official files there"
AGAIN = "delete it and download it again"
IDX_NAMES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
STL10_NAMES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


@dataclass(frozen=True)
class Case:
    """One data set: its module, fake writer, where its files live and its facts."""

    module: type
    write: Callable[[Path], dict]
    folder: str  # relative to root
    dataset: str  # the name messages start with
    shape: tuple[int, int, int]  # (H, W, C)
    class_names: tuple[str, ...]
    files: list[str]  # the files a default configuration needs, in the order listed
    hint: str
    flips: bool  # does the default training preset mirror images?

    def __str__(self) -> str:
        return self.module.__name__


def _idx_case(module: type, folder: str, source: type) -> Case:
    write = partial(write_idx_dataset, folder=folder)
    names = tuple(source.classes)
    return Case(module, write, f"{folder}/raw", folder, (28, 28, 1), names, IDX_NAMES, HINT, False)


MNIST = _idx_case(MNISTDataModule, "MNIST", datasets.MNIST)
KMNIST = _idx_case(KMNISTDataModule, "KMNIST", datasets.KMNIST)
SVHN = Case(
    SVHNDataModule,
    write_svhn,
    "SVHN",
    "SVHN",
    (32, 32, 3),
    tuple("0123456789"),
    ["train_32x32.mat", "test_32x32.mat"],
    HINT,
    False,
)
STL10 = Case(
    STL10DataModule,
    write_stl10,
    "stl10_binary",
    "STL10",
    (96, 96, 3),
    STL10_NAMES,
    ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin"],
    "pass download=True (or --data.download true) or unpack the official archive there",
    True,
)
CASES = [
    MNIST,
    _idx_case(FashionMNISTDataModule, "FashionMNIST", datasets.FashionMNIST),
    KMNIST,
    SVHN,
    STL10,
]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes (``None`` for folders) under ``root``, by relative path."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_fakes(case: Case, root: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Write ``case``'s fake files and make their MD5s the official ones."""
    arrays = case.write(root)
    monkeypatch.setattr(case.module, "md5s", md5_table(root / case.folder))
    return arrays


@pytest.fixture(params=CASES, ids=str)
def fake(request, tmp_path, monkeypatch):
    case = request.param
    return case, tmp_path, write_fakes(case, tmp_path, monkeypatch)


def test_splits_decode_to_the_written_arrays_once(fake):
    case, root, arrays = fake
    data = case.module(root=root)
    for split, (images, labels) in arrays.items():
        decoded_images, decoded_labels = data.load_split(split)
        assert decoded_images.shape == (len(labels), *case.shape)
        assert decoded_images.dtype == np.uint8 and decoded_images.flags.c_contiguous
        assert decoded_labels.dtype == np.int64
        np.testing.assert_array_equal(decoded_images, images)
        np.testing.assert_array_equal(decoded_labels, labels)
        assert data.load_split(split)[0] is decoded_images  # decoded once, then cached
    assert data.class_names == case.class_names and len(data.class_names) == data.num_classes
    assert (data.in_channels, data.image_size) == (case.shape[2], case.shape[0])


@pytest.mark.parametrize("pipeline", ["batch", "sample"])
def test_loaders_yield_channels_first_batches(fake, pipeline):
    case, root, _ = fake
    height, width, channels = case.shape
    data = case.module(root=root, batch_size=8, val_fraction=0.2, pipeline=pipeline)
    data.setup("fit")
    data.setup("test")
    assert data.uses_batches == (pipeline == "batch")
    assert (len(data.train_set), len(data.val_set), len(data.test_set)) == (40, 10, 20)
    for train, loader in (
        (True, data.train_dataloader()),
        (False, data.val_dataloader()),
        (False, data.test_dataloader()),
    ):
        images, labels = next(iter(loader))
        if data.uses_batches:  # uint8 from the loader; floats after transfer
            assert images.dtype == torch.uint8
            images = data.transform_batch(images, train=train)
        assert images.shape == (8, channels, height, width) and images.dtype == torch.float32
        assert labels.dtype == torch.int64 and labels.min() >= 0 and labels.max() < 10


@pytest.mark.parametrize("case", CASES, ids=str)
def test_training_preset_flips_only_photos(case):
    pipeline = case.module(root="unused").build_transform(case.module.default_train_transform)
    flips = [step for step in pipeline.transforms if isinstance(step, A.HorizontalFlip)]
    assert bool(flips) == case.flips


@pytest.mark.parametrize("case", CASES, ids=str)
def test_missing_files_are_listed_and_nothing_is_created(case, tmp_path):
    root = tmp_path / "data"
    expected = f"{case.dataset}: missing {case.files} in '{root / case.folder}'; {case.hint}"
    with pytest.raises(DataFileError, match=re.escape(expected)):
        case.module(root=root).setup("fit")
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_copy_is_named_and_left_untouched(fake):
    case, root, _ = fake
    path = root / case.folder / case.files[0]
    official = case.module.md5s[path.name]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, the size unchanged
    path.write_bytes(bytes(data))
    before = snapshot(root)
    expected = (
        f"{case.dataset}: '{path}' is corrupt or truncated (MD5 {md5(bytes(data))}, expected "
        f"{official}); the file was left untouched: delete it and download it again"
    )
    with pytest.raises(DataFileError, match=re.escape(expected)):
        case.module(root=root).setup("fit")
    assert snapshot(root) == before


def _gzip_header_then(path: Path, count: int, payload: bytes) -> None:
    header = (2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (count, 28, 28))
    path.write_bytes(gzip.compress(header + payload))


def _cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _unpacked_header_only(raw: Path) -> None:
    (raw / "train-images-idx3-ubyte.gz").unlink()
    (raw / "train-images-idx3-ubyte").write_bytes((2051).to_bytes(4, "big"))


# (case, how the user's files are damaged, the message with {folder} for root/<case.folder>).
# The MD5s are pointed at the damaged files: the checks that still matter behind an MD5 match
# (IDX files are also read unpacked, with no known MD5; class_names.txt has none). SVHN's and
# STL-10's files are only ever read after their MD5 matched: test_a_corrupt_copy_is_named...
BAD_FILES = [
    (
        MNIST,
        lambda root: write_idx(
            root / "MNIST/raw/train-images-idx3-ubyte.gz",
            np.zeros((50, 28, 28), np.uint8),
            magic=2049,
        ),
        "MNIST: '{folder}/train-images-idx3-ubyte.gz' is not an IDX images file "
        "(magic number 2049, expected 2051)",
    ),
    (
        MNIST,
        lambda root: write_idx(
            root / "MNIST/raw/train-labels-idx1-ubyte.gz", np.zeros((50, 2), np.uint8)
        ),
        "MNIST: '{folder}/train-labels-idx1-ubyte.gz' is not an IDX labels file "
        "(magic number 2050, expected 2049)",
    ),
    (
        MNIST,
        lambda root: _cut_in_half(root / "MNIST/raw/train-images-idx3-ubyte.gz"),
        f"MNIST: '{{folder}}/train-images-idx3-ubyte.gz' is truncated (its gzip stream ends "
        f"early); {AGAIN}",
    ),
    (
        MNIST,
        lambda root: (root / "MNIST/raw/train-images-idx3-ubyte.gz").write_text("<html>404</html>"),
        f"MNIST: '{{folder}}/train-images-idx3-ubyte.gz' is not a valid gzip file "
        f"(Not a gzipped file (b'<h')); {AGAIN}",
    ),
    (
        MNIST,
        lambda root: _gzip_header_then(
            root / "MNIST/raw/train-images-idx3-ubyte.gz", 60, bytes(50 * 784)
        ),
        f"MNIST: '{{folder}}/train-images-idx3-ubyte.gz' has 39200 bytes of images, its header "
        f"states 47040 (60 x (28, 28)); {AGAIN}",
    ),
    (
        MNIST,
        lambda root: _gzip_header_then(
            root / "MNIST/raw/train-images-idx3-ubyte.gz", 50, bytes(50 * 784 + 3)
        ),
        f"MNIST: '{{folder}}/train-images-idx3-ubyte.gz' has 39203 bytes of images, its header "
        f"states 39200 (50 x (28, 28)); {AGAIN}",
    ),
    (
        MNIST,
        lambda root: write_idx(
            root / "MNIST/raw/train-images-idx3-ubyte.gz", np.zeros((50, 32, 32), np.uint8)
        ),
        "MNIST: '{folder}/train-images-idx3-ubyte.gz' states 50 images of shape (32, 32), "
        "expected images of shape (28, 28)",
    ),
    (
        KMNIST,  # no official MD5 of the unpacked content is known: the header is checked
        lambda root: _unpacked_header_only(root / "KMNIST/raw"),
        "KMNIST: '{folder}/train-images-idx3-ubyte' is truncated (no full IDX header)",
    ),
    (
        MNIST,
        lambda root: write_idx(
            root / "MNIST/raw/train-labels-idx1-ubyte.gz", np.zeros(49, np.uint8)
        ),
        "MNIST: '{folder}/train-images-idx3-ubyte.gz' holds 50 images but "
        "'{folder}/train-labels-idx1-ubyte.gz' holds 49 labels; expected one label per image",
    ),
    (
        MNIST,
        lambda root: write_idx(
            root / "MNIST/raw/train-labels-idx1-ubyte.gz", np.full(50, 10, np.uint8)
        ),
        "MNIST: '{folder}/train-labels-idx1-ubyte.gz' holds label 10, expected 0..9",
    ),
    (
        STL10,
        lambda root: (root / "stl10_binary/class_names.txt").write_text("cat\ndog\nbird\n"),
        "STL10: '{folder}/class_names.txt' lists 3 class names, expected 10, one per line",
    ),
]


@pytest.mark.parametrize(
    ("case", "damage", "message"),
    BAD_FILES,
    ids=[f"{c}-{i}" for i, (c, *_) in enumerate(BAD_FILES)],
)
def test_a_bad_file_is_named_with_what_was_expected_and_left_untouched(
    case, damage, message, tmp_path, monkeypatch
):
    case.write(tmp_path)
    damage(tmp_path)
    monkeypatch.setattr(case.module, "md5s", md5_table(tmp_path / case.folder))
    before = snapshot(tmp_path)
    expected = message.format(folder=tmp_path / case.folder)
    with pytest.raises(DataFileError, match=re.escape(expected)):
        case.module(root=tmp_path).setup("fit")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("module", "reference", "folder"),
    [
        (MNISTDataModule, datasets.MNIST, "MNIST"),
        (FashionMNISTDataModule, datasets.FashionMNIST, "FashionMNIST"),
        (KMNISTDataModule, datasets.KMNIST, "KMNIST"),
    ],
)
def test_unpacked_idx_files_decode_as_torchvision_reads_them(
    module, reference, folder, tmp_path, monkeypatch
):
    write_idx_dataset(tmp_path, folder, compress=False)
    if module.unpacked_md5s:  # fakes: point the official content MD5s at them
        monkeypatch.setattr(module, "unpacked_md5s", md5_table(tmp_path / folder / "raw"))
    for split in ("train", "test"):
        images, labels = module(root=tmp_path).load_split(split)
        expected = reference(tmp_path, train=split == "train")
        np.testing.assert_array_equal(images[..., 0], expected.data.numpy())
        np.testing.assert_array_equal(labels, expected.targets.numpy())


def test_svhn_decodes_as_torchvision_reads_it(tmp_path, monkeypatch):
    write_fakes(SVHN, tmp_path, monkeypatch)
    monkeypatch.setattr(datasets.SVHN, "_check_integrity", lambda self: True)  # fake MD5s
    images, labels = SVHNDataModule(root=tmp_path).load_split("train")
    expected = datasets.SVHN(tmp_path / "SVHN", split="train")
    np.testing.assert_array_equal(images.transpose(0, 3, 1, 2), expected.data)
    np.testing.assert_array_equal(labels, expected.labels)


def test_svhn_extra_joins_training_and_digit_zero_is_label_zero(tmp_path, monkeypatch):
    arrays = write_svhn(tmp_path, sizes={"train": 50, "test": 20, "extra": 30})
    monkeypatch.setattr(SVHNDataModule, "md5s", md5_table(tmp_path / "SVHN"))
    images, labels = SVHNDataModule(root=tmp_path, use_extra=True).load_split("train")
    np.testing.assert_array_equal(images, np.concatenate([arrays["train"][0], arrays["extra"][0]]))
    np.testing.assert_array_equal(labels, np.concatenate([arrays["train"][1], arrays["extra"][1]]))
    assert labels.min() == 0 and labels.max() == 9  # the files' 10 became 0


def test_svhn_extra_is_required_only_when_asked_for(tmp_path, monkeypatch):
    write_fakes(SVHN, tmp_path, monkeypatch)
    expected = f"SVHN: missing ['extra_32x32.mat'] in '{tmp_path / 'SVHN'}'; {HINT}"
    with pytest.raises(DataFileError, match=re.escape(expected)):
        SVHNDataModule(root=tmp_path, use_extra=True).setup("fit")


def test_stl10_decodes_as_torchvision_reads_it(tmp_path, monkeypatch):
    write_fakes(STL10, tmp_path, monkeypatch)
    monkeypatch.setattr(datasets.STL10, "_check_integrity", lambda self: True)  # fake MD5s
    data = STL10DataModule(root=tmp_path)
    for split in ("train", "test"):
        images, labels = data.load_split(split)
        expected = datasets.STL10(tmp_path, split=split)
        np.testing.assert_array_equal(images.transpose(0, 3, 1, 2), expected.data)
        np.testing.assert_array_equal(labels, expected.labels)
        assert data.class_names == tuple(expected.classes)


def test_stl10_column_major_bytes_come_out_upright(tmp_path, monkeypatch):
    write_stl10(tmp_path)
    # one image laid out by hand: per channel, byte (column * 96 + row)
    pixels = np.zeros((3, 96 * 96), np.uint8)
    pixels[0, [column * 96 + 0 for column in range(96)]] = 255  # red: the top row
    pixels[1, [0 * 96 + row for row in range(96)]] = 255  # green: the left column
    (tmp_path / "stl10_binary/train_X.bin").write_bytes(pixels.tobytes())
    (tmp_path / "stl10_binary/train_y.bin").write_bytes(bytes([3]))
    monkeypatch.setattr(STL10DataModule, "md5s", md5_table(tmp_path / "stl10_binary"))
    images, labels = STL10DataModule(root=tmp_path).load_split("train")
    image = images[0]  # (H, W, C)
    assert (image[0, :, 0] == 255).all() and (image[1:, :, 0] == 0).all()
    assert (image[:, 0, 1] == 255).all() and (image[:, 1:, 1] == 0).all()
    assert (image[..., 2] == 0).all() and labels.tolist() == [2]


def test_stl10_class_names_come_from_the_official_file(tmp_path, monkeypatch):
    write_fakes(STL10, tmp_path, monkeypatch)
    names = [name.upper() for name in STL10_NAMES]
    (tmp_path / "stl10_binary/class_names.txt").write_text("\n".join(names) + "\n")
    assert STL10DataModule(root=tmp_path).class_names == tuple(names)
    (tmp_path / "stl10_binary/class_names.txt").unlink()
    assert STL10DataModule(root=tmp_path).class_names == STL10_NAMES


def fake_network(source: Path, calls: list[str], payload: bytes | None = None) -> Callable:
    """A stand-in for torch's ``download_url_to_file`` that serves files from ``source`` (or
    ``payload``).

    It checks that the download goes to a staging file beside the final file and that the
    final name does not exist yet.
    """

    def download_url_to_file(url: str, dst: str, hash_prefix=None, progress=True) -> None:
        calls.append(url)
        staging = Path(dst)
        final = staging.parent / staging.name[1:].rsplit(".", 2)[0]  # .<name>.<random>.tmp
        assert staging.suffix == ".tmp" and url.endswith(final.name) and not final.exists()
        if url.startswith("https://down.example/"):
            raise URLError("mirror down")
        data = payload if payload is not None else (source / url.rsplit("/", 1)[1]).read_bytes()
        staging.write_bytes(data)

    return download_url_to_file


def test_idx_download_fetches_each_file_atomically_and_checks_it(tmp_path, monkeypatch):
    arrays = write_idx_dataset(tmp_path / "server", "MNIST")
    source = tmp_path / "server/MNIST/raw"
    table = md5_table(source)
    monkeypatch.setattr(MNISTDataModule, "md5s", {name: table[name] for name in IDX_NAMES})
    monkeypatch.setattr(
        MNISTDataModule, "mirrors", ("https://down.example/", "https://ok.example/")
    )
    calls = []
    monkeypatch.setattr(_files, "download_url_to_file", fake_network(source, calls))
    raw = tmp_path / "data/MNIST/raw"
    data = MNISTDataModule(root=tmp_path / "data", download=True)
    data.prepare_data()
    expected_calls = [f"{host}{name}" for name in IDX_NAMES for host in MNISTDataModule.mirrors]
    assert calls == expected_calls  # each file: the first mirror failed, the second served it
    assert snapshot(raw) == snapshot(source)  # the files, and no staging folder left behind
    data.prepare_data()  # present and verified: nothing is fetched again
    assert len(calls) == len(expected_calls)
    np.testing.assert_array_equal(data.load_split("test")[0], arrays["test"][0])


def test_a_download_with_wrong_bytes_leaves_no_file(tmp_path, monkeypatch):
    write_idx_dataset(tmp_path / "server", "MNIST")
    table = md5_table(tmp_path / "server/MNIST/raw")
    monkeypatch.setattr(MNISTDataModule, "md5s", {name: table[name] for name in IDX_NAMES})
    monkeypatch.setattr(MNISTDataModule, "mirrors", ("https://ok.example/",))
    monkeypatch.setattr(
        _files, "download_url_to_file", fake_network(tmp_path, [], b"<html>moved</html>")
    )
    raw = tmp_path / "data/MNIST/raw"
    expected = re.escape(
        "MNIST: could not download train-images-idx3-ubyte.gz (nothing was saved): "
        f"https://ok.example/train-images-idx3-ubyte.gz sent a file with MD5 "
        f"{md5(b'<html>moved</html>')}, expected {table['train-images-idx3-ubyte.gz']}"
    )
    with pytest.raises(DataFileError, match=expected):
        MNISTDataModule(root=tmp_path / "data", download=True).prepare_data()
    assert list(raw.iterdir()) == []


def test_svhn_download_fetches_the_needed_files(tmp_path, monkeypatch):
    arrays = write_svhn(tmp_path / "server")
    monkeypatch.setattr(SVHNDataModule, "md5s", md5_table(tmp_path / "server/SVHN"))
    calls = []
    monkeypatch.setattr(
        _files, "download_url_to_file", fake_network(tmp_path / "server/SVHN", calls)
    )
    data = SVHNDataModule(root=tmp_path / "data", download=True)
    data.prepare_data()
    assert calls == [
        "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
        "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
    ]
    assert snapshot(tmp_path / "data/SVHN") == snapshot(tmp_path / "server/SVHN")
    np.testing.assert_array_equal(data.load_split("test")[1], arrays["test"][1])


def test_stl10_download_unpacks_only_the_missing_files(tmp_path, monkeypatch):
    write_stl10(tmp_path / "server")
    server = tmp_path / "server"
    write_stl10_archive(server / "stl10_binary", server / "stl10_binary.tar.gz")
    table = md5_table(server / "stl10_binary") | md5_table(server)
    monkeypatch.setattr(STL10DataModule, "md5s", table)
    calls = []
    monkeypatch.setattr(_files, "download_url_to_file", fake_network(server, calls))
    folder = tmp_path / "data/stl10_binary"
    folder.mkdir(parents=True)
    edited = "\n".join(STL10_NAMES).upper()
    (folder / "class_names.txt").write_text(edited)  # the user's own copy
    data = STL10DataModule(root=tmp_path / "data", download=True)
    data.prepare_data()
    assert calls == ["http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"]
    expected = snapshot(server / "stl10_binary") | {"class_names.txt": edited.encode()}
    assert snapshot(folder) == expected  # every file unpacked, but the user's copy kept
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == [
        "stl10_binary",
        "stl10_binary.tar.gz",
    ]
    assert data.load_split("train")[0].shape == (50, 96, 96, 3)
