"""A checkpoint is enough to predict: trained with `lightning-cv fit` on an image folder and on a
CSV list, it predicts the same probabilities (and the same test-time augmentation) after the
data and the run folder are gone and only the checkpoint was copied elsewhere; exported and
served from there, it gives them too."""

import csv
import shutil
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import requests
import torch
import yaml

from lightning_cv.callbacks import TestTimeAugmentation
from lightning_cv.cli import main
from lightning_cv.data import CSVDataModule, ImageFolderDataModule
from lightning_cv.preprocessing import CHECKPOINT_KEY
from lightning_cv.task import ImageClassifier
from lightning_cv.zoo.pretrained import load

from .fake_folders import write_csv, write_image, write_image_folder
from .test_serve import running_server

QUICK = ["--trainer.max_steps", "3", "--trainer.max_epochs", "1", "--trainer.logger", "false",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
         "--data.batch_size", "8", "--data.val_fraction", "0.3"]  # fmt: skip
TTA = {"flip": True, "shifts": 1, "padding": "zeros"}


def _fit(data_args: list[str]) -> Path:
    """`lightning-cv fit` with a TestTimeAugmentation callback; its last checkpoint."""
    config = Path("tta.yaml")
    callback = {"class_path": "lightning_cv.callbacks.TestTimeAugmentation", "init_args": TTA}
    config.write_text(yaml.safe_dump({"trainer": {"callbacks": [callback]}}))
    main(["fit", "--config", str(config), "--model.backbone", "lenet5", *data_args, *QUICK])
    [checkpoint] = Path().rglob("last.ckpt")  # in the run folder, <run>/checkpoints/
    return checkpoint


def _reference(checkpoint: Path, data, images: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """With the data still there: the training data module's eval transform (albumentations)
    and Lightning's loader; plain and TTA probabilities (the oracle)."""
    data.load_state_dict(torch.load(checkpoint, weights_only=True)[type(data).__qualname__])
    transform = data.build_transform("eval")
    from lightning_cv.data.folder import ImageFiles

    pixels = ImageFiles(images, channels=data.in_channels)
    batch = torch.stack([transform(image=pixels[i])["image"] for i in range(len(images))])
    model = ImageClassifier.load_from_checkpoint(checkpoint, weights_only=True).eval()
    with torch.inference_mode():
        plain = model.predict_proba(batch)
        averaged = TestTimeAugmentation(**TTA).probabilities(model, batch)
    return plain, averaged


def _predict_from_copy(checkpoint: Path, gone: list[Path], images: list[Path], tmp: Path):
    """Delete ``gone``, copy only the checkpoint to a new folder, and load it there."""
    alone = tmp / "elsewhere" / "model.ckpt"
    alone.parent.mkdir()
    shutil.copy(checkpoint, alone)
    for folder in gone:
        shutil.rmtree(folder)
    assert not any(Path().rglob("config.yaml"))  # the run's config went with its folder
    pretrained = load(alone)
    return pretrained, pretrained.probabilities(images), pretrained.probabilities(images, tta=True)


def _check_cli_csv(checkpoint: Path, images: Path, expected: torch.Tensor, names) -> None:
    """`lightning-cv zoo predict --tta true` writes the same probabilities (6 decimals)."""
    main(["zoo", "predict", str(checkpoint), str(images), "--tta", "true", "--top_k", "3",
          "--output", "out.csv"])  # fmt: skip
    with open("out.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(expected)
    for row, probs in zip(rows, expected, strict=True):
        assert float(row["prob_1"]) == pytest.approx(float(probs.max()), abs=2e-6)
        assert row["class_1"] == names[int(probs.argmax())]


def _check_exports(checkpoint: Path, images: list[Path], expected: torch.Tensor) -> None:
    """`zoo export` of the copied checkpoint: a .pt2 (normalised images in) and a baked ONNX
    file (uint8 pixels at the model's size in) give the same probabilities."""
    pretrained = load(checkpoint)
    main(["zoo", "export", str(checkpoint), "--output", "model.pt2"])
    main(["zoo", "export", str(checkpoint), "--format", "onnx", "--preprocess", "true",
          "--output", "model.uint8.onnx"])  # fmt: skip
    with torch.inference_mode():
        logits = torch.export.load("model.pt2").module()(pretrained.batch(images))
    torch.testing.assert_close(logits.softmax(dim=1), expected, atol=1e-6, rtol=0)
    record = pretrained.preprocessing
    pixels = np.stack([record.resize(record.pixels(image)) for image in images])
    session = onnxruntime.InferenceSession("model.uint8.onnx")
    [baked] = session.run(None, {session.get_inputs()[0].name: pixels.transpose(0, 3, 1, 2)})
    torch.testing.assert_close(torch.from_numpy(baked), expected, atol=1e-5, rtol=0)


def _check_served(checkpoint: Path, images: list[Path], expected: dict, names) -> None:
    """`lightning-cv serve` of the copied checkpoint answers an upload with them, plain and
    with test-time augmentation (``expected``: ``{"false": plain, "true": averaged}``)."""
    with running_server(source=str(checkpoint)) as server:
        for tta, probabilities in expected.items():
            for image, probs in zip(images, probabilities, strict=True):
                files = {"image": (image.name, image.read_bytes(), "image/png")}
                answer = requests.post(f"{server.url}/predict", files=files,
                                       data={"tta": tta}, timeout=60).json()  # fmt: skip
                served = {pair["class"]: pair["probability"] for pair in answer["predictions"]}
                wanted = dict(zip(names, probs.tolist(), strict=True))
                assert served == pytest.approx(wanted, abs=1e-6)


def test_an_image_folder_checkpoint_predicts_alone(in_tmp):
    write_image_folder(in_tmp / "data", per_class=12, size=45)
    new = [write_image(in_tmp / "new" / f"{i}.png", 500 + i, size=37 + 4 * i) for i in range(4)]
    checkpoint = _fit(["--data", "ImageFolderDataModule", "--data.root", "data",
                       "--data.image_size", "36"])  # fmt: skip
    record = torch.load(checkpoint, weights_only=True)[CHECKPOINT_KEY]
    assert record["crop_fraction"] == 0.875 and record["image_size"] == [36, 36]
    assert record["class_names"] == ["bird", "cat", "dog"] and record["tta"] == TTA
    data = ImageFolderDataModule("data", image_size=36)
    plain, averaged = _reference(checkpoint, data, new)
    pretrained, probs, probs_tta = _predict_from_copy(
        checkpoint, [in_tmp / "data", checkpoint.parents[1]], new, in_tmp
    )
    torch.testing.assert_close(probs, plain, atol=1e-6, rtol=0)
    torch.testing.assert_close(probs_tta, averaged, atol=1e-6, rtol=0)
    assert not torch.allclose(probs, probs_tta)  # the views do change the answer
    assert pretrained.name == "model" and pretrained.preprocessing.tta.model_dump() == TTA
    alone = in_tmp / "elsewhere" / "model.ckpt"
    _check_cli_csv(alone, in_tmp / "new", averaged, pretrained.class_names)
    _check_exports(alone, new, plain)
    _check_served(alone, new, {"false": plain, "true": averaged}, pretrained.class_names)


def test_a_csv_list_checkpoint_predicts_alone_in_grey(in_tmp):
    rows = []
    for index in range(36):
        write_image(in_tmp / "listed" / "img" / f"{index:02d}.png", index, size=20)
        rows.append(
            {"image": f"img/{index:02d}.png", "label": ("tulip", "daisy", "rose")[index % 3]}
        )
    csv_file = write_csv(in_tmp / "listed" / "labels.csv", rows)
    new = [write_image(in_tmp / "new" / f"{i}.png", 700 + i, size=23 + i) for i in range(3)]
    checkpoint = _fit(["--data", "CSVDataModule", "--data.csv_file", str(csv_file),
                       "--data.image_size", "16", "--data.in_channels", "1"])  # fmt: skip
    record = torch.load(checkpoint, weights_only=True)[CHECKPOINT_KEY]
    assert record["crop_fraction"] is None and record["in_channels"] == 1
    assert record["class_names"] == ["daisy", "rose", "tulip"]
    data = CSVDataModule(csv_file, image_size=16, in_channels=1)
    plain, averaged = _reference(checkpoint, data, new)
    _, probs, probs_tta = _predict_from_copy(
        checkpoint, [in_tmp / "listed", checkpoint.parents[1]], new, in_tmp
    )
    torch.testing.assert_close(probs, plain, atol=1e-6, rtol=0)
    torch.testing.assert_close(probs_tta, averaged, atol=1e-6, rtol=0)
