"""The model zoo: register, manifest schema, load, fetch and verify, W&B, CLI, security.

A tiny real checkpoint (an MLP trained one epoch on 8x8 digits) is registered into a
temporary manifest; the package's own manifest is only read.
"""

import csv
import hashlib
import importlib.util
import json
import re
import shutil
import sys
from importlib.resources import files
from pathlib import Path

import cv2
import lightning.pytorch as L
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.metrics import f1_score

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier
from lightning_cv import zoo as zoo_package
from lightning_cv.cli import main
from lightning_cv.cli.zoo import table_files, zoo_main
from lightning_cv.errors import DataFileError
from lightning_cv.hub.files import TIMEOUT_S, cached_path
from lightning_cv.hub.manifest import (
    MANIFEST_ENV,
    PACKAGE_MANIFEST,
    TABLE_BEGIN,
    TABLE_END,
    TTA,
    ZooEntry,
    update_table,
    write_manifest,
)
from lightning_cv.models import create_model, list_models
from lightning_cv.preprocessing import CHECKPOINT_KEY
from lightning_cv.zoo import (
    get_entry,
    list_entries,
    load,
    load_backbone_weights,
    read_manifest,
    render_table,
)
from lightning_cv.zoo import register as register_module
from lightning_cv.zoo.register import KEPT_KEYS

from .conftest import REPO

NAME = "mlp.digits"
FAKE_KEY = "k" * 40  # the form of a W&B API key; no server ever sees it
RECIPE = """\
seed_everything: 0
model:
  backbone: mlp
  backbone_kwargs: {hidden_sizes: [HIDDEN]}
data:
  class_path: lightning_cv.data.DigitsDataModule
  init_args: {image_size: 8, batch_size: 128}
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_a_byte(source: Path, destination: Path) -> None:
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A full Lightning checkpoint (optimizer state included) of an MLP after one epoch."""
    folder = tmp_path_factory.mktemp("trained")
    data = DigitsDataModule(image_size=8, batch_size=64)
    model = ImageClassifier(
        "mlp",
        backbone_kwargs={"hidden_sizes": [32]},
        num_classes=10,
        in_channels=1,
        image_size=8,
        class_names=data.class_names,
        lr=0.01,
    )
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=folder,
    )
    trainer.fit(model, datamodule=data)
    trainer.save_checkpoint(folder / "raw.ckpt")
    return folder / "raw.ckpt"


def _new_zoo(folder: Path, hidden: int = 32) -> dict[str, Path]:
    """An empty manifest, a README with table markers and a recipe in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in ("manifest.yaml", "README.md", "recipe.yaml")}
    paths["manifest.yaml"].write_text("entries: []\n")
    paths["README.md"].write_text(f"# Zoo\n\n{TABLE_BEGIN}\n{TABLE_END}\n\nThe end.\n")
    paths["recipe.yaml"].write_text(RECIPE.replace("HIDDEN", str(hidden)))
    return paths


def _register_args(trained: Path, paths: dict[str, Path], *extra: str) -> list[str]:
    return [
        "register", str(trained), "--name", NAME, "--recipe", str(paths["recipe.yaml"]),
        "--data.root", str(paths["manifest.yaml"].parent),
        "--manifest", str(paths["manifest.yaml"]), "--table+", str(paths["README.md"]), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def zoo(trained, tmp_path_factory) -> Path:
    """A temporary zoo manifest with one bundled entry, registered through the CLI."""
    paths = _new_zoo(tmp_path_factory.mktemp("zoo"))
    options = [
        "--bundle", "true", "--training_time_s", "12.5", "--reference_acc", "97.5",
        "--reference", "a made-up target", "--note", "one epoch only, so the target is missed",
    ]  # fmt: skip
    zoo_main(_register_args(trained, paths, *options))
    return paths["manifest.yaml"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty download cache for every test, and a (fake) W&B key, online."""
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv(MANIFEST_ENV, raising=False)
    return tmp_path / "home" / "zoo"


def _copy_zoo(zoo: Path, folder: Path, entry: ZooEntry | None = None) -> Path:
    """A copy of the zoo's manifest and bundled files, optionally with one entry replaced."""
    shutil.copytree(zoo.parent / "checkpoints", folder / "checkpoints")
    manifest = folder / "manifest.yaml"
    write_manifest([entry or get_entry(NAME, zoo)], manifest)
    return manifest


def _bundled(zoo: Path) -> Path:
    return zoo.parent / "checkpoints" / f"{NAME}.ckpt"


def _test_split() -> tuple[np.ndarray, np.ndarray]:
    data = DigitsDataModule(image_size=8)
    return data.load_split("test")


# --- register -------------------------------------------------------------------------------


def test_register_writes_a_stripped_checkpoint_and_a_measured_entry(zoo, trained):
    entry = get_entry(NAME, zoo)
    bundled = zoo.parent / "checkpoints" / f"{NAME}.ckpt"
    assert entry.file == f"checkpoints/{NAME}.ckpt"
    assert "optimizer_states" in torch.load(trained, weights_only=True)
    clean = torch.load(bundled, weights_only=True)
    assert set(clean) == set(KEPT_KEYS)
    assert (entry.sha256, entry.file_size) == (_sha256(bundled), bundled.stat().st_size)

    # the oracle: scikit-learn's metrics over the model's own test-split predictions
    model = ImageClassifier.load_from_checkpoint(bundled, weights_only=True).eval()
    images, labels = _test_split()
    data = DigitsDataModule(image_size=8)
    batch = torch.stack([data.build_transform("eval")(image=image)["image"] for image in images])
    with torch.no_grad():
        logits = model(batch)
    predictions = logits.argmax(1).numpy()
    top5 = (logits.topk(5).indices == torch.from_numpy(labels)[:, None]).any(1).float().mean()
    assert entry.metrics.acc == round(100 * float((predictions == labels).mean()), 2)
    assert entry.metrics.acc_top5 == round(100 * float(top5), 2)
    assert entry.metrics.f1 == pytest.approx(
        100 * f1_score(labels, predictions, average="macro"), abs=0.01
    )

    # the architecture, classes and size live in the checkpoint; the entry adds the rest
    facts = {key: clean["hyper_parameters"][key] for key in ("backbone", "backbone_kwargs")}
    assert facts == {"backbone": "mlp", "backbone_kwargs": {"hidden_sizes": [32]}}
    assert list(clean["hyper_parameters"]["class_names"]) == list("0123456789")
    assert clean["datamodule_hyper_parameters"] == {"image_size": 8, "batch_size": 128}
    assert (entry.dataset, entry.datamodule) == ("Digits", "lightning_cv.data.DigitsDataModule")
    assert load(NAME, manifest=zoo).preprocessing.mean == data.mean  # recorded from the data module
    assert (entry.training_time_s, entry.reference_acc) == (12.5, 97.5)
    assert entry.note == "one epoch only, so the target is missed"
    assert (entry.wandb, entry.url) == (None, None)

    readme = (zoo.parent / "README.md").read_text()
    assert f"{TABLE_BEGIN}\n{render_table([entry])}\n{TABLE_END}\n\nThe end.\n" in readme
    row = f"| `{NAME}` | Digits | {entry.metrics.acc:.2f} | n/a | {entry.metrics.acc_top5:.2f} |"
    assert row in readme
    assert f"- `{NAME}`: target from a made-up target. one epoch only" in readme


def test_register_again_without_bundle_keeps_the_w_and_b_source_of_the_same_file(
    zoo, trained, tmp_path, cache
):
    paths = _new_zoo(tmp_path / "zoo")
    published = get_entry(NAME, zoo).model_copy(
        update={"file": None, "wandb": "me/zoo/mlp.digits:v0"}
    )
    write_manifest([published], paths["manifest.yaml"])
    zoo_main(_register_args(trained, paths))
    entry = get_entry(NAME, paths["manifest.yaml"])
    assert entry.sha256 == published.sha256  # the same clean bytes again
    assert (entry.file, entry.wandb) == (None, "me/zoo/mlp.digits:v0")
    assert cached_path(entry).parent == cache and cached_path(entry).is_file()
    assert not (tmp_path / "zoo" / "checkpoints").exists()


def test_register_half_stores_float16_weights_and_measures_them(zoo, trained, tmp_path):
    paths = _new_zoo(tmp_path / "zoo")
    zoo_main([*_register_args(trained, paths), "--bundle", "true", "--half", "true"])
    entry, full = get_entry(NAME, paths["manifest.yaml"]), get_entry(NAME, zoo)
    assert (entry.weights_dtype, full.weights_dtype) == ("float16", "float32")
    stored = torch.load(tmp_path / "zoo" / entry.file, weights_only=True)["state_dict"]
    assert {tensor.dtype for tensor in stored.values()} == {torch.float16}
    assert entry.file_size < full.file_size  # (the weights take half; pickling adds a fixed part)

    # the model holds float32 weights equal to the float16 ones, and the entry measured them
    pretrained = load(NAME, manifest=paths["manifest.yaml"])
    for name, tensor in pretrained.model.state_dict().items():
        assert tensor.dtype == torch.float32
        assert torch.equal(tensor, stored[f"backbone.{name}"].float())
    images, labels = _test_split()
    batch = torch.stack([pretrained.batch([image])[0] for image in images])
    with torch.no_grad():
        predictions = pretrained.model(batch).argmax(1).numpy()
    assert entry.metrics.acc == round(100 * float((predictions == labels).mean()), 2)


def test_register_refuses_bad_input_before_writing(trained, tmp_path, monkeypatch):
    paths = _new_zoo(tmp_path / "zoo", hidden=64)
    before = paths["manifest.yaml"].read_text()
    recipe = str(paths["recipe.yaml"])
    message = (
        f"the checkpoint is mlp {{'hidden_sizes': [32]}} but recipe {recipe!r} builds mlp "
        "{'hidden_sizes': [64]}; pass the recipe that trained it"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        zoo_main(_register_args(trained, paths))

    arguments = _register_args(trained, paths)
    arguments[arguments.index(NAME)] = "lenet5.digits"
    with pytest.raises(DataFileError, match=re.escape("zoo entry name 'lenet5.digits' must read")):
        zoo_main(arguments)

    paths["recipe.yaml"].write_text(RECIPE.replace("HIDDEN", "32"))  # the right recipe now
    monkeypatch.setattr(register_module, "BUNDLE_LIMIT", 1000)
    with pytest.raises(ConfigError, match=re.escape("over the 0 MB limit; register it without")):
        zoo_main([*_register_args(trained, paths), "--bundle", "true"])

    paths["README.md"].write_text("# no markers\n")
    with pytest.raises(ConfigError, match=re.escape("has no zoo table markers; add the lines")):
        zoo_main(_register_args(trained, paths))
    assert paths["manifest.yaml"].read_text() == before


# --- manifest -------------------------------------------------------------------------------

BAD_VALUES = [
    ({"sha256": "abc"}, "sha256 must be 64 lowercase hex digits, got 'abc'"),
    ({"name": "LeNet5.mnist"}, "name must be arch.dataset in lowercase letters, digits and"),
    ({"metrics": [80.0]}, "metrics must be a mapping of acc, f1 (and acc_top5, acc_tta) in"),
    ({"metrics": {"acc": 101, "f1": 1}}, "metrics.acc must be a number in [0, 100], got 101"),
    ({"file_size": 0}, "file_size must be a positive number of bytes, got 0"),
    ({"datamodule": "MNIST"}, "datamodule must be a class path like 'pkg.Class', got 'MNIST'"),
    ({"reference_acc": -3}, "reference_acc must be a number in [0, 100], got -3"),
    ({"wandb": "mlp.digits:latest"}, "wandb must be entity/project/name:alias"),
    ({"url": "http://example.com/m.ckpt"}, "url must be an https:// URL"),
    ({"file": "../m.ckpt"}, "file must be a .ckpt path relative to the manifest's folder"),
    ({"training_time_s": -1}, "training_time_s must be a number >= 0, got -1"),
    ({"weights_dtype": "int8"}, "weights_dtype must be one of ['float32', 'float16'], got 'int8'"),
    ({"tta": {"shifts": -1}}, "tta.shifts must be an int >= 0, got -1"),
    ({"tta": {"padding": "edge"}}, "tta.padding must be one of ['reflect', 'zeros'], got 'edge'"),
    ({"metrics": {"acc": 1, "f1": 1, "acc_tta": 101}}, "metrics.acc_tta must be a number in"),
]


@pytest.mark.parametrize(("change", "message"), BAD_VALUES, ids=lambda v: str(v)[:30])
def test_schema_refuses_bad_values(zoo, change, message):
    record = {**get_entry(NAME, zoo).model_dump(exclude_none=True), **change}
    name = record["name"]
    with pytest.raises(DataFileError, match=re.escape(f"m.yaml: entry {name!r}: {message}")):
        ZooEntry.parse(record, source="m.yaml")


def test_schema_required_and_unknown_keys_and_a_frozen_record(zoo):
    entry = get_entry(NAME, zoo)
    record = entry.model_dump(exclude_none=True)
    assert ZooEntry.parse(record) == entry
    missing = {k: v for k, v in record.items() if k not in ("sha256", "metrics", "note")}
    with pytest.raises(DataFileError, match=re.escape("lacks required keys ['metrics', 'sha256']")):
        ZooEntry.parse(missing, source="m.yaml")
    message = "m.yaml: entry 'mlp.digits' has unknown keys ['accuracy', 'architecture']; expected"
    with pytest.raises(DataFileError, match=re.escape(message)):  # a fact of the checkpoint's
        ZooEntry.parse({**record, "accuracy": 0.9, "architecture": "mlp"}, source="m.yaml")
    with pytest.raises(DataFileError, match=re.escape("m.yaml: entry '?': an entry must be a")):
        ZooEntry.parse(["name"], source="m.yaml")
    with pytest.raises(ValueError, match="frozen"):
        entry.sha256 = "0" * 64


def test_a_manifest_in_the_old_metric_names_is_refused_naming_the_new_ones(zoo, tmp_path, capsys):
    """Manifests before the logged vocabulary said top1, top5, top1_tta and reference_top1."""
    record = get_entry(NAME, zoo).model_dump(exclude_none=True)
    record["metrics"] = {"top1": 90.0, "top5": 99.0, "f1": 89.0}
    record["reference_top1"] = 88.0
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump({"entries": [record]}))
    before = path.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", "list", "--manifest", str(path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"lightning-cv: error: {path}: entry 'mlp.digits' lacks required keys "
        "['metrics.acc'] and has unknown keys ['metrics.top1', 'metrics.top5', "
        "'reference_top1']; expected some of ['datamodule', 'dataset', 'file', 'file_size', "
        "'metrics', 'metrics.acc', 'metrics.acc_top5', 'metrics.acc_tta', 'metrics.f1', 'name', "
        "'note', 'recipe', 'reference', 'reference_acc', 'sha256', 'trained_on', "
        "'training_time_s', 'tta', 'url', 'wandb', 'weights_dtype']\n"
    )
    assert path.read_bytes() == before


def test_manifest_file_errors(zoo, tmp_path):
    path = tmp_path / "manifest.yaml"
    with pytest.raises(
        DataFileError, match=re.escape(f"zoo manifest {str(path)!r} does not exist")
    ):
        read_manifest(path)
    path.write_text("entries: [\n")
    with pytest.raises(DataFileError, match=re.escape("is not valid YAML: while parsing")):
        read_manifest(path)
    path.write_text("models: []\n")
    with pytest.raises(DataFileError, match=re.escape("must hold one key, entries, with a list")):
        read_manifest(path)
    record = get_entry(NAME, zoo).model_dump(exclude_none=True)
    path.write_text(yaml.safe_dump({"entries": [record, record]}))
    with pytest.raises(DataFileError, match=re.escape("lists ['mlp.digits'] more than once")):
        read_manifest(path)


def test_the_package_manifest_is_valid_bundled_and_tabled():
    assert files("lightning_cv.zoo").joinpath("manifest.yaml").is_file()
    entries = read_manifest(PACKAGE_MANIFEST)
    bundled = {entry.file: entry for entry in entries if entry.file is not None}
    on_disk = sorted((PACKAGE_MANIFEST.parent / "checkpoints").glob("*.ckpt"))
    assert {f"checkpoints/{path.name}" for path in on_disk} == set(bundled)  # no orphans
    assert sum(path.stat().st_size for path in on_disk) <= register_module.BUNDLE_LIMIT
    for entry in entries:
        assert (REPO / entry.recipe).is_file(), entry.recipe
        if entry.file is not None:
            assert _sha256(PACKAGE_MANIFEST.parent / entry.file) == entry.sha256, entry.name
            _, hparams = load_backbone_weights(entry.name)
            assert entry.name.split(".")[0] == hparams["backbone"] in list_models()
    for page in table_files(REPO):  # zoo/README.md and the docs pages with the markers
        assert not update_table(page, render_table(entries), write=False), (
            f"{page} is out of date: run `lightning-cv zoo table`"
        )


# --- test-time augmentation -----------------------------------------------------------------

TTA_RECIPE = (
    RECIPE.replace("HIDDEN", "32")
    + """\
trainer:
  callbacks:
    - class_path: lightning_cv.callbacks.TestTimeAugmentation
      init_args: {shifts: 1}
"""
)


def _shifted_views(batch: np.ndarray) -> list[np.ndarray]:
    """The batch and its 1-pixel shifts right, left, down and up, the border reflected."""
    right = np.pad(batch, ((0, 0), (0, 0), (0, 0), (1, 0)), mode="reflect")[..., :-1]
    left = np.pad(batch, ((0, 0), (0, 0), (0, 0), (0, 1)), mode="reflect")[..., 1:]
    down = np.pad(batch, ((0, 0), (0, 0), (1, 0), (0, 0)), mode="reflect")[..., :-1, :]
    up = np.pad(batch, ((0, 0), (0, 0), (0, 1), (0, 0)), mode="reflect")[..., 1:, :]
    return [batch, right, left, down, up]


@pytest.fixture(scope="module")
def tta_zoo(trained, tmp_path_factory) -> Path:
    """A manifest whose entry's recipe lists a TestTimeAugmentation (1-pixel shifts)."""
    paths = _new_zoo(tmp_path_factory.mktemp("tta_zoo"))
    paths["recipe.yaml"].write_text(TTA_RECIPE)
    zoo_main(_register_args(trained, paths, "--bundle", "true", "--trained_on", "2 CPU cores"))
    return paths["manifest.yaml"]


def _averaged_probabilities(pretrained, batch: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        views = [torch.from_numpy(view) for view in _shifted_views(batch.numpy())]
        return np.mean([pretrained.model(v).softmax(1).numpy() for v in views], axis=0)


def test_register_records_the_recipes_tta_and_acc_with_it(tta_zoo, zoo, capsys):
    entry, plain = get_entry(NAME, tta_zoo), get_entry(NAME, zoo)
    assert entry.tta == TTA(flip=False, shifts=1, padding="reflect")
    assert entry.metrics.model_dump(exclude={"acc_tta"}) == plain.metrics.model_dump(
        exclude={"acc_tta"}
    )  # the same file, measured alike; acc_tta added
    pretrained = load(NAME, manifest=tta_zoo)
    images, labels = _test_split()
    batch = torch.stack([pretrained.batch([image])[0] for image in images])
    predictions = _averaged_probabilities(pretrained, batch).argmax(1)
    assert entry.metrics.acc_tta == round(100 * float((predictions == labels).mean()), 2)

    readme = (tta_zoo.parent / "README.md").read_text()
    metrics = entry.metrics
    assert f"| `{NAME}` | Digits | {metrics.acc:.2f} | {metrics.acc_tta:.2f} |" in readme
    views = "mean of 5 views: the image, 1-pixel shifts four ways (reflect padding)"
    assert f"- `{NAME}`: TTA: {views}. Trained on 2 CPU cores." in readme
    zoo_main(["list", "--manifest", str(tta_zoo)])
    listed = capsys.readouterr().out.splitlines()[1].split()
    assert listed[4:6] == [f"{metrics.f1:.2f}", f"{metrics.acc_tta:.2f}"]


def test_evaluate_re_measures_acc_with_tta_too(tta_zoo, tmp_path, capsys):
    entry = get_entry(NAME, tta_zoo)
    zoo_main(["evaluate", NAME, "--data.root", str(tmp_path), "--manifest", str(tta_zoo)])
    report = json.loads(capsys.readouterr().out)
    assert report["measured"] == entry.metrics.model_dump(exclude_none=True)
    assert (report["acc_difference"], report["acc_tta_difference"], report["ok"]) == (0, 0, True)
    off = entry.metrics.model_copy(update={"acc_tta": round(entry.metrics.acc_tta - 0.5, 2)})
    manifest = _copy_zoo(tta_zoo, tmp_path, entry.model_copy(update={"metrics": off}))
    with pytest.raises(SystemExit):
        zoo_main(["evaluate", NAME, "--data.root", str(tmp_path), "--manifest", str(manifest)])
    assert capsys.readouterr().err == (
        f"lightning-cv zoo evaluate: {NAME}: measured top-1 with TTA {entry.metrics.acc_tta:.2f} "
        f"differs from the manifest's {off.acc_tta:.2f} by more than 0.1 points\n"
    )


def test_predict_with_tta_averages_the_recipes_views(tta_zoo, zoo, tmp_path):
    pretrained = load(NAME, manifest=tta_zoo)
    grey = np.rint(load_digits().images[3] * 255 / 16).astype(np.uint8)
    batch = pretrained.batch([grey[..., None]])[0][None]
    expected = _averaged_probabilities(pretrained, batch)[0]
    ranked = pretrained.predict(grey, top_k=3, tta=True)
    order = np.argsort(-expected)[:3]
    assert [name for name, _ in ranked] == [pretrained.class_names[i] for i in order]
    assert [p for _, p in ranked] == pytest.approx(expected[order].tolist(), abs=1e-6)

    Image.fromarray(grey).save(tmp_path / "three.png")
    csv_path = tmp_path / "predictions.csv"
    zoo_main(["predict", NAME, str(tmp_path / "three.png"), "--tta", "true", "--top_k", "3",
              "--output", str(csv_path), "--manifest", str(tta_zoo)])  # fmt: skip
    row = next(csv.DictReader(csv_path.open()))
    assert [row[f"class_{k}"] for k in (1, 2, 3)] == [name for name, _ in ranked]
    assert [float(row[f"prob_{k}"]) for k in (1, 2, 3)] == pytest.approx(
        [p for _, p in ranked], abs=1e-5
    )
    message = f"{NAME} has no test-time augmentation: its recipe lists no TestTimeAugmentation"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(NAME, manifest=zoo).predict(grey, tta=True)


def test_a_bad_tta_in_the_recipe_is_refused_before_measuring(trained, tmp_path):
    paths = _new_zoo(tmp_path / "zoo")
    paths["recipe.yaml"].write_text(TTA_RECIPE.replace("{shifts: 1}", "{shift: 1}"))
    message = (
        "a recipe's TestTimeAugmentation has no option 'shift'; expected some of "
        "['flip', 'padding', 'shifts']"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        zoo_main(_register_args(trained, paths))
    assert paths["manifest.yaml"].read_text() == "entries: []\n"


# --- load -----------------------------------------------------------------------------------


def test_load_gives_a_ready_classifier_its_transform_and_classes(zoo, trained, monkeypatch):
    pretrained = load(NAME, manifest=zoo)
    assert not pretrained.model.training
    assert pretrained.class_names == tuple("0123456789") and pretrained.entry.name == NAME
    images, _ = _test_split()
    reference = ImageClassifier.load_from_checkpoint(trained, weights_only=True).eval()
    eval_transform = DigitsDataModule(image_size=8).build_transform("eval")
    batch = torch.stack([pretrained.batch([image])[0] for image in images[:16]])
    expected = torch.stack([eval_transform(image=image)["image"] for image in images[:16]])
    torch.testing.assert_close(batch, expected)
    with torch.no_grad():
        torch.testing.assert_close(pretrained.model(batch), reference(batch))

    monkeypatch.setenv(MANIFEST_ENV, str(zoo))
    assert [entry.name for entry in list_entries()] == [NAME]
    with pytest.raises(ConfigError, match=re.escape("unknown zoo entry 'lenet5.mnist'; expected")):
        load("lenet5.mnist")


def test_load_backbone_weights_fit_a_registry_model(zoo):
    net = create_model("mlp", num_classes=10, in_channels=1, image_size=8, hidden_sizes=[32])
    state, hparams = load_backbone_weights(NAME, architecture="mlp", manifest=zoo)
    net.load_state_dict(state)
    assert hparams["backbone_kwargs"] == {"hidden_sizes": [32]} and hparams["image_size"] == 8
    expected = load(NAME, manifest=zoo).model.state_dict()
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, expected[key])
    message = "zoo weights 'mlp.digits' are for 'mlp', not 'lenet5'"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_backbone_weights(NAME, architecture="lenet5", manifest=zoo)


def test_predict_top_k_of_images_of_any_mode_and_size(zoo, tmp_path, capsys):
    digit = np.rint(load_digits().images[0] * 255 / 16).astype(np.uint8)  # an 8x8 zero
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(digit).resize((40, 30)).convert("RGB").save(folder / "big_rgb.png")
    Image.fromarray(digit).save(folder / "small_grey.png")
    (folder / "notes.txt").write_text("not an image")
    pretrained = load(NAME, manifest=zoo)
    mean, std = pretrained.preprocessing.mean[0], pretrained.preprocessing.std[0]

    csv_path = tmp_path / "out" / "predictions.csv"
    predict = ["predict", NAME, str(folder), "--top_k", "3", "--output", str(csv_path)]
    zoo_main([*predict, "--manifest", str(zoo)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(folder / "big_rgb.png") and lines[4] == str(folder / "small_grey.png")
    assert lines[8:] == [f"wrote {csv_path}"]
    expected = ["path,class_1,prob_1,class_2,prob_2,class_3,prob_3"]
    for block, path in ((lines[1:4], "big_rgb.png"), (lines[5:8], "small_grey.png")):
        # the oracle: PIL's grey conversion, OpenCV's bilinear resize, then normalize by hand
        grey = np.asarray(Image.open(folder / path).convert("L"))
        pixels = cv2.resize(grey, (8, 8), interpolation=cv2.INTER_LINEAR) / 255.0
        batch = torch.tensor((pixels - mean) / std, dtype=torch.float32)[None, None]
        with torch.no_grad():
            probs = pretrained.model(batch).softmax(1)[0]
        values, indices = probs.topk(3)
        pairs = list(zip(values.tolist(), indices.tolist(), strict=True))
        assert block == [f"  {100 * value:6.2f}%  {index}" for value, index in pairs]
        expected.append([str(folder / path), *(f"{i},{v:.6f}" for v, i in pairs)])
    _assert_csv(csv_path, expected)

    one = ["predict", NAME, str(folder / "small_grey.png"), "--top_k", "20"]
    zoo_main([*one, "--output", str(tmp_path / "out" / "one.csv"), "--manifest", str(zoo)])
    assert len(capsys.readouterr().out.splitlines()) == 1 + 10 + 1
    with pytest.raises(ConfigError, match=re.escape("top_k must be >= 1, got 0")):
        zoo_main([*predict[:3], "--top_k", "0", "--manifest", str(zoo)])
    missing = tmp_path / "nope"
    with pytest.raises(
        DataFileError, match=re.escape(f"image or folder {str(missing)!r} does not")
    ):
        zoo_main(["predict", NAME, str(missing), "--manifest", str(zoo)])


def _assert_csv(path: Path, expected: list) -> None:
    """The CSV's header and cells exactly; probabilities within 2e-6 (a batch of one image and
    a batch of several differ in the last float bits)."""
    header, *rows = path.read_text().splitlines()
    assert header == expected[0]
    assert len(rows) == len(expected) - 1
    for row, cells in zip(rows, expected[1:], strict=True):
        got, want = row.split(","), ",".join(cells).split(",")
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            numeric = a.replace(".", "", 1).isdigit() and "." in a
            assert float(a) == pytest.approx(float(b), abs=2e-6) if numeric else a == b


@pytest.fixture
def fit_run(trained, tmp_path) -> Path:
    """The checkpoint in a `lightning-cv fit` run folder: checkpoints/ beside config.yaml."""
    checkpoint = tmp_path / "run" / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    shutil.copyfile(trained, checkpoint)
    data = {"class_path": "lightning_cv.data.DigitsDataModule", "init_args": {"image_size": 8}}
    (checkpoint.parent.parent / "config.yaml").write_text(yaml.safe_dump({"data": data}))
    return checkpoint


def test_predict_with_an_own_checkpoint_writes_the_true_class_of_class_folders(
    fit_run, trained, tmp_path, capsys
):
    images, labels = _test_split()
    folder = tmp_path / "photos"
    for index in range(4):  # folder/<class name>/<index>.png, as ImageFolderDataModule reads
        path = folder / str(labels[index]) / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index][..., 0]).save(path)
    output = tmp_path / "predictions.csv"
    zoo_main(["predict", str(fit_run), str(folder), "--top_k", "2", "--output", str(output)])
    model = ImageClassifier.load_from_checkpoint(trained, weights_only=True).eval()
    transform = DigitsDataModule(image_size=8).build_transform("eval")
    rows = ["path,label,class_1,prob_1,class_2,prob_2"]
    paths = sorted(folder.rglob("*.png"))  # one batch, in the CSV's order
    batch = torch.stack([transform(image=images[int(p.stem)])["image"] for p in paths])
    with torch.no_grad():
        all_probs = model(batch).softmax(1)
    for path, probs in zip(paths, all_probs, strict=True):
        index = int(path.stem)
        values, classes = probs.topk(2)
        pairs = zip(values.tolist(), classes.tolist(), strict=True)
        rows.append([str(path), str(labels[index]), *(f"{c},{v:.6f}" for v, c in pairs)])
    _assert_csv(output, rows)
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {output}"


def test_export_an_own_checkpoint(fit_run, trained, tmp_path, capsys):
    output = tmp_path / "own.pt2"
    zoo_main(["export", str(fit_run), "--output", str(output)])
    assert capsys.readouterr().out.startswith(f"wrote {output}: images (B, 1, 8, 8) normalized")
    exported = torch.export.load(output).module()
    model = ImageClassifier.load_from_checkpoint(trained, weights_only=True).eval()
    images = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(exported(images), model(images), atol=1e-5, rtol=0)


def test_a_checkpoint_without_a_preprocessing_record_is_refused_in_one_line(trained, tmp_path):
    checkpoint = torch.load(trained, weights_only=True)
    del checkpoint[CHECKPOINT_KEY]
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    message = (
        f"checkpoint {str(old)!r} has no preprocessing record ('lightning_cv_preprocessing'): "
        "it was written before lightning-cv saved one; retrain it, or add it with "
        "lightning_cv.zoo.register.add_preprocessing (zoo/README.md)"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        load(old)


def test_pretrained_predict_takes_a_path_a_pil_image_pixels_or_a_batch(zoo, tmp_path):
    pretrained = load(NAME, manifest=zoo)
    grey = np.rint(load_digits().images[5] * 255 / 16).astype(np.uint8)  # (8, 8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    Image.fromarray(rgb).save(tmp_path / "five.png")
    expected = pretrained.predict(grey, top_k=3)
    assert [name for name, _ in expected] == [
        name for name, _ in pretrained.predict(grey[..., None], top_k=3)
    ]
    for image in (tmp_path / "five.png", str(tmp_path / "five.png"), Image.fromarray(rgb), rgb):
        assert pretrained.predict(image, top_k=3) == expected  # RGB made grey as the CLI does
    batch = pretrained.batch([grey[..., None]])[0][None].repeat(2, 1, 1, 1)
    for ranked in pretrained.predict(batch, top_k=3):  # one image's scores batched: float noise
        assert [name for name, _ in ranked] == [name for name, _ in expected]
        assert [p for _, p in ranked] == pytest.approx([p for _, p in expected], abs=1e-6)
    message = (
        "an image must be a path, a PIL image or an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) "
        "uint8 array, got a float32 array of shape (8, 8, 3)"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        pretrained.predict(rgb.astype(np.float32))


# --- where files come from ------------------------------------------------------------------


class _FakeArtifact:
    def __init__(self, source: Path) -> None:
        self.source = source

    def download(self, root: str) -> str:
        shutil.copyfile(self.source, Path(root) / f"{NAME}.ckpt")
        return root


def _fake_api(source: Path, calls: list) -> type:
    """A stand-in for ``wandb.Api`` whose artifacts hold ``source``."""

    class FakeApi:
        def __init__(self, timeout: int | None = None) -> None:
            self.timeout = timeout

        def artifact(self, name: str, type: str | None = None) -> _FakeArtifact:
            calls.append((name, type, self.timeout))
            return _FakeArtifact(source)

    return FakeApi


def test_w_and_b_source_is_downloaded_once_into_the_cache(zoo, tmp_path, monkeypatch, cache):
    import wandb

    entry = get_entry(NAME, zoo).model_copy(update={"file": None, "wandb": "me/zoo/mlp.digits:v0"})
    manifest = tmp_path / "manifest.yaml"
    write_manifest([entry], manifest)
    calls = []
    monkeypatch.setattr(wandb, "Api", _fake_api(_bundled(zoo), calls))
    first = load(NAME, manifest=manifest)
    assert calls == [("me/zoo/mlp.digits:v0", "model", TIMEOUT_S)]
    assert cached_path(entry).parent == cache and _sha256(cached_path(entry)) == entry.sha256
    assert sorted(path.name for path in cache.iterdir()) == [cached_path(entry).name]
    second = load(NAME, manifest=manifest)
    assert len(calls) == 1
    torch.testing.assert_close(first.model.state_dict(), second.model.state_dict())


def test_tampered_download_is_refused_and_not_cached(zoo, tmp_path, monkeypatch, cache):
    import wandb

    entry = get_entry(NAME, zoo).model_copy(update={"file": None, "wandb": "me/zoo/mlp.digits:v0"})
    manifest = tmp_path / "manifest.yaml"
    write_manifest([entry], manifest)
    tampered = tmp_path / "tampered.ckpt"
    _flip_a_byte(_bundled(zoo), tampered)
    monkeypatch.setattr(wandb, "Api", _fake_api(tampered, []))
    message = (
        f"zoo entry 'mlp.digits': the file from me/zoo/mlp.digits:v0 has sha256 "
        f"{_sha256(tampered)}, the manifest states {entry.sha256}; nothing was saved to the cache"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        load(NAME, manifest=manifest)
    assert list(cache.iterdir()) == []


def test_url_is_tried_when_w_and_b_fails(zoo, tmp_path, monkeypatch):
    import wandb

    class OfflineApi:
        def __init__(self, timeout=None):
            pass

        def artifact(self, name, type=None):
            raise wandb.errors.CommError("could not reach api.wandb.ai")

    url = "https://example.com/mlp.digits.ckpt"
    update = {"file": None, "wandb": "me/zoo/mlp.digits:v0", "url": url}
    entry = get_entry(NAME, zoo).model_copy(update=update)
    manifest = tmp_path / "manifest.yaml"
    write_manifest([entry], manifest)
    monkeypatch.setattr(wandb, "Api", OfflineApi)
    opened = []

    def download(source, destination, hash_prefix, progress):  # torch.hub's, without network
        opened.append((source, hash_prefix))
        shutil.copyfile(_bundled(zoo), destination)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    assert load(NAME, manifest=manifest).entry == entry and opened == [(url, entry.sha256)]

    cached_path(entry).unlink()

    def refuse(source, destination, hash_prefix, progress):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    message = (
        "zoo entry 'mlp.digits': could not download it: me/zoo/mlp.digits:v0: downloading the "
        f"W&B artifact me/zoo/mlp.digits:v0: W&B at {_w_and_b_host()} failed within 15 s "
        "(CommError: could not reach api.wandb.ai); check the network, the API key and "
        f"WANDB_BASE_URL; {url}: no network"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        load(NAME, manifest=manifest)


def test_tampered_cached_file_is_removed_and_the_bundled_copy_used_next(zoo, cache):
    entry = get_entry(NAME, zoo)
    _flip_a_byte(zoo.parent / entry.file, cached_path(entry))
    actual = _sha256(cached_path(entry))
    message = (
        f"zoo entry 'mlp.digits': cached file {str(cached_path(entry))!r} has sha256 {actual}, "
        f"the manifest states {entry.sha256}; it was damaged or tampered with and has been "
        "removed from the cache; run again to fetch a fresh copy"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        load(NAME, manifest=zoo)
    assert not cached_path(entry).exists()
    assert load(NAME, manifest=zoo).entry == entry


def test_tampered_bundled_file_is_refused_and_kept(zoo, tmp_path):
    manifest = _copy_zoo(zoo, tmp_path)
    bundled = tmp_path / "checkpoints" / f"{NAME}.ckpt"
    _flip_a_byte(_bundled(zoo), bundled)
    message = (
        f"zoo entry 'mlp.digits': bundled file {str(bundled)!r} has sha256 {_sha256(bundled)}, "
        f"the manifest states {get_entry(NAME, zoo).sha256}; the file was changed: restore it"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        load(NAME, manifest=manifest)
    assert bundled.is_file()


def test_entry_without_a_source_says_it_is_not_published(zoo, tmp_path):
    manifest = tmp_path / "manifest.yaml"
    write_manifest([get_entry(NAME, zoo).model_copy(update={"file": None})], manifest)
    message = (
        "zoo entry 'mlp.digits' cannot be loaded: it is not bundled and it has no W&B artifact "
        "or URL (not published yet)"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        load(NAME, manifest=manifest)


# --- security -------------------------------------------------------------------------------


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: it creates a file, as an attack would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_not_executed(zoo, trained, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "checkpoints" / "evil.ckpt"
    evil.parent.mkdir()
    clean = torch.load(_bundled(zoo), weights_only=True)
    torch.save({**clean, "extra": _Payload(marker)}, evil)
    entry = get_entry(NAME, zoo).model_copy(
        update={"file": "checkpoints/evil.ckpt", "sha256": _sha256(evil)}
    )
    manifest = tmp_path / "manifest.yaml"
    write_manifest([entry], manifest)
    message = (
        f"checkpoint {str(evil)!r} holds pickled objects other than tensors and plain values "
        "(unpickling it would call io.open); refusing to load it (loading could run code)"
    )
    with pytest.raises(DataFileError, match=re.escape(message)):
        load(NAME, manifest=manifest)
    paths = _new_zoo(tmp_path / "zoo")
    with pytest.raises(DataFileError, match=re.escape(message)):
        zoo_main(_register_args(evil, paths))
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the payload is real: unsafe loading runs it
    assert marker.exists()


# --- W&B publishing -------------------------------------------------------------------------


def test_publish_offline_logs_the_file_and_its_metadata(zoo, tmp_path, monkeypatch, capsys):
    import wandb

    wandb.teardown()  # forget any earlier test's W&B settings: the folders below must apply
    for variable, folder in (("DIR", "runs"), ("DATA_DIR", "data"), ("CACHE_DIR", "cache")):
        monkeypatch.setenv(f"WANDB_{variable}", str(tmp_path / folder))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    entry = get_entry(NAME, zoo)
    checkpoint = zoo.parent / entry.file
    before = zoo.read_text()
    zoo_main(["publish", str(checkpoint), "--name", NAME, "--entity", "me", "--project", "zoo",
              "--manifest", str(zoo)])  # fmt: skip
    out = capsys.readouterr().out
    (run,) = (tmp_path / "runs" / "wandb").glob("offline-run-*")
    assert out.startswith(
        f"W&B is in offline mode: the artifact mlp.digits was logged to the offline run {run}, "
        "not published (publishing needs a server): run `wandb sync"
    )
    assert "`wandb: me/zoo/mlp.digits:v<N>`" in out and zoo.read_text() == before

    # the run's log records the artifact with the entry as metadata and the staged file
    wandb.teardown()  # wait for W&B's service to finish writing the run's log
    log = next(run.glob("run-*.wandb")).read_bytes().decode("latin-1")
    metadata, _ = json.JSONDecoder().raw_decode(log, log.index('{"name":'))
    expected = entry.model_dump(exclude_none=True, exclude={"file", "wandb", "url"})
    assert metadata.pop("architecture")["backbone"] == "mlp"  # in full: tests/test_publish.py
    saved = torch.load(checkpoint, weights_only=True)[CHECKPOINT_KEY]
    assert metadata.pop("preprocessing") == saved
    assert metadata == json.loads(json.dumps(expected))
    staging = list((tmp_path / "data" / "artifacts" / "staging").iterdir())
    [staged] = [path for path in staging if path.read_bytes() == checkpoint.read_bytes()]
    assert len(staging) == 2 and str(staged) in log  # and the model card (tests/test_publish.py)
    assert f"{NAME}.ckpt" in log and "latest" in log


def test_publish_refuses_a_file_that_is_not_the_registered_one(zoo, trained):
    message = (
        f"checkpoint {str(trained)!r} has sha256 {_sha256(trained)}, the entry 'mlp.digits' "
        f"states {get_entry(NAME, zoo).sha256}; publish the file `lightning-cv zoo register` wrote"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        zoo_main(["publish", str(trained), "--name", NAME, "--entity", "me", "--project", "zoo",
                  "--manifest", str(zoo)])  # fmt: skip


def test_the_zoo_imports_wandb_only_to_publish_or_download_from_w_and_b(zoo, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # from here, `import wandb` raises
    for path in sorted(Path(zoo_package.__file__).parent.glob("*.py")):  # each module afresh
        spec = importlib.util.spec_from_file_location(f"_probe_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look themselves up
        spec.loader.exec_module(module)
    zoo_main(["list", "--manifest", str(zoo)])
    assert load(NAME, manifest=zoo).entry.name == NAME
    with pytest.raises(ImportError, match="import of wandb halted"):
        zoo_main(["publish", str(_bundled(zoo)), "--name", NAME, "--entity", "me", "--project",
                  "zoo", "--manifest", str(zoo)])  # fmt: skip


def _w_and_b_without_a_key(tmp_path, monkeypatch) -> None:
    """No WANDB_API_KEY and an empty ~/.netrc: W&B has no credentials."""
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    (tmp_path / "netrc").write_text("")


def _w_and_b_host() -> str:
    """The server W&B dials by default (its own choice, which changes between releases)."""
    import wandb

    return wandb.setup().settings.base_url


def _publish(zoo: Path) -> list[str]:
    return ["publish", str(_bundled(zoo)), "--name", NAME, "--entity", "me", "--project", "zoo",
            "--manifest", str(zoo)]  # fmt: skip


def _no_network_call(*args, **kwargs):
    raise AssertionError("W&B was called")


def test_publish_without_an_api_key_says_how_to_log_in_before_any_network_call(
    zoo, tmp_path, monkeypatch
):
    import wandb

    _w_and_b_without_a_key(tmp_path, monkeypatch)
    monkeypatch.setattr(wandb, "init", _no_network_call)
    message = (
        f"publishing mlp.digits needs a W&B API key for {_w_and_b_host()}: run `wandb login` "
        "or set WANDB_API_KEY"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        zoo_main(_publish(zoo))


def test_publish_gives_w_and_b_the_documented_timeout(zoo, monkeypatch):
    import wandb

    seen = []

    def init(**options):
        seen.append(options["settings"].init_timeout)
        raise wandb.errors.CommError("timed out")

    monkeypatch.setattr(wandb, "init", init)
    message = (
        f"publishing mlp.digits: W&B at {_w_and_b_host()} failed within 15 s (CommError: timed "
        "out); check the network, the API key and WANDB_BASE_URL"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        zoo_main(_publish(zoo))
    assert seen == [TIMEOUT_S] == [15]


@pytest.mark.parametrize("mode", ["offline", "no-key"])
def test_a_w_and_b_source_offline_or_without_a_key_fails_in_one_line(
    mode, zoo, tmp_path, monkeypatch
):
    import wandb

    if mode == "offline":
        monkeypatch.setenv("WANDB_MODE", "offline")
        problem = "needs a W&B server, but W&B is in offline mode (WANDB_MODE=offline)"
    else:
        _w_and_b_without_a_key(tmp_path, monkeypatch)
        problem = (
            f"needs a W&B API key for {_w_and_b_host()}: run `wandb login` or set WANDB_API_KEY"
        )
    monkeypatch.setattr(wandb, "Api", _no_network_call)
    update = {"file": None, "wandb": "me/zoo/mlp.digits:v0"}
    manifest = tmp_path / "manifest.yaml"
    write_manifest([get_entry(NAME, zoo).model_copy(update=update)], manifest)
    message = (
        "zoo entry 'mlp.digits': could not download it: me/zoo/mlp.digits:v0: downloading the "
        f"W&B artifact me/zoo/mlp.digits:v0 {problem}"
    )
    with pytest.raises(DataFileError, match=f"^{re.escape(message)}$"):
        zoo_main(["download", NAME, "--manifest", str(manifest)])


# --- the other commands ---------------------------------------------------------------------


def test_list_info_download_and_table_commands(zoo, capsys, tmp_path):
    entry = get_entry(NAME, zoo)
    zoo_main(["list", "--manifest", str(zoo)])
    lines = capsys.readouterr().out.splitlines()
    header = ["name", "dataset", "acc", "acc_top5", "f1", "acc_tta", "size", "files"]
    assert lines[0].split() == header  # the manifest's keys
    assert lines[1].split() == [
        NAME, "Digits", f"{entry.metrics.acc:.2f}", f"{entry.metrics.acc_top5:.2f}",
        f"{entry.metrics.f1:.2f}", "-", f"{entry.file_size / 1e6:.2f}", "MB", "bundled",
    ]  # fmt: skip
    zoo_main(["info", NAME, "--manifest", str(zoo)])
    checkpoint = {
        "backbone": "mlp", "backbone_kwargs": {"hidden_sizes": [32]}, "num_classes": 10,
        "in_channels": 1, "image_size": 8, "class_names": list("0123456789"),
        "preprocessing": load(NAME, manifest=zoo).preprocessing.to_checkpoint(),
    }  # fmt: skip
    info = yaml.safe_load(capsys.readouterr().out)
    assert info == {**entry.model_dump(exclude_none=True), "checkpoint": checkpoint}
    zoo_main(["download", NAME, "--manifest", str(zoo)])
    assert capsys.readouterr().out == f"{zoo.parent / entry.file}\n"

    empty = tmp_path / "empty.yaml"
    empty.write_text("entries: []\n")
    zoo_main(["list", "--manifest", str(empty)])
    assert capsys.readouterr().out == f"no zoo entries in {empty}\n"
    readme = tmp_path / "README.md"
    readme.write_text(f"{TABLE_BEGIN}\nold\n{TABLE_END}\n")
    with pytest.raises(SystemExit) as exit_info:
        zoo_main(["table", "--check", "true", "--table+", str(readme), "--manifest", str(zoo)])
    assert exit_info.value.code == 1
    zoo_main(["table", "--table+", str(readme), "--manifest", str(zoo)])
    assert readme.read_text() == f"{TABLE_BEGIN}\n{render_table([entry])}\n{TABLE_END}\n"


def test_evaluate_reports_json_and_fails_when_off_by_more_than_the_tolerance(zoo, tmp_path, capsys):
    entry = get_entry(NAME, zoo)
    zoo_main(["evaluate", NAME, "--data.root", str(tmp_path), "--manifest", str(zoo)])
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "name": NAME,
        "measured": entry.metrics.model_dump(exclude_none=True),
        "manifest": entry.metrics.model_dump(exclude_none=True),
        "acc_difference": 0.0,
        "tolerance": 0.1,
        "ok": True,
    }
    off = entry.metrics.model_copy(update={"acc": round(entry.metrics.acc - 0.5, 2)})
    manifest = _copy_zoo(zoo, tmp_path, entry.model_copy(update={"metrics": off}))
    with pytest.raises(SystemExit) as exit_info:
        zoo_main(["evaluate", NAME, "--data.root", str(tmp_path), "--manifest", str(manifest)])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["acc_difference"] == 0.5
    assert (
        f"lightning-cv zoo evaluate: mlp.digits: measured top-1 {entry.metrics.acc:.2f} differs "
        f"from the manifest's {off.acc:.2f} by more than 0.1 points"
    ) in captured.err.splitlines()
