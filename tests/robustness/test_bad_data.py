"""Damaged data files and image folders, through ``lightning-cv fit``: one line, exit code 2,
and every file of the user's data folder byte-identical afterwards.
"""

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_cv.cli import main
from lightning_cv.data.mnist import MNISTDataModule

from ..fake_folders import snapshot, write_image_folder
from ..fakes import md5_table, write_idx, write_idx_dataset

FAST = [
    "--trainer.fast_dev_run", "true",
    "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]  # fmt: skip
AGAIN = "delete it and download it again"
HINT = "pass download=True (or --data.download true) or copy the official files there"
IDX_NAMES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def run_fit(args: list[str], capsys) -> str:
    """Run ``lightning-cv fit``; return its last stderr line after checking it exited with 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, *FAST])
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# IDX (MNIST) files: (id, damage to root/MNIST/raw, keep the official MD5s?, message)


def flip_a_byte(raw: Path) -> None:
    path = raw / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def cut_in_half(raw: Path) -> None:
    path = raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def images_header_then(raw: Path, count: int, payload: bytes) -> None:
    header = struct.pack(">4i", 2051, count, 28, 28)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + payload))


IDX_CASES = [
    ("missing-all", lambda raw: [path.unlink() for path in raw.iterdir()], False,
     f"MNIST: missing {IDX_NAMES} in '{{raw}}'; {HINT}"),
    ("missing-test-labels", lambda raw: (raw / IDX_NAMES[3]).unlink(), False,
     f"MNIST: missing ['t10k-labels-idx1-ubyte.gz'] in '{{raw}}'; {HINT}"),
    ("wrong-checksum", flip_a_byte, True,
     "MNIST: '{raw}/train-images-idx3-ubyte.gz' is corrupt or truncated (MD5 {md5}, expected "
     "{official}); the file was left untouched: " + AGAIN),
    ("truncated", cut_in_half, False,
     f"MNIST: '{{raw}}/train-images-idx3-ubyte.gz' is truncated (its gzip stream ends early); "
     f"{AGAIN}"),
    ("empty", lambda raw: (raw / IDX_NAMES[0]).write_bytes(b""), False,
     "MNIST: '{raw}/train-images-idx3-ubyte.gz' is truncated (no full IDX header)"),
    ("html-page", lambda raw: (raw / IDX_NAMES[0]).write_text("<html>404 Not Found</html>"), False,
     f"MNIST: '{{raw}}/train-images-idx3-ubyte.gz' is not a valid gzip file "
     f"(Not a gzipped file (b'<h')); {AGAIN}"),
    ("wrong-magic", lambda raw: write_idx(raw / IDX_NAMES[0], np.zeros((50, 28, 28)), magic=2049),
     False,
     "MNIST: '{raw}/train-images-idx3-ubyte.gz' is not an IDX images file "
     "(magic number 2049, expected 2051)"),
    ("labels-as-images", lambda raw: write_idx(raw / IDX_NAMES[0], np.zeros(50)), False,
     "MNIST: '{raw}/train-images-idx3-ubyte.gz' is not an IDX images file "
     "(magic number 2049, expected 2051)"),
    ("header-promises-more", lambda raw: images_header_then(raw, 60, bytes(50 * 784)), False,
     f"MNIST: '{{raw}}/train-images-idx3-ubyte.gz' has 39200 bytes of images, its header "
     f"states 47040 (60 x (28, 28)); {AGAIN}"),
    ("label-out-of-range", lambda raw: write_idx(raw / IDX_NAMES[1], np.full(50, 10)), False,
     "MNIST: '{raw}/train-labels-idx1-ubyte.gz' holds label 10, expected 0..9"),
    ("fewer-labels", lambda raw: write_idx(raw / IDX_NAMES[1], np.zeros(49)), False,
     "MNIST: '{raw}/train-images-idx3-ubyte.gz' holds 50 images but "
     "'{raw}/train-labels-idx1-ubyte.gz' holds 49 labels; expected one label per image"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "official_md5", "message"),
    [case[1:] for case in IDX_CASES],
    ids=[case[0] for case in IDX_CASES],
)
def test_a_bad_idx_file_ends_the_run_in_one_line(
    damage, official_md5, message, in_tmp, monkeypatch, capsys
):
    root = in_tmp / "data"
    write_idx_dataset(root, "MNIST")
    raw = root / "MNIST" / "raw"
    damage(raw)
    official = MNISTDataModule.md5s["train-images-idx3-ubyte.gz"]
    if not official_md5:  # the damaged files pass the checksum and reach the decoder
        monkeypatch.setattr(MNISTDataModule, "md5s", {**MNISTDataModule.md5s, **md5_table(raw)})
    before = snapshot(root)
    first = raw / IDX_NAMES[0]
    md5 = hashlib.md5(first.read_bytes()).hexdigest() if first.is_file() else ""
    expected = message.format(raw=raw, md5=md5, official=official)
    last_line = run_fit(["--data", "MNISTDataModule", "--data.root", str(root)], capsys)
    assert last_line == f"lightning-cv: error: {expected}"
    assert snapshot(root) == before


# image folders: (id, damage to root/{train,test}/{bird,cat,dog}/NNNN.jpg, message)


def png_header(path: Path, width: int, height: int) -> None:
    """A PNG that declares ``width`` x ``height`` grey pixels and holds almost none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(100)))
        + chunk(b"IEND", b"")
    )


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])


def only_text_files(folder: Path) -> None:
    for path in folder.iterdir():
        path.rename(path.with_suffix(".txt"))


def no_class_folders(folder: Path) -> None:
    for path in sorted(folder.glob("*/*")):
        path.rename(folder / f"{path.parent.name}-{path.name}")
    for path in folder.iterdir():
        if path.is_dir():
            path.rmdir()


def remove_folder(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()


DECODE = "replace or delete the file"
FOLDER_CASES = [
    ("corrupt-jpeg", lambda root: truncate(root / "train/cat/0001.jpg"),
     f"'{{root}}/train/cat/0001.jpg': cannot decode image (Truncated File Read); {DECODE}"),
    ("text-named-png", lambda root: (root / "train/cat/0009.png").write_text("not a picture"),
     "'{root}/train/cat/0009.png': cannot decode image (cannot identify image file "
     f"'{{root}}/train/cat/0009.png'); {DECODE}"),
    ("zero-byte-image", lambda root: (root / "train/dog/0002.jpg").write_bytes(b""),
     "ImageFolderDataModule: empty image files of 0 bytes (1): ['{root}/train/dog/0002.jpg']; "
     "replace or delete them"),
    ("decompression-bomb", lambda root: png_header(root / "train/bird/huge.png", 20000, 20000),
     "'{root}/train/bird/huge.png': cannot decode image (Image size (400000000 pixels) exceeds "
     f"limit of 178956970 pixels, could be decompression bomb DOS attack.); {DECODE}"),
    ("empty-class-folder", lambda root: (root / "train/eel").mkdir(),
     "ImageFolderDataModule: class folder '{root}/train/eel' has no images"),
    ("only-text-files", lambda root: only_text_files(root / "train/dog"),
     "ImageFolderDataModule: class folder '{root}/train/dog' has no images"),
    ("no-class-folders", lambda root: no_class_folders(root / "train"),
     "ImageFolderDataModule: no class folders in '{root}/train'; expected one sub-folder per "
     "class"),
    ("train-without-test", lambda root: remove_folder(root / "test"),
     "ImageFolderDataModule: '{root}' has a train folder but no test folder; add "
     "test/<class>/ or put the class folders directly in the root"),
    ("classes-differ", lambda root: (root / "test/dog").rename(root / "test/eel"),
     "ImageFolderDataModule: class folders of 'test' differ from 'train': only in train "
     "['dog'], only in test ['eel']; every split needs the same class folders"),
    ("root-missing", remove_folder,
     "ImageFolderDataModule: image folder '{root}' does not exist"),
]  # fmt: skip


def write_photos(root: Path) -> None:
    write_image_folder(root / "train", per_class=10)
    write_image_folder(root / "test", per_class=2, seed=50)


def fit_photos(root: Path, capsys) -> str:
    args = ["--data", "ImageFolderDataModule", "--data.root", str(root)]
    return run_fit([*args, "--data.image_size", "16", "--model.backbone", "linear"], capsys)


@pytest.mark.parametrize(
    ("damage", "message"),
    [case[1:] for case in FOLDER_CASES],
    ids=[case[0] for case in FOLDER_CASES],
)
def test_a_bad_image_folder_ends_the_run_in_one_line(damage, message, in_tmp, monkeypatch, capsys):
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(in_tmp / "cache"))  # the statistics cache
    root = in_tmp / "photos"
    write_photos(root)
    damage(root)
    before = snapshot(root) if root.exists() else {}
    assert fit_photos(root, capsys) == f"lightning-cv: error: {message.format(root=root)}"
    assert (snapshot(root) if root.exists() else {}) == before


def deep_grey_png(path: Path) -> None:
    Image.fromarray(np.full((12, 12), 40000, np.uint16)).save(path)  # 16-bit, mode I;16


def rgba_png(path: Path) -> None:
    Image.fromarray(np.full((12, 12, 4), 200, np.uint8), "RGBA").save(path)


def cmyk_jpeg(path: Path) -> None:
    Image.fromarray(np.full((12, 12, 3), 90, np.uint8)).convert("CMYK").save(path)


def palette_gif(path: Path) -> None:
    Image.fromarray(np.full((12, 12, 3), 30, np.uint8)).convert("P").save(path)


# odd but valid images: converted by the documented policy, logged once, never refused
ODD_IMAGES = [
    ("16-bit-png", deep_grey_png, "0009.png", "I;16"),
    ("rgba-png", rgba_png, "0009.png", "RGBA"),
    ("cmyk-jpeg", cmyk_jpeg, "0009.jpg", "CMYK"),
    ("palette-gif", palette_gif, "0009.gif", "P"),
]


@pytest.mark.parametrize(
    ("write", "name", "mode"),
    [case[1:] for case in ODD_IMAGES],
    ids=[case[0] for case in ODD_IMAGES],
)
def test_odd_image_modes_are_converted_not_refused(write, name, mode, in_tmp, monkeypatch, caplog):
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(in_tmp / "cache"))
    root = in_tmp / "photos"
    write_photos(root)
    odd = root / "train" / "cat" / name
    write(odd)
    before = snapshot(root)
    args = ["--data", "ImageFolderDataModule", "--data.root", str(root)]
    with caplog.at_level("INFO", logger="lightning_cv.data.folder"):
        main(["fit", *args, "--data.image_size", "16", "--model.backbone", "linear", *FAST])
    assert f"converting mode {mode!r} images to 'RGB' (first: {odd})" in caplog.messages
    assert snapshot(root) == before


def test_too_few_images_for_a_stratified_split(in_tmp, monkeypatch, capsys):
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(in_tmp / "cache"))
    root = in_tmp / "photos"
    write_image_folder(root / "train", per_class=4)  # 12 images: 10% for validation is 2
    write_image_folder(root / "test", per_class=2, seed=50)
    before = snapshot(root)
    assert fit_photos(root, capsys) == (
        "lightning-cv: error: a stratified split needs every class on both sides: holding out "
        "0.1 of 12 samples leaves 2 for 3 classes; use a larger fraction, more samples or "
        "split_strategy 'random'"
    )
    assert snapshot(root) == before
