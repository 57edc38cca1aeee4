"""Fine-tuning zoo weights: loading, a new head, freezing, HeadFirstFinetuning, checkpoints that
rebuild without the zoo, and the image-folder recipe."""

import re

import lightning.pytorch as L
import pytest
import torch
from lightning.pytorch.callbacks import BackboneFinetuning, Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_cv.models._registry
from lightning_cv import ConfigError, ImageClassifier
from lightning_cv.callbacks import HeadFirstFinetuning
from lightning_cv.cli import main
from lightning_cv.zoo import load_backbone_weights

from .conftest import REPO
from .fake_folders import write_image_folder

RECIPE = REPO / "recipes" / "finetune_folder.yaml"
QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
LENET = "lenet5.cifar10"


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    options = {
        "max_epochs": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "default_root_dir": tmp_path,
        **kwargs,
    }
    return L.Trainer(**options)


def _loader(classes: int = 3, samples: int = 48) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(samples, 3, 32, 32, generator=generator)
    labels = torch.randint(0, classes, (samples,), generator=generator)
    return DataLoader(TensorDataset(images, labels), batch_size=16)


def _body_state(model: ImageClassifier) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.backbone.state_dict().items() if "head" not in k}


def _unreachable_zoo(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the zoo was asked for weights")

    monkeypatch.setattr(lightning_cv.models._registry, "load_backbone_weights", refuse)


def test_weights_load_and_a_new_class_count_gets_a_new_head():
    state, trained = load_backbone_weights("alexnet.cifar10")
    model = ImageClassifier(backbone="alexnet", weights="alexnet.cifar10", num_classes=3)
    own = model.backbone.state_dict()
    assert {k for k in state if not k.startswith("classifier.6.")} == {
        k for k in own if not k.startswith("classifier.6.")
    }
    for key, value in state.items():
        if not key.startswith("classifier.6."):
            torch.testing.assert_close(own[key], value.float(), rtol=0, atol=0)
    assert own["classifier.6.weight"].shape == (3, 1024)
    hp = model.hparams
    assert (hp.backbone, hp.in_channels, hp.image_size, hp.num_classes) == ("alexnet", 3, 32, 3)
    assert hp.backbone_kwargs == trained["backbone_kwargs"] and model.class_names is None


def test_the_entrys_class_count_keeps_its_head_names_and_predictions():
    from lightning_cv.zoo import checkpoint_file

    zoo = ImageClassifier.load_from_checkpoint(checkpoint_file(LENET), weights_only=True).eval()
    model = ImageClassifier(weights=LENET).eval()
    images = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(model(images), zoo(images), rtol=0, atol=0)
    assert model.class_names == zoo.class_names and len(model.class_names) == 10


def test_an_option_that_changes_no_weight_is_taken_as_given():
    model = ImageClassifier(weights="alexnet.cifar10", backbone_kwargs={"dropout": 0.2})
    assert model.hparams.backbone_kwargs == {
        "variant": "small",
        "dropout": 0.2,
        "hidden_size": 1024,
    }
    assert model.backbone.classifier[0].p == 0.2


TRAINED = (
    "they were trained with in_channels=3, image_size=32, backbone_kwargs={'variant': 'small', "
    "'dropout': 0.5, 'hidden_size': 1024}: leave out the options that differ"
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_channels": 1}, "'features.0.weight' is (64, 3, 3, 3) in the checkpoint, "
         f"(64, 1, 3, 3) in this model; {TRAINED}"),
        ({"image_size": 64}, "'classifier.1.weight' is (1024, 4096) in the checkpoint, "
         f"(1024, 16384) in this model; {TRAINED}"),
        ({"backbone_kwargs": {"hidden_size": 512}}, "'classifier.1.weight' is (1024, 4096) in "
         f"the checkpoint, (512, 4096) in this model; {TRAINED}"),
    ],
    ids=["in_channels", "image_size", "hidden_size"],
)  # fmt: skip
def test_options_that_change_a_weights_shape_are_refused(kwargs, message):
    full = f"zoo weights 'alexnet.cifar10' do not fit this alexnet: {message}"
    with pytest.raises(ConfigError, match=re.escape(full)):
        ImageClassifier(weights="alexnet.cifar10", **kwargs)


def test_weights_of_another_architecture_or_for_a_module_are_refused():
    message = "zoo weights 'alexnet.cifar10' are for 'alexnet', not 'lenet5'"
    with pytest.raises(ConfigError, match=re.escape(message)):
        ImageClassifier(backbone="lenet5", weights="alexnet.cifar10")
    message = "weights='lenet5.cifar10' need a registry backbone name, not a Linear module"
    with pytest.raises(ConfigError, match=re.escape(message)):
        ImageClassifier(backbone=nn.Linear(2, 2), weights=LENET)


class _Modes(Callback):
    """The backbone's and the head's train flags at every training step."""

    def __init__(self):
        self.modes = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        head = pl_module.backbone.head
        body = [m.training for m in pl_module.backbone.modules() if m is not head]
        self.modes.add((any(body), head.training))


def test_freeze_backbone_trains_the_head_alone_in_eval_mode(tmp_path, recwarn):
    model = ImageClassifier(weights=LENET, num_classes=3, freeze_backbone=True)
    trainable = [name for name, param in model.named_parameters() if param.requires_grad]
    assert trainable == ["backbone.head.weight", "backbone.head.bias"]
    before, head = _body_state(model), model.backbone.head.weight.clone()
    modes = _Modes()
    trainer = _trainer(tmp_path, callbacks=[modes])
    trainer.fit(model, _loader(), _loader())
    optimized = [p for group in trainer.optimizers[0].param_groups for p in group["params"]]
    assert optimized == [model.backbone.head.weight, model.backbone.head.bias]
    assert modes.modes == {(False, True)}  # the body in eval mode at every step, the head not
    for key, value in _body_state(model).items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert not torch.equal(model.backbone.head.weight, head)
    assert not [w for w in recwarn if "eval mode" in str(w.message)]


def test_freeze_backbone_needs_a_head_to_keep():
    message = "freezing needs a backbone with get_classifier() (every registry model has one), "
    with pytest.raises(ConfigError, match=re.escape(message + "not a Sequential")):
        ImageClassifier(backbone=nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), freeze_backbone=True)


def test_head_first_finetuning_unfreezes_the_backbone_at_its_epoch(tmp_path):
    class Record(Callback):
        def __init__(self):
            self.bodies, self.groups = [], []

        def on_train_epoch_end(self, trainer, pl_module):
            self.bodies.append(_body_state(pl_module))
            self.groups.append([group["lr"] for group in trainer.optimizers[0].param_groups])

    model = ImageClassifier(weights=LENET, num_classes=3, optimizer="sgd", lr=0.1)
    before, record = _body_state(model), Record()
    finetuning = HeadFirstFinetuning(unfreeze_backbone_at_epoch=1, lambda_func=lambda epoch: 1.0)
    trainer = _trainer(tmp_path, max_epochs=2, callbacks=[finetuning, record])
    trainer.fit(model, _loader())
    after_head_only, after_all = record.bodies
    assert all(torch.equal(after_head_only[k], before[k]) for k in before)
    assert not any(torch.equal(after_all[k], before[k]) for k in before if k.endswith("weight"))
    assert record.groups == [[0.1], [0.1, pytest.approx(0.01)]]  # the backbone joins at lr/10


def test_lightnings_backbone_finetuning_alone_is_refused_with_the_adapter_named(tmp_path):
    model = ImageClassifier(weights=LENET, num_classes=3)
    message = (
        "every parameter is frozen, so the optimizer has nothing to train; with Lightning's "
        "BackboneFinetuning use lightning_cv.callbacks.HeadFirstFinetuning (it keeps the head "
        "trainable)"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        _trainer(tmp_path, callbacks=[BackboneFinetuning()]).fit(model, _loader())
    frozen = ImageClassifier(weights=LENET, num_classes=3, freeze_backbone=True)
    message = "HeadFirstFinetuning unfreezes the backbone itself: leave freeze_backbone false"
    with pytest.raises(ConfigError, match=re.escape(message)):
        _trainer(tmp_path, callbacks=[HeadFirstFinetuning()]).fit(frozen, _loader())


def test_a_fine_tuned_checkpoint_rebuilds_without_the_zoo(tmp_path, monkeypatch):
    model = ImageClassifier(weights=LENET, num_classes=3, freeze_backbone=True)
    trainer = _trainer(tmp_path, max_steps=2)
    trainer.fit(model, _loader())
    path = tmp_path / "tuned.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["hyper_parameters"]["weights"] is None
    assert checkpoint["lightning_cv_weights"] == LENET
    assert model.hparams.weights == LENET  # the model itself still names its start
    _unreachable_zoo(monkeypatch)
    loaded = ImageClassifier.load_from_checkpoint(path, weights_only=True).eval()
    images = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(loaded(images), model.eval()(images), rtol=0, atol=0)
    assert loaded.hparams.freeze_backbone and loaded.hparams.backbone == "lenet5"
    assert [n for n, p in loaded.named_parameters() if p.requires_grad] == [
        "backbone.head.weight",
        "backbone.head.bias",
    ]


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    write_image_folder(root, classes=("bird", "cat", "dog"), per_class=10, suffix=".png")
    return root


def test_the_recipe_runs_on_an_image_folder(folder, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = ["--data.root", str(folder), "--trainer.fast_dev_run", "true"]
    main(["fit", "--config", str(RECIPE), *args, *QUICK])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["photos"]


def test_cli_test_of_a_fine_tuned_run_needs_no_zoo(folder, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    fit = ["--data.root", str(folder), "--trainer.max_epochs", "1", "--test_after_fit", "false"]
    main(["fit", "--config", "finetune_folder", *fit, *QUICK])
    run = tmp_path / "runs" / "finetune_folder" / "version_0"
    tuned = ImageClassifier.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    assert tuned.hparams.num_classes == 3 and tuned.class_names == ["bird", "cat", "dog"]
    _unreachable_zoo(monkeypatch)
    capsys.readouterr()
    ckpt = str(run / "checkpoints" / "last.ckpt")
    main(["test", "--config", str(run / "config.yaml"), "--ckpt_path", ckpt, *QUICK])
    assert re.search(r"test top-1 accuracy: \d+\.\d\d%", capsys.readouterr().out)
