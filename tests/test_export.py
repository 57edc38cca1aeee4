"""Exports (.pt2, ONNX, deprecated TorchScript) of every architecture and of zoo entries,
checked against eager PyTorch and, on the real MNIST test split, against their checkpoint."""

import json
import re

import numpy as np
import onnx
import pytest
import torch

from lightning_cv import ConfigError, MNISTDataModule
from lightning_cv.cli.zoo import zoo_main
from lightning_cv.errors import DataFileError
from lightning_cv.models import create_model, list_models
from lightning_cv.zoo import get_entry, load
from lightning_cv.zoo.evaluate import load_export
from lightning_cv.zoo.export import (
    METADATA_KEY,
    BakedPreprocessing,
    export_model,
    export_onnx,
    export_pt2,
    export_torchscript,
)
from lightning_cv.zoo.model_card import render_model_card

from .conftest import require_shared_datasets

SHAPE = (3, 32, 32)  # every architecture takes 32x32 RGB (AlexNet picks its small variant)
# narrower than the defaults, same layers: exporting AlexNet's 7.7M-parameter head is slow
OPTIONS = {"alexnet": {"hidden_size": 64}}
MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
NAME = "lenet5.mnist"  # the bundled zoo entry the command tests export
MNIST = get_entry(NAME)


def _net(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    options = OPTIONS.get(name, {})
    return create_model(name, num_classes=10, in_channels=3, image_size=32, **options).eval()


def _runners(tmp_path, model) -> dict:
    """``model`` exported as .pt2 and ONNX, each loaded back as ``numpy batch -> numpy``."""
    pt2 = export_pt2(model, tmp_path / "m.pt2", input_shape=SHAPE, metadata={})
    onnx_path = export_onnx(model, tmp_path / "m.onnx", input_shape=SHAPE, metadata={})
    return {path.suffix: load_export(path).run for path in (pt2, onnx_path)}


@pytest.mark.parametrize("name", list_models())
def test_plain_exports_give_the_eager_logits_for_any_batch_size(name, tmp_path):
    net = _net(name)
    for suffix, run in _runners(tmp_path, net).items():
        for batch in (1, 3):
            images = torch.randn(batch, *SHAPE)
            with torch.no_grad():
                expected = net(images)
            got = torch.from_numpy(run(images.numpy()))
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0, msg=suffix)


@pytest.mark.parametrize("name", list_models())
def test_baked_exports_take_uint8_and_give_the_probabilities_of_the_eager_model(name, tmp_path):
    net = _net(name)
    baked = BakedPreprocessing(net, mean=MEAN, std=STD)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    for suffix, run in _runners(tmp_path, baked).items():
        for batch in (1, 4):
            pixels = torch.randint(0, 256, (batch, *SHAPE), dtype=torch.uint8)
            with torch.no_grad():
                expected = net((pixels / 255 - mean) / std).softmax(dim=1)
            got = torch.from_numpy(run(pixels.numpy()))
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=0, msg=suffix)


def test_metadata_and_named_axes_travel_in_both_formats(tmp_path):
    net = create_model("linear", num_classes=3, in_channels=1, image_size=8).train()
    metadata = {"name": "linear.toy", "class_names": ["a", "b", "c"], "preprocess": True}
    baked = BakedPreprocessing(net, mean=[0.5], std=[0.2])
    onnx_path = export_model(
        baked, tmp_path / "m.onnx", format="onnx", input_shape=(1, 8, 8), metadata=metadata
    )
    pt2_path = export_model(
        baked, tmp_path / "m.pt2", format="pt2", input_shape=(1, 8, 8), metadata=metadata
    )
    assert net.training  # exported in eval mode, then given back as it was
    proto = onnx.load(str(onnx_path))
    assert {p.key: json.loads(p.value) for p in proto.metadata_props} == {METADATA_KEY: metadata}
    (images,) = proto.graph.input
    assert (images.name, images.type.tensor_type.elem_type) == ("images", onnx.TensorProto.UINT8)
    dims = [dim.dim_param or dim.dim_value for dim in images.type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 8, 8]
    assert [output.name for output in proto.graph.output] == ["probabilities"]
    assert load_export(pt2_path).metadata == load_export(onnx_path).metadata == metadata


def test_torchscript_is_deprecated_but_still_written(tmp_path):
    net = create_model("linear", num_classes=3, in_channels=1, image_size=8)
    message = (
        "TorchScript export is deprecated (torch.jit is, upstream) and will be removed; "
        "use export_pt2 (--format pt2)"
    )
    with pytest.warns(FutureWarning, match=re.escape(message)):
        path = export_torchscript(net, tmp_path / "m.pt", input_shape=(1, 8, 8))
    with pytest.warns(FutureWarning):  # torch's own: "torch.jit.load is deprecated"
        scripted = torch.jit.load(str(path))
    images = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(scripted(images), net.eval()(images), atol=1e-6, rtol=0)


def test_unknown_format():
    net = create_model("linear", num_classes=3, in_channels=1, image_size=8)
    message = "unknown export format 'tflite'; expected one of ['onnx', 'pt2', 'torchscript']"
    with pytest.raises(ConfigError, match=re.escape(message)):
        export_model(net, "m.tflite", format="tflite", input_shape=(1, 8, 8))


# --- the command: lightning-cv zoo export / evaluate ----------------------------------------


def _facts(preprocess: bool) -> dict:
    return {"name": NAME, "sha256": MNIST.sha256, "class_names": list(load(NAME).class_names),
            "in_channels": 1, "image_size": [28, 28], "mean": [0.1307], "std": [0.3081],
            "preprocess": preprocess}  # fmt: skip


def test_export_names_files_after_the_model_writes_its_card_and_never_replaces(in_tmp, capsys):
    zoo_main(["export", NAME, "--format", "pt2", "--preprocess", "true"])
    assert capsys.readouterr().out == (
        "wrote lenet5.mnist.uint8.pt2: uint8 images (B, 1, 28, 28) -> probabilities (B, 10)\n"
        "wrote model card lenet5.mnist.md\n"
    )
    exported = load_export(in_tmp / "lenet5.mnist.uint8.pt2")
    assert exported.metadata == _facts(preprocess=True)
    pixels = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    transform = MNISTDataModule().build_transform("eval")  # the data set's own eval transform
    normalized = torch.stack([transform(image=image)["image"] for image in pixels])
    with torch.no_grad():
        expected = load(NAME).model(normalized).softmax(dim=1)
    got = exported.run(pixels.transpose(0, 3, 1, 2).copy())
    torch.testing.assert_close(torch.from_numpy(got), expected, atol=1e-6, rtol=0)
    card = (in_tmp / "lenet5.mnist.md").read_text()
    assert card == render_model_card(load(NAME))

    zoo_main(["export", NAME, "--format", "onnx"])  # the same card: kept as it is
    assert capsys.readouterr().out == (
        "wrote lenet5.mnist.onnx: images (B, 1, 28, 28) normalized with mean [0.1307] and std "
        "[0.3081] -> logits (B, 10)\nkept model card lenet5.mnist.md\n"
    )
    assert load_export(in_tmp / "lenet5.mnist.onnx").metadata == _facts(preprocess=False)

    message = (
        "refusing to overwrite 'lenet5.mnist.onnx', which this command did not create; pass "
        "--output NEWPATH or move it"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        zoo_main(["export", NAME, "--format", "onnx"])
    (in_tmp / "lenet5.mnist.md").write_text("my own notes\n")
    message = (
        "refusing to overwrite 'lenet5.mnist.md', which this command did not create; move it, "
        "or pass --output into another folder"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        zoo_main(["export", NAME, "--format", "pt2"])
    assert not (in_tmp / "lenet5.mnist.pt2").exists()  # refused before exporting
    assert (in_tmp / "lenet5.mnist.md").read_text() == "my own notes\n"


def test_torchscript_export_says_it_is_deprecated_in_one_line(in_tmp, capsys):
    zoo_main(["export", NAME, "--format", "torchscript"])
    captured = capsys.readouterr()
    assert captured.err == (
        "lightning-cv zoo export: --format torchscript is deprecated (torch.jit is, upstream) "
        "and will be removed; use --format pt2\n"
    )
    assert captured.out.startswith("wrote lenet5.mnist.pt: images (B, 1, 28, 28) normalized")


@pytest.mark.parametrize(
    ("name", "format", "preprocess", "acc"),
    [
        (NAME, "pt2", "false", 99.36),
        (NAME, "onnx", "true", 99.36),
        # its recipe's BatchAugment: the data module is rebuilt from the options it saved
        ("lenet5.fashion_mnist", "pt2", "false", 92.31),
    ],
)
def test_evaluate_an_export_on_the_real_test_split(name, format, preprocess, acc, in_tmp, capsys):
    root = require_shared_datasets()
    zoo_main(["export", name, "--format", format, "--preprocess", preprocess])
    path = in_tmp / f"{name}{'.uint8' if preprocess == 'true' else ''}.{format}"
    capsys.readouterr()
    zoo_main(["evaluate", str(path), "--data.root", str(root)])
    assert json.loads(capsys.readouterr().out) == {
        "export": str(path), "name": name, "preprocess": preprocess == "true", "images": 10000,
        "checkpoint_acc": acc, "export_acc": acc, "acc_difference": 0.0,
        "same_prediction": 100.0, "manifest_acc": acc, "tolerance": 0.05, "ok": True,
    }  # fmt: skip


def test_evaluate_fails_an_export_that_does_not_match_its_checkpoint(in_tmp, capsys):
    root = require_shared_datasets()
    torch.manual_seed(0)
    untrained = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    path = export_pt2(untrained, in_tmp / "wrong.pt2", input_shape=(1, 28, 28),
                      metadata=_facts(preprocess=False))  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        zoo_main(["evaluate", str(path), "--data.root", str(root)])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert (report["checkpoint_acc"], report["ok"]) == (99.36, False)
    assert captured.err == (
        f"lightning-cv zoo evaluate: {path}: top-1 {report['export_acc']:.2f} differs from its "
        "checkpoint's 99.36 by more than 0.05 points\n"
    )


def test_evaluate_refuses_exports_it_cannot_check_in_one_line(in_tmp):
    net = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    shape, own, old = (
        (1, 28, 28),
        {**_facts(False), "name": "last"},
        {**_facts(False), "sha256": "0" * 64},
    )
    cases = {
        export_pt2(net, in_tmp / "bare.pt2", input_shape=shape): (
            DataFileError,
            "export '{}' holds no 'lightning_cv' metadata; expected a file written by "
            "lightning-cv zoo export",
        ),
        export_pt2(net, in_tmp / "own.pt2", input_shape=shape, metadata=own): (
            ConfigError,
            "export '{}' comes from 'last', which is not a zoo entry; evaluate measures exports "
            "of zoo entries, on their official test split",
        ),
        export_onnx(net, in_tmp / "old.onnx", input_shape=shape, metadata=old): (
            ConfigError,
            f"export '{{}}' was made from a checkpoint with sha256 {'0' * 64}, but zoo entry "
            f"'lenet5.mnist' is now {MNIST.sha256}; export it again",
        ),
    }
    (in_tmp / "junk.onnx").write_bytes(b"not a model")
    (in_tmp / "m.tflite").write_bytes(b"")
    for path, (error, message) in cases.items():
        with pytest.raises(error, match=re.escape(message.format(path))):
            zoo_main(["evaluate", str(path), "--data.root", str(in_tmp)])
    with pytest.raises(DataFileError, match=re.escape("export 'junk.onnx' cannot be read as a "
                                                      ".onnx file: ")):  # fmt: skip
        zoo_main(["evaluate", "junk.onnx", "--data.root", str(in_tmp)])
    with pytest.raises(DataFileError, match=re.escape("export 'gone.pt2' does not exist")):
        load_export("gone.pt2")
    with pytest.raises(DataFileError, match=re.escape("export 'm.tflite': expected a .onnx or "
                                                      ".pt2 file")):  # fmt: skip
        load_export("m.tflite")


# --- the model card -------------------------------------------------------------------------


def test_model_card_states_metrics_preprocessing_classes_and_use():
    card = render_model_card(load("lenet5.fashion_mnist"))
    entry = get_entry("lenet5.fashion_mnist")
    lines = card.splitlines()
    assert lines[0] == "# lenet5.fashion_mnist"
    for line in (
        f"- Checkpoint sha256: `{entry.sha256}`",
        "- Data module: `lightning_cv.data.FashionMNISTDataModule` (official test split for "
        "the metrics)",
        "- Recipe: `recipes/fashion_mnist_lenet5.yaml`",
        "| top-1 | 92.31% |",
        "| top-1 with TTA | 92.78% |",
        f"| reference top-1 | 91.00% ({entry.reference}) |",
        f"- Trained on: {entry.trained_on}",
        "- Input: 1 x 28 x 28 (C x H x W), grey",
        "- Eval transform: `eval`; pixels / 255, then (x - mean) / std with mean [0.286] and "
        "std [0.353]",
        "- Test-time augmentation: flip=True, shifts=1, padding=reflect",
        "| 0 | T-shirt/top |",
        "| 9 | Ankle boot |",
        'model = zoo.load("lenet5.fashion_mnist")  # a zoo name, or the .ckpt file',
        "Serve it over HTTP: `lightning-cv serve lenet5.fashion_mnist` (see docs/serve.md).",
    ):
        assert line in lines, line
    assert sum(line.startswith("| ") and line[2].isdigit() for line in lines) == 10  # classes
