"""File-based DataModules on tiny fakes in the real formats: image folders, CIFAR pickles and
image-folder exports, Oxford-IIIT Pet, CSV lists. Bad files give exact errors; user files are
never changed; caches go to LIGHTNING_CV_HOME."""

import logging
import pickle
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cv.cli import main
from lightning_cv.data.cifar import (
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    CIFAR100_SUPERCLASSES,
    CIFAR10DataModule,
    CIFAR100DataModule,
)
from lightning_cv.data.csv import CSVDataModule
from lightning_cv.data.folder import ImageFiles, ImageFolderDataModule
from lightning_cv.data.pet import OxfordIIITPetDataModule
from lightning_cv.data.stats import channel_stats
from lightning_cv.errors import ConfigError, DataFileError

from .fake_folders import (
    md5,
    snapshot,
    write_cifar10_batches,
    write_cifar100_batches,
    write_csv,
    write_image,
    write_image_folder,
    write_pet,
)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Caches go to a fresh folder, never to ~/.cache or to the data folders."""
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def pixels(seed: int, size: int = 12, channels: int = 3) -> np.ndarray:
    """The pixels :func:`write_image` draws for ``seed``."""
    return np.random.default_rng(seed).integers(0, 256, (size, size, channels), dtype=np.uint8)


def first_batch_shape(data) -> tuple[int, ...]:
    """``(B, C, H, W)`` of the first training batch after ``setup("fit")``, as the model gets it
    (on the batch path, after ``transform_batch``)."""
    data.setup("fit")
    images, labels = next(iter(data.train_dataloader()))
    if data.uses_batches:
        assert images.dtype == torch.uint8
        images = data.transform_batch(images, train=True)
    assert labels.dtype == torch.int64 and images.dtype == torch.float32
    return tuple(images.shape)


# ---------------------------------------------------------------- image folders


def test_statistics_are_cached_in_the_user_cache_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("LIGHTNING_CV_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    write_image_folder(tmp_path / "photos", per_class=5, suffix=".png")
    ImageFolderDataModule(tmp_path / "photos", image_size=12, val_fraction=0).setup("fit")
    cached = list((tmp_path / "user" / ".cache" / "lightning_cv" / "stats").iterdir())
    assert [path.suffix for path in cached] == [".json"]  # the file only, no staging left


def test_split_folders_are_the_official_splits(tmp_path):
    root = tmp_path / "photos"
    for offset, split in enumerate(("train", "val", "test")):
        write_image_folder(root / split, suffix=".png", seed=1000 * offset)
    before = snapshot(root)
    data = ImageFolderDataModule(root, image_size=16, batch_size=4)
    assert (data.class_names, data.num_classes, data.in_channels) == (("bird", "cat", "dog"), 3, 3)
    assert data.has_val_split
    images, labels = data.load_split("train")
    assert len(images) == 18 and labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert images[0].dtype == np.uint8
    np.testing.assert_array_equal(images[7], pixels(seed=101))  # cat/0001.png, lossless
    assert first_batch_shape(data) == (4, 3, 16, 16)
    assert (len(data.train_set), len(data.val_set)) == (18, 18)
    data.setup("test")
    assert len(data.test_set) == 18
    assert snapshot(root) == before  # nothing written, nothing changed in the user's folder


def test_single_folder_gets_a_fixed_stratified_test_share(tmp_path):
    write_image_folder(tmp_path / "photos", per_class=10)
    data = ImageFolderDataModule(tmp_path / "photos", image_size=16, split_seed=1)
    other = ImageFolderDataModule(tmp_path / "photos", image_size=16, split_seed=2)
    test_paths = data._splits["test"][0]
    assert test_paths == other._splits["test"][0]
    _, test_labels = data.load_split("test")
    assert np.bincount(test_labels).tolist() == [2, 2, 2]
    assert not data.has_val_split
    assert not set(test_paths) & set(data._splits["train"][0])
    assert first_batch_shape(data) == (21, 3, 16, 16)  # 24 training images, 3 for validation


def test_class_folders_must_match_across_splits(tmp_path):
    write_image_folder(tmp_path / "train", classes=("bird", "cat", "dog"), per_class=1)
    write_image_folder(tmp_path / "test", classes=("bird", "cat", "eel"), per_class=1)
    message = (
        "ImageFolderDataModule: class folders of 'test' differ from 'train': only in train "
        "['dog'], only in test ['eel']; every split needs the same class folders"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        ImageFolderDataModule(tmp_path)


def test_missing_root_and_missing_test_folder(tmp_path):
    with pytest.raises(DataFileError, match=re.escape(f"image folder {str(tmp_path / 'no')!r}")):
        ImageFolderDataModule(tmp_path / "no")
    write_image_folder(tmp_path / "train", per_class=1)
    message = f"{str(tmp_path)!r} has a train folder but no test folder; add test/<class>/"
    with pytest.raises(DataFileError, match=re.escape(message)):
        ImageFolderDataModule(tmp_path)


def test_non_images_are_ignored_with_a_warning_and_hidden_files_silently(tmp_path, caplog):
    write_image_folder(tmp_path, per_class=5)
    (tmp_path / "cat" / "notes.txt").write_text("cats are great")
    (tmp_path / "cat" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "cat" / ".thumbs").mkdir()
    write_image(tmp_path / "cat" / ".thumbs" / "0000.jpg", seed=0)
    with caplog.at_level(logging.WARNING, logger="lightning_cv.data.folder"):
        data = ImageFolderDataModule(tmp_path)
    notes = str(tmp_path / "cat" / "notes.txt")
    assert caplog.messages == [
        f"ImageFolderDataModule: ignoring files that are not images (1): [{notes!r}]"
    ]
    assert sum(len(paths) for paths, _ in data._splits.values()) == 15


def test_zero_byte_images_are_refused_up_front(tmp_path):
    write_image_folder(tmp_path, per_class=7)
    for name in ("0001", "0002", "0003", "0004", "0005", "0006"):
        (tmp_path / "cat" / f"{name}.jpg").write_bytes(b"")
    listed = [str(tmp_path / "cat" / f"000{i}.jpg") for i in range(1, 6)]
    message = (
        f"ImageFolderDataModule: empty image files of 0 bytes (6): {listed} and 1 more; "
        "replace or delete them"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        ImageFolderDataModule(tmp_path)


def test_empty_class_folder_is_refused(tmp_path):
    write_image_folder(tmp_path, per_class=5)
    (tmp_path / "eel").mkdir()
    message = f"ImageFolderDataModule: class folder {str(tmp_path / 'eel')!r} has no images"
    with pytest.raises(DataFileError, match=re.escape(message)):
        ImageFolderDataModule(tmp_path)
    (tmp_path / "eel").rmdir()
    (tmp_path / "README.md").write_text("loose files in the root are not classes")
    assert ImageFolderDataModule(tmp_path).class_names == ("bird", "cat", "dog")


def test_undecodable_files_fail_at_access_naming_the_file(tmp_path):
    for split in ("train", "test"):
        write_image_folder(tmp_path / split, per_class=2)
    truncated = write_image(tmp_path / "train" / "cat" / "0009.jpg", seed=9, size=64)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size * 2 // 3])
    text = tmp_path / "train" / "dog" / "0009.png"
    text.write_text("not a picture")
    data = ImageFolderDataModule(
        tmp_path, image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3, val_fraction=0.5
    )
    images, _ = data.load_split("train")
    for path in (truncated, text):
        message = f"{str(path)!r}: cannot decode image ("
        with pytest.raises(DataFileError, match=re.escape(message)):
            images[images.paths.index(path)]
    # in a loader worker process the error reaches the main process with its message
    data.num_workers = 1
    data.setup("fit")
    in_worker = (
        r"(?s)Caught DataFileError in DataLoader worker process 0\..*': cannot decode image \("
    )
    with pytest.raises(DataFileError, match=in_worker):
        for loader in (data.train_dataloader(), data.val_dataloader()):
            list(loader)


def test_colour_modes_are_converted_by_the_documented_policy(tmp_path, caplog):
    folder = tmp_path / "mixed" / "a"
    folder.mkdir(parents=True)
    rgba = pixels(seed=1, channels=4)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    grey = pixels(seed=2, channels=1)[..., 0]
    Image.fromarray(grey, "L").save(folder / "grey.png")
    deep = np.full((12, 12), 257 * 100, dtype=np.uint16)
    deep[0, 0] = 65535
    Image.fromarray(deep).save(folder / "deep.png")  # 16-bit greyscale PNG
    rgb = pixels(seed=3)
    Image.fromarray(rgb).save(folder / "rgb.png")
    paths = sorted(folder.iterdir())  # deep, grey, rgb, rgba
    with caplog.at_level(logging.INFO, logger="lightning_cv.data.folder"):
        colour = [ImageFiles(paths, channels=3)[i] for i in range(4)]
    assert all(image.shape == (12, 12, 3) and image.dtype == np.uint8 for image in colour)
    assert colour[0][0, 0].tolist() == [255] * 3 and colour[0][5, 5].tolist() == [100] * 3
    np.testing.assert_array_equal(colour[1], np.repeat(grey[..., None], 3, axis=2))
    np.testing.assert_array_equal(colour[2], rgb)
    np.testing.assert_array_equal(colour[3], rgba[..., :3])  # alpha dropped, not composited
    assert f"converting mode 'RGBA' images to 'RGB' (first: {paths[3]})" in caplog.messages
    grey_files = ImageFiles(paths, channels=1, size=(6, 6))
    assert all(grey_files[i].shape == (6, 6, 1) for i in range(4))
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(ImageFiles(paths, channels=1)[2][..., 0], luma)


def test_mean_and_std_are_computed_once_and_cached_outside_the_data(tmp_path, home, monkeypatch):
    root = tmp_path / "photos"
    write_image_folder(root, per_class=10, suffix=".png")
    before = snapshot(root)
    data = ImageFolderDataModule(root, image_size=12)
    assert data.mean is None
    data.setup("fit")
    classes = ("bird", "cat", "dog")
    seeds = [100 * classes.index(p.parent.name) + int(p.stem) for p in data._splits["train"][0]]
    expected = channel_stats(np.stack([pixels(seed) for seed in seeds]))
    np.testing.assert_allclose(np.array([data.mean, data.std]), np.array(expected), atol=1e-4)
    assert len(list((home / "stats").glob("*.json"))) == 1
    assert snapshot(root) == before

    def no_decoding(self, index):
        raise AssertionError("statistics should come from the cache")

    monkeypatch.setattr(ImageFiles, "__getitem__", no_decoding)
    again = ImageFolderDataModule(root, image_size=12)
    again.setup("fit")
    assert (again.mean, again.std) == (data.mean, data.std)
    given = ImageFolderDataModule(root, image_size=12, mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    given.setup("fit")
    assert given.mean == (0.5, 0.5, 0.5)


def test_the_channel_option_is_in_channels_as_on_every_module_and_channels_is_gone(
    tmp_path, monkeypatch, capsys
):
    root = tmp_path / "photos"
    write_image_folder(root, per_class=10, size=20)
    before = snapshot(root)
    grey = ImageFolderDataModule(root, image_size=16, in_channels=1, batch_size=4)
    grey.setup("fit")
    assert grey.in_channels == 1 and next(iter(grey.train_dataloader()))[0].shape == (4, 1, 16, 16)
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--data", "ImageFolderDataModule", "--data.root", str(root)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--data.channels", "1", "--trainer.fast_dev_run", "true"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-2] == (
        "lightning-cv: error: --data.channels: ImageFolderDataModule has no option 'channels'; "
        "did you mean 'in_channels'?"
    )
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_channels": 4}, "in_channels must be 1 or 3, got 4"),
        ({"test_fraction": 0.0}, "test_fraction must be in (0, 1), got 0.0"),
        (
            {"mean": (0.5,) * 3},
            "mean and std must be given together, got mean=(0.5, 0.5, 0.5) and std=None",
        ),
        (
            {"mean": (0.5,), "std": (0.2,)},
            "mean and std need 3 values (one per channel), got mean=[0.5] and std=[0.2]",
        ),
        (
            {"mean": (0.5,) * 3, "std": (0.2, 0.0, 0.2)},
            "std values must be > 0, got [0.2, 0.0, 0.2]",
        ),
    ],
)
def test_bad_folder_options_name_the_value(tmp_path, kwargs, message):
    write_image_folder(tmp_path, per_class=2)
    with pytest.raises(ConfigError, match=re.escape(message)):
        ImageFolderDataModule(tmp_path, **kwargs)


# ---------------------------------------------------------------- CIFAR


def cifar_pattern(count: int) -> np.ndarray:
    """Red = 8 x column, green = 8 x row, blue = image index: any transposition shows."""
    images = np.zeros((count, 32, 32, 3), dtype=np.uint8)
    images[..., 0] = np.arange(32)[None, None, :] * 8
    images[..., 1] = np.arange(32)[None, :, None] * 8
    images[..., 2] = np.arange(count)[:, None, None]
    return images


def use_md5s(monkeypatch, module: type, md5s: dict[str, str]) -> None:
    """Point the module's MD5 table (torchvision's) at the fake files."""
    monkeypatch.setattr(module, "train_list", [[name, md5s[name]] for name, _ in module.train_list])
    monkeypatch.setattr(module, "test_list", [[name, md5s[name]] for name, _ in module.test_list])


@pytest.fixture
def cifar10_root(tmp_path, monkeypatch) -> Path:
    md5s = write_cifar10_batches(tmp_path, cifar_pattern(50), [i % 10 for i in range(50)])
    use_md5s(monkeypatch, CIFAR10DataModule, md5s)
    return tmp_path


@pytest.mark.parametrize("protocol", [3, 5])
def test_cifar10_batches_load_in_pixel_order(tmp_path, monkeypatch, protocol):
    md5s = write_cifar10_batches(tmp_path, cifar_pattern(50), [i % 10 for i in range(50)], protocol)
    use_md5s(monkeypatch, CIFAR10DataModule, md5s)
    before = snapshot(tmp_path)
    data = CIFAR10DataModule(root=tmp_path, val_fraction=0.2, batch_size=8)
    assert (data.num_classes, data.image_size, data.class_names) == (10, 32, CIFAR10_CLASSES)
    images, labels = data.load_split("train")
    assert images.shape == (50, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [i % 10 for i in range(50)]
    assert images[7, 3, 5].tolist() == [5 * 8, 3 * 8, 7]  # image 7, row 3, column 5: R G B
    np.testing.assert_array_equal(images, cifar_pattern(50))
    test_images, test_labels = data.load_split("test")
    assert test_images.shape == (10, 32, 32, 3) and test_labels.tolist() == list(range(10))
    assert first_batch_shape(data) == (8, 3, 32, 32)
    assert snapshot(tmp_path) == before


def test_cifar_batches_must_have_torchvisions_md5(tmp_path):
    write_cifar10_batches(tmp_path, cifar_pattern(50), [i % 10 for i in range(50)])
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    message = (
        f"CIFAR-10: {str(path)!r} is corrupt or truncated (MD5 {md5(path)}, expected "
        "c99cafc152244af753f735de768cd75f); the file was left untouched"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        CIFAR10DataModule(root=tmp_path).load_split("train")


class CreateFile:
    """A pickle payload that creates a file when unpickled by a plain ``pickle.load``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_restricted_unpickler_refuses_a_malicious_batch(cifar10_root, monkeypatch, tmp_path):
    payload = pickle.dumps({b"data": CreateFile(tmp_path / "proof.txt")}, protocol=3)
    pickle.loads(payload)[
        b"data"
    ].close()  # the payload is real: a plain unpickler creates the file
    assert (tmp_path / "proof.txt").exists()
    target = tmp_path / "pwned.txt"
    path = cifar10_root / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": CreateFile(target)}, protocol=3))
    monkeypatch.setattr(
        CIFAR10DataModule,
        "train_list",
        [["data_batch_1", md5(path)], *CIFAR10DataModule.train_list[1:]],
    )
    message = (
        f"{str(path)!r}: refusing to unpickle io.open; a CIFAR batch holds only numpy arrays, "
        "lists and bytes"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        CIFAR10DataModule(root=cifar10_root).load_split("train")
    assert not target.exists()


def test_cifar100_fine_and_coarse_labels(tmp_path, monkeypatch):
    fine = list(range(0, 100, 5))  # 20 images
    coarse = [i // 5 for i in range(20)]
    md5s = write_cifar100_batches(tmp_path, fine, coarse, CIFAR100_CLASSES, CIFAR100_SUPERCLASSES)
    use_md5s(monkeypatch, CIFAR100DataModule, md5s)
    data = CIFAR100DataModule(root=tmp_path)
    assert (data.num_classes, data.class_names[:2]) == (100, ("apple", "aquarium_fish"))
    images, labels = data.load_split("train")
    assert images.shape == (20, 32, 32, 3) and labels.tolist() == fine
    superclasses = CIFAR100DataModule(root=tmp_path, label_type="coarse")
    assert superclasses.num_classes == 20
    assert superclasses.class_names[9] == "large_man-made_outdoor_things"
    images, labels = superclasses.load_split("test")
    assert labels.tolist() == coarse and images.shape == (20, 32, 32, 3)
    with pytest.raises(
        ConfigError, match=re.escape("unknown label_type 'super'; expected 'fine' or 'coarse'")
    ):
        CIFAR100DataModule(root=tmp_path, label_type="super")


@pytest.fixture
def cifar_export(tmp_path) -> Path:
    write_image_folder(tmp_path / "export" / "train", CIFAR10_CLASSES, 2, ".png", size=32)
    write_image_folder(tmp_path / "export" / "test", CIFAR10_CLASSES, 1, ".png", size=32, seed=50)
    return tmp_path / "export"


def test_image_folder_export_is_decoded_once_and_cached(cifar_export, home, monkeypatch):
    before = snapshot(cifar_export)
    images, labels = CIFAR10DataModule(root=cifar_export).load_split("train")
    assert images.shape == (20, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [i // 2 for i in range(20)]
    np.testing.assert_array_equal(images[3], pixels(seed=101, size=32))  # automobile/0001.png
    assert len(list((home / "cifar").glob("*.npy"))) == 1
    assert snapshot(cifar_export) == before

    def no_decoding(self, threads=8):
        raise AssertionError("the second construction should read the cache")

    monkeypatch.setattr(ImageFiles, "to_array", no_decoding)
    again, _ = CIFAR10DataModule(root=cifar_export).load_split("train")
    np.testing.assert_array_equal(again, images)


def test_image_folder_export_needs_the_cifar10_classes_and_32x32(tmp_path, cifar_export):
    write_image_folder(tmp_path / "other" / "train", ("cat", "dog"), 1, ".png", size=32)
    message = (
        f"CIFAR-10: class folders in {str(tmp_path / 'other' / 'train')!r} are ['cat', 'dog'], "
        "expected ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', "
        "'ship', 'truck']"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        CIFAR10DataModule(root=tmp_path / "other").load_split("train")
    write_image_folder(tmp_path / "small" / "train", CIFAR10_CLASSES, 1, ".png", size=12)
    message = (
        f"CIFAR-10: images in {str(tmp_path / 'small' / 'train')!r} are (12, 12, 3) (H, W, C), "
        "expected (32, 32, 3)"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        CIFAR10DataModule(root=tmp_path / "small").load_split("train")
    message = "label_type='coarse' needs the official CIFAR-100 batches in"
    with pytest.raises(ConfigError, match=re.escape(message)):
        CIFAR100DataModule(root=cifar_export, label_type="coarse").load_split("train")


def test_pickles_are_read_first_and_a_missing_dataset_is_explained(cifar10_root, tmp_path):
    write_image_folder(cifar10_root / "train", CIFAR10_CLASSES, 1, ".png", size=32)
    images, _ = CIFAR10DataModule(root=cifar10_root).load_split("train")
    assert len(images) == 50  # the batches, not the 10 exported images
    none = tmp_path / "none"
    message = (
        f"CIFAR-10: found neither {str(none / 'cifar-10-batches-py')!r} nor an image-folder "
        f"export {str(none / 'CIFAR-10-images' / 'train')!r} or {str(none / 'train')!r}; pass "
        "download=True or copy the files there"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        CIFAR10DataModule(root=none).load_split("train")


def test_download_fetches_torchvisions_archive_and_unpacks_it(tmp_path, monkeypatch):
    md5s = write_cifar10_batches(
        tmp_path / "staging", cifar_pattern(50), [i % 10 for i in range(50)]
    )
    use_md5s(monkeypatch, CIFAR10DataModule, md5s)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(tmp_path / "staging" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    fetched = []

    def fake_download(url, path, md5, *, dataset):
        fetched.append((url, path.name, md5, dataset))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(archive, path)

    monkeypatch.setattr("lightning_cv.data.cifar.download_file", fake_download)
    data = CIFAR10DataModule(root=tmp_path / "data", download=True)
    data.prepare_data()
    assert fetched == [
        (
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
            "CIFAR-10",
        )
    ]
    assert data.load_split("train")[0].shape == (50, 32, 32, 3)
    data.prepare_data()  # the batches are there now: nothing is fetched again
    assert len(fetched) == 1


# ---------------------------------------------------------------- Oxford-IIIT Pet


def test_pet_breeds_and_species(tmp_path):
    lines = write_pet(tmp_path)
    assert lines["trainval.txt"][0] == "Abyssinian_1 1 1 1"
    before = snapshot(tmp_path)
    data = OxfordIIITPetDataModule(root=tmp_path, image_size=16, val_fraction=0.5, batch_size=8)
    assert data.num_classes == 37
    assert data.class_names[:3] == ("Abyssinian", "American Bulldog", "American Pit Bull Terrier")
    assert data.class_names[-1] == "Yorkshire Terrier"
    images, labels = data.load_split("train")
    assert len(images) == 74 and labels.tolist() == [i // 2 for i in range(74)]
    assert images[0].shape == (12, 12, 3)
    assert first_batch_shape(data) == (8, 3, 16, 16)
    species = OxfordIIITPetDataModule(root=tmp_path, target="species")
    assert (species.num_classes, species.class_names) == (2, ("Cat", "Dog"))
    _, labels = species.load_split("test")
    assert np.bincount(labels).tolist() == [12, 25]  # 12 cat and 25 dog breeds
    assert snapshot(tmp_path) == before


def test_pet_bad_annotations_and_images(tmp_path):
    with pytest.raises(
        ConfigError, match=re.escape("unknown target 'cat'; expected 'breed' or 'species'")
    ):
        OxfordIIITPetDataModule(root=tmp_path, target="cat")
    annotations = tmp_path / "oxford-iiit-pet" / "annotations"
    message = f"Oxford-IIIT Pet: missing ['trainval.txt', 'test.txt'] in {str(annotations)!r}"
    with pytest.raises(DataFileError, match=re.escape(message)):
        OxfordIIITPetDataModule(root=tmp_path).load_split("train")
    write_pet(tmp_path)
    test_file = annotations / "test.txt"
    lines = test_file.read_text().splitlines()
    test_file.write_text("\n".join([lines[0], "beagle_9 5 2", *lines[1:]]))
    message = (
        f"{str(test_file)!r} line 2: expected 'Name_123 class_id(1-37) species(1-2) breed_id', "
        "got 'beagle_9 5 2'"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        OxfordIIITPetDataModule(root=tmp_path).load_split("test")
    test_file.write_text("\n".join([lines[0], "beagle_9 6 2 1"]))
    message = f"{str(test_file)!r} line 2: image 'beagle_9' has class id 6, which is 'Bengal'"
    with pytest.raises(DataFileError, match=re.escape(message)):
        OxfordIIITPetDataModule(root=tmp_path).load_split("test")
    test_file.write_text("\n".join(lines))
    (tmp_path / "oxford-iiit-pet" / "images" / "pug_3.jpg").unlink()
    message = (
        f"Oxford-IIIT Pet: missing image files (1): ['{tmp_path}/oxford-iiit-pet/images/pug_3.jpg']"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        OxfordIIITPetDataModule(root=tmp_path).load_split("test")


def test_pet_download_unpacks_both_archives_into_the_pet_folder(tmp_path, monkeypatch):
    write_pet(tmp_path / "staging")
    archives = {}
    for part in ("images", "annotations"):
        archives[f"{part}.tar.gz"] = tmp_path / f"{part}.tar.gz"
        with tarfile.open(archives[f"{part}.tar.gz"], "w:gz") as bundle:
            bundle.add(tmp_path / "staging" / "oxford-iiit-pet" / part, arcname=part)
    fetched = []

    def fake_download(url, path, md5, *, dataset):
        fetched.append((url, md5))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(archives[path.name], path)

    monkeypatch.setattr("lightning_cv.data.pet.download_file", fake_download)
    data = OxfordIIITPetDataModule(root=tmp_path / "data", download=True)
    data.prepare_data()
    assert fetched == [
        (
            "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
            "5c4f3ee8e5d25df40f4fd59a7f44e54c",
        ),
        (
            "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
            "95a8c909bbe2e81eed6a22bccdf3f68f",
        ),
    ]
    assert len(data.load_split("test")[0]) == 37


# ---------------------------------------------------------------- CSV


def write_listed_images(folder: Path, count: int = 24) -> list[dict[str, str]]:
    """``count`` PNGs in ``folder/img`` and their rows: 3 labels, 8 groups, a split column."""
    rows = []
    for index in range(count):
        write_image(folder / "img" / f"{index:02d}.png", seed=index)
        split = "test" if index % 6 == 5 else "val" if index % 6 == 4 else "train"
        label = ("tulip", "daisy", "rose")[index % 3]
        rows.append(
            {
                "image": f"img/{index:02d}.png",
                "label": label,
                "plant": f"p{index // 3}",
                "split": split,
            }
        )
    return rows


def test_csv_with_a_split_column(tmp_path):
    csv_file = write_csv(tmp_path / "data" / "labels.csv", write_listed_images(tmp_path / "data"))
    before = snapshot(tmp_path / "data")
    data = CSVDataModule(csv_file, split_column="split", image_size=16, batch_size=4)
    assert (data.class_names, data.num_classes) == (("daisy", "rose", "tulip"), 3)
    assert data.has_val_split
    images, labels = data.load_split("train")
    assert len(images) == 16 and labels[:3].tolist() == [2, 0, 1]
    np.testing.assert_array_equal(images[1], pixels(seed=1))
    assert [len(data.load_split(split)[1]) for split in ("val", "test")] == [4, 4]
    assert first_batch_shape(data) == (4, 3, 16, 16)
    assert snapshot(tmp_path / "data") == before


def test_csv_without_split_column_holds_out_a_fixed_stratified_test_share(tmp_path):
    csv_file = write_csv(tmp_path / "labels.csv", write_listed_images(tmp_path, count=30))
    data = CSVDataModule(csv_file, test_fraction=0.2, mean=(0.5,) * 3, std=(0.2,) * 3)
    _, test_labels = data.load_split("test")
    assert np.bincount(test_labels).tolist() == [2, 2, 2] and not data.has_val_split
    again = CSVDataModule(csv_file, split_seed=5)
    np.testing.assert_array_equal(again._rows["test"], data._rows["test"])


def test_csv_groups_never_straddle_train_and_validation(tmp_path):
    rows = write_listed_images(tmp_path, count=48)
    csv_file = write_csv(tmp_path / "labels.csv", rows)
    data = CSVDataModule(csv_file, group_column="plant", split_strategy="group", val_fraction=0.25)
    data.setup("fit")
    groups = data.load_groups("train")
    train_groups = set(groups[data.train_set.indices])
    val_groups = set(groups[data.val_set.indices])
    assert train_groups and val_groups and not train_groups & val_groups
    plants = np.asarray([row["plant"] for row in rows])  # the fixed test share is by group too
    assert not set(plants[data._rows["test"]]) & set(plants[data._rows["train"]])


def test_csv_errors_name_the_problem(tmp_path):
    rows = write_listed_images(tmp_path, count=6)
    csv_file = write_csv(tmp_path / "labels.csv", rows)
    message = (
        f"{str(csv_file)!r} has no column 'class', 'fold'; its columns are "
        "['image', 'label', 'plant', 'split']"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        CSVDataModule(csv_file, label_column="class", split_column="fold")
    missing = [{**row, "image": f"gone/{i}.png"} for i, row in enumerate(rows + rows[:1])]
    write_csv(csv_file, missing)
    listed = [str(tmp_path / "gone" / f"{i}.png") for i in range(5)]
    message = f"CSV {str(csv_file)!r}: missing image files (7): {listed} and 2 more"
    with pytest.raises(DataFileError, match=re.escape(message)):
        CSVDataModule(csv_file)
    write_csv(
        csv_file,
        [{**row, "split": "dev" if i == 2 else row["split"]} for i, row in enumerate(rows)],
    )
    message = f"{str(csv_file)!r}: unknown split values ['dev']; expected 'train', 'val' or 'test'"
    with pytest.raises(DataFileError, match=re.escape(message)):
        CSVDataModule(csv_file, split_column="split")
    write_csv(
        csv_file, [{**row, "label": "" if i == 3 else row["label"]} for i, row in enumerate(rows)]
    )
    with pytest.raises(
        DataFileError, match=re.escape(f"{str(csv_file)!r}: empty 'label' on lines [5]")
    ):
        CSVDataModule(csv_file)
    with pytest.raises(
        DataFileError, match=re.escape(f"CSV file {str(tmp_path / 'no.csv')!r} does not exist")
    ):
        CSVDataModule(tmp_path / "no.csv")
