"""Writers of tiny fake data sets in their real on-disk formats (image folders, CIFAR pickles,
Oxford-IIIT Pet, CSV), and a byte snapshot to prove the data modules never change a user file.
"""

from __future__ import annotations

import csv
import hashlib
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "PET_PREFIXES",
    "cifar_planes",
    "md5",
    "snapshot",
    "write_cifar10_batches",
    "write_cifar100_batches",
    "write_csv",
    "write_image",
    "write_image_folder",
    "write_pet",
]

# the 37 file-name prefixes of Oxford-IIIT Pet in class-id order (cats capitalised)
PET_PREFIXES = (
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle",
    "Bengal", "Birman", "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees",
    "havanese", "japanese_chin", "keeshond", "leonberger", "Maine_Coon", "miniature_pinscher",
    "newfoundland", "Persian", "pomeranian", "pug", "Ragdoll", "Russian_Blue", "saint_bernard",
    "samoyed", "scottish_terrier", "shiba_inu", "Siamese", "Sphynx",
    "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier",
)  # fmt: skip


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def write_image(path: Path, seed: int, size: int = 12, mode: str = "RGB") -> Path:
    """A random ``size`` x ``size`` image in ``mode``; the format follows the suffix."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (size, size, channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)
    return path


def write_image_folder(
    folder: Path,
    classes: tuple[str, ...] = ("bird", "cat", "dog"),
    per_class: int = 6,
    suffix: str = ".jpg",
    size: int = 12,
    seed: int = 0,
) -> list[Path]:
    """``folder/<class>/NNNN<suffix>``: ``per_class`` random RGB images per class; the seed of
    image ``index`` of class ``label`` is ``seed + 100 * label + index``."""
    return [
        write_image(folder / name / f"{index:04d}{suffix}", seed + 100 * label + index, size)
        for label, name in enumerate(classes)
        for index in range(per_class)
    ]


def cifar_planes(images: np.ndarray) -> np.ndarray:
    """``(N, 32, 32, 3)`` -> ``(N, 3072)``: the red plane, then green, then blue, row-major.

    Written plane by plane as the CIFAR page describes, independently of the loader's reshape.
    """
    red, green, blue = (images[..., channel].reshape(len(images), 1024) for channel in range(3))
    return np.concatenate([red, green, blue], axis=1)


def _write_pickle(path: Path, record: dict, protocol: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(record, protocol=protocol))
    return md5(path)


def write_cifar10_batches(
    root: Path, images: np.ndarray, labels: list[int], protocol: int = 3
) -> dict[str, str]:
    """``root/cifar-10-batches-py``: five training batches of ``images``/``labels`` (split in
    order) and a test batch of the first ten; returns each file's MD5 by name.

    Protocol 3 keeps ``bytes`` as bytes, as Python 2's cPickle wrote them.
    """
    folder = root / "cifar-10-batches-py"
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    meta = {b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in names]}
    md5s = {"batches.meta": _write_pickle(folder / "batches.meta", meta, protocol)}
    parts = np.array_split(np.arange(len(images)), 5)
    batches = {f"data_batch_{i + 1}": part for i, part in enumerate(parts)}
    batches["test_batch"] = np.arange(10)
    for name, rows in batches.items():
        record = {
            b"batch_label": name.encode(),
            b"labels": [labels[row] for row in rows],
            b"data": cifar_planes(images[rows]),
            b"filenames": [f"image_{row}.png".encode() for row in rows],
        }
        md5s[name] = _write_pickle(folder / name, record, protocol)
    return md5s


def write_cifar100_batches(
    root: Path,
    fine: list[int],
    coarse: list[int],
    fine_names: tuple[str, ...],
    coarse_names: tuple[str, ...],
) -> dict[str, str]:
    """``root/cifar-100-python/{train,test,meta}``; ``train`` and ``test`` hold the same random
    images with labels ``fine``/``coarse``. Returns each file's MD5 by name."""
    folder = root / "cifar-100-python"
    images = np.random.default_rng(0).integers(0, 256, (len(fine), 32, 32, 3), dtype=np.uint8)
    meta = {
        b"fine_label_names": [name.encode() for name in fine_names],
        b"coarse_label_names": [name.encode() for name in coarse_names],
    }
    md5s = {"meta": _write_pickle(folder / "meta", meta, 3)}
    for name in ("train", "test"):
        record = {
            b"filenames": [f"image_{row}.png".encode() for row in range(len(fine))],
            b"batch_label": f"{name}ing batch 1 of 1".encode(),
            b"fine_labels": list(fine),
            b"coarse_labels": list(coarse),
            b"data": cifar_planes(images),
        }
        md5s[name] = _write_pickle(folder / name, record, 3)
    return md5s


def write_pet(root: Path, trainval: int = 2, test: int = 1) -> dict[str, list[str]]:
    """``root/oxford-iiit-pet/{images,annotations}``: per breed, ``trainval`` + ``test`` JPEGs
    and annotation lines ``Name_n class_id species breed_id``. Returns the lines per file."""
    folder = root / "oxford-iiit-pet"
    lines: dict[str, list[str]] = {"trainval.txt": [], "test.txt": []}
    breed_ids = {1: 0, 2: 0}
    for class_id, prefix in enumerate(PET_PREFIXES, start=1):
        species = 1 if prefix[0].isupper() else 2
        breed_ids[species] += 1
        for index in range(trainval + test):
            name = f"{prefix}_{index + 1}"
            write_image(folder / "images" / f"{name}.jpg", seed=100 * class_id + index)
            split = "trainval.txt" if index < trainval else "test.txt"
            lines[split].append(f"{name} {class_id} {species} {breed_ids[species]}")
    for split, rows in lines.items():
        (folder / "annotations" / split).parent.mkdir(parents=True, exist_ok=True)
        (folder / "annotations" / split).write_text("\n".join(rows) + "\n")
    return lines


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """A CSV with a header row of ``rows[0]``'s keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
