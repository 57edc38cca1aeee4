"""The preprocessing record and the light loader: images to model input without albumentations
or Lightning, exactly as the data sets' eval pipeline computes it; one read of the file."""

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_cv.cli import main
from lightning_cv.data.folder import ImageFiles
from lightning_cv.data.transforms import build_transform
from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub.manifest import TTA, list_entries
from lightning_cv.preprocessing import CHECKPOINT_KEY, Preprocessing
from lightning_cv.zoo.pretrained import load

from .fake_folders import write_image


def _record(channels: int, size: tuple[int, int]) -> Preprocessing:
    return Preprocessing.for_eval_preset(
        in_channels=channels, image_size=size, mean=(0.4,) * channels, std=(0.2,) * channels,
        class_names=("a", "b"), tta=TTA(flip=True),
    )  # fmt: skip


@pytest.mark.parametrize("size", [(28, 28), (32, 40), (36, 36), (64, 48)])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_record_resizes_and_normalises_as_albumentations_eval(size, channels):
    record = _record(channels, size)
    assert record.crop_fraction == (0.875 if max(size) > 32 else None)
    reference = build_transform("eval", size=size, mean=record.mean, std=record.std)
    rng = np.random.default_rng(0)
    for shape in [(37, 53), (101, 77), (9, 200), size]:  # odd sizes, both orientations
        pixels = rng.integers(0, 256, (*shape, channels), dtype=np.uint8)
        expected = reference(image=pixels)["image"]
        torch.testing.assert_close(record.batch([pixels])[0], expected, atol=1e-6, rtol=0)


def test_the_record_round_trips_through_a_weights_only_checkpoint():
    record = _record(3, (36, 36))
    buffer = io.BytesIO()
    torch.save({CHECKPOINT_KEY: record.to_checkpoint()}, buffer)
    buffer.seek(0)
    again = Preprocessing.from_checkpoint(torch.load(buffer, weights_only=True), source="x")
    assert again == record and again.tta == TTA(flip=True)


def test_channels_are_converted_as_the_data_sets_convert_files(tmp_path):
    files = [
        write_image(tmp_path / f"{mode}.png", 1, size=9, mode=mode) for mode in ("RGB", "RGBA", "L")
    ]
    deep = tmp_path / "deep.png"  # 16-bit grey: scaled to 0..255
    Image.fromarray(np.arange(81, dtype=np.uint16).reshape(9, 9) * 800).save(deep)
    for channels in (1, 3):
        record = _record(channels, (9, 9))
        for file in [*files, deep]:
            expected = ImageFiles([file], channels=channels)[0]
            np.testing.assert_array_equal(record.pixels(file), expected)
            np.testing.assert_array_equal(record.pixels(Image.open(file)), expected)


def test_bad_images_and_records_get_one_line(tmp_path):
    record = _record(1, (8, 8))
    with pytest.raises(ConfigError) as error:
        record.batch([np.zeros((4, 4, 2), np.uint8)])
    assert str(error.value) == (
        "an image must be a path, a PIL image or an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) "
        "uint8 array, got a uint8 array of shape (4, 4, 2)"
    )
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(
        DataFileError,
        match=r"^'.*bad.png': cannot decode image \(.*\); replace or delete the file$",
    ):
        record.batch([tmp_path / "bad.png"])
    with pytest.raises(DataFileError) as error:
        record.batch([tmp_path / "gone.png"])
    assert str(error.value) == f"image {str(tmp_path / 'gone.png')!r} does not exist"
    bad = {**record.to_checkpoint(), "mean": [0.1, 0.2]}
    with pytest.raises(ConfigError) as error:
        Preprocessing.from_checkpoint({CHECKPOINT_KEY: bad}, source="checkpoint 'x.ckpt'")
    assert str(error.value) == (
        "checkpoint 'x.ckpt': preprocessing record's the record is invalid (Value error, mean and "
        "std need one value per channel (1), got 2 and 1), got " + repr(bad)
    )


@pytest.mark.parametrize("entry", [e.name for e in list_entries()])
def test_every_bundled_entry_loads_with_its_record(entry):
    pretrained = load(entry)
    assert pretrained.preprocessing.tta == pretrained.entry.tta
    assert pretrained.sha256 == pretrained.entry.sha256
    size = pretrained.preprocessing.image_size
    probs = pretrained.probabilities([np.zeros((*size, 3), np.uint8)])
    assert probs.shape == (1, len(pretrained.class_names))
    assert pretrained.info()["metrics"]["acc"] == pretrained.entry.metrics.acc


def test_load_reads_the_checkpoint_once(monkeypatch):
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a) or real(*a, **k))
    load("lenet5.mnist").predict(np.zeros((28, 28), np.uint8))
    assert len(calls) == 1


def test_load_and_predict_import_neither_lightning_nor_albumentations(tmp_path):
    write_image(tmp_path / "one.png", 3, size=30, mode="L")
    code = (
        "import sys\nfrom lightning_cv.zoo import load\n"
        "p = load('lenet5.fashion_mnist')\n"
        f"print(p.predict({str(tmp_path / 'one.png')!r}, tta=True)[0][0])\n"
        "heavy = ('lightning', 'lightning.pytorch', 'albumentations', 'wandb')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in load("lenet5.fashion_mnist").class_names


@pytest.mark.parametrize("command", [["predict", "lenet5.mnist", "one.png"],
                                     ["export", "lenet5.mnist", "--output", "m.pt2"]],
                         ids=["predict", "export"])  # fmt: skip
def test_zoo_predict_and_export_run_without_lightning(in_tmp, command):
    write_image(in_tmp / "one.png", 3, size=28, mode="L")
    code = (
        "import sys\nfrom lightning_cv.cli import main\n"
        f"main(['zoo', *{command!r}])\n"
        "assert 'lightning.pytorch' not in sys.modules, 'Lightning was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no Trainer banners, no warnings


def test_zoo_predict_skips_a_corrupt_file_and_strict_stops(in_tmp, capsys):
    for index in range(3):
        write_image(in_tmp / "photos" / "3" / f"{index}.png", index, size=28, mode="L")
    (in_tmp / "photos" / "3" / "broken.png").write_bytes(b"broken")
    main(["zoo", "predict", "lenet5.mnist", "photos", "--top_k", "1", "--output", "a.csv"])
    out, err = capsys.readouterr()
    broken = "photos/3/broken.png"
    assert err.splitlines()[0].startswith(f"skipped {broken!r}: cannot decode image (")
    assert err.splitlines()[1] == "skipped 1 of 4 files that could not be read"
    assert "accuracy: " in out and "of 3 images in class folders" in out
    assert len((in_tmp / "a.csv").read_text().splitlines()) == 1 + 3
    with pytest.raises(SystemExit):
        main(["zoo", "predict", "lenet5.mnist", "photos", "--strict", "true", "--output", "b.csv"])
    assert f"lightning-cv: error: {broken!r}: cannot decode image" in capsys.readouterr().err
    assert not (in_tmp / "b.csv").exists()
