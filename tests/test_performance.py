"""Precision, memory format and compile: the same predictions as the default, on every model."""

import copy
import json
import os
import subprocess
import sys

import lightning.pytorch as L
import pytest
import torch

from lightning_cv import ConfigError, DigitsDataModule, ImageClassifier
from lightning_cv.callbacks.performance import (
    ChannelsLast,
    CompileBackbone,
    backbone_of,
    to_channels_last,
)
from lightning_cv.cli import LightningCVCLI, main
from lightning_cv.models import list_models
from tests.conftest import REPO

QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
QUIET = dict(logger=False, enable_progress_bar=False, enable_model_summary=False)
BATCH = 120  # divides the 360 test digits: one input shape, so compile traces once
LR = {"alexnet": 3e-4}  # its wide fully connected layers take a smaller Adam step; others 2e-3


class Logits(ImageClassifier):
    """Predicts the backbone's logits (float32), to compare them between runs."""

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).float()


@pytest.fixture(scope="module")
def data() -> DigitsDataModule:
    return DigitsDataModule(image_size=32, batch_size=BATCH)


@pytest.fixture(scope="module", params=list_models())
def trained(request, data) -> Logits:
    """Each model after one epoch on the digits: confident enough that top-1 means something."""
    L.seed_everything(0)
    model = Logits(request.param, image_size=32, lr=LR.get(request.param, 2e-3))
    trainer = L.Trainer(max_epochs=1, limit_val_batches=0, enable_checkpointing=False, **QUIET)
    trainer.fit(model, datamodule=data)
    return model


def predict(model: Logits, data, callbacks=(), precision="32-true") -> torch.Tensor:
    """Logits (360, 10) of a copy of ``model`` on the digits' test split."""
    trainer = L.Trainer(callbacks=list(callbacks), precision=precision, **QUIET)
    return torch.cat(trainer.predict(copy.deepcopy(model), datamodule=data))


def test_bf16_mixed_agrees_with_float32(trained, data):
    """Loose: bfloat16 keeps 8 bits of mantissa, so logits move by up to a few hundredths."""
    reference = predict(trained, data)
    logits = predict(trained, data, precision="bf16-mixed")
    agreement = (logits.argmax(1) == reference.argmax(1)).float().mean().item()
    assert agreement >= 0.95
    assert (logits - reference).abs().max().item() < 0.1


def test_channels_last_gives_the_same_logits(trained, data):
    reference = predict(trained, data)
    torch.testing.assert_close(
        predict(trained, data, [ChannelsLast()]), reference, atol=1e-5, rtol=0
    )


def test_compile_gives_the_same_logits(trained, data):
    """Every model compiles on the CPU (inductor's C++ code needs a compiler, gcc here)."""
    reference = predict(trained, data)
    logits = predict(trained, data, [CompileBackbone()])
    torch.testing.assert_close(logits, reference, atol=1e-4, rtol=0)


def test_channels_last_converts_weights_and_inputs_and_its_hook_goes_at_teardown(data):
    model = ImageClassifier("lenet5", image_size=32)
    second = model.backbone.features[3]  # (B, 6, 14, 14) -> (B, 16, 10, 10)
    seen = []
    second.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    callback = ChannelsLast()
    trainer = L.Trainer(callbacks=[callback], limit_predict_batches=1, **QUIET)
    trainer.predict(model, datamodule=data)
    for tensor in (second.weight, seen[0]):  # 6 channels: NHWC strides differ from NCHW's
        assert tensor.is_contiguous(memory_format=torch.channels_last)
        assert not tensor.is_contiguous()
    assert not model.backbone._forward_pre_hooks and callback._hooks == {}


def test_to_channels_last_leaves_values_and_other_arguments_alone():
    image, flat = torch.arange(24.0).reshape(1, 2, 3, 4), torch.ones(2, 3)
    converted, same = to_channels_last(None, (image, flat))
    assert torch.equal(converted, image) and converted.stride() == (24, 1, 8, 2)
    assert same is flat


def test_a_compiled_model_checkpoints_the_plain_keys(tmp_path, data):
    model = ImageClassifier("linear", image_size=32)
    keys = set(model.state_dict())
    trainer = L.Trainer(
        max_steps=2, limit_val_batches=0, default_root_dir=tmp_path,
        callbacks=[CompileBackbone(), ChannelsLast()], **QUIET,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    assert set(torch.load(path, weights_only=True)["state_dict"]) == keys
    plain = ImageClassifier.load_from_checkpoint(path)
    images = torch.randn(4, 1, 32, 32)
    torch.testing.assert_close(plain(images), model(images))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CompileBackbone(mode="fast"), "unknown compile mode 'fast'; expected one of"),
        (lambda: CompileBackbone(fullgraph="yes"), "fullgraph must be true or false, got 'yes'"),
        (lambda: CompileBackbone(dynamic=1), "dynamic must be true or false, got 1"),
        (lambda: ChannelsLast(attribute="back bone"), "attribute must be a Python name such as"),
    ],
)
def test_bad_arguments_are_refused_at_construction(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_module_without_the_attribute_is_named():
    with pytest.raises(ConfigError) as error:
        backbone_of(ImageClassifier("linear"), "encoder")
    assert str(error.value) == (
        "ImageClassifier has no module 'encoder' to speed up; expected an nn.Module attribute "
        "such as ImageClassifier's 'backbone'"
    )


OPTIONS = """\
trainer:
  precision: bf16-mixed
  callbacks:
    - class_path: lightning_cv.callbacks.performance.ChannelsLast
    - class_path: lightning_cv.callbacks.performance.CompileBackbone
      init_args: {mode: max-autotune-no-cudagraphs}
"""


def test_the_options_run_from_a_recipe(in_tmp):
    (in_tmp / "fast.yaml").write_text(OPTIONS)
    args = ["--config", str(REPO / "recipes" / "digits_linear.yaml"), "--config", "fast.yaml"]
    cli = LightningCVCLI(args=[*args, "--trainer.fast_dev_run", "true", *QUICK], run=False)
    assert cli.trainer.precision == "bf16-mixed"
    [compile_backbone] = [c for c in cli.trainer.callbacks if isinstance(c, CompileBackbone)]
    assert compile_backbone.mode == "max-autotune-no-cudagraphs"
    assert any(isinstance(c, ChannelsLast) for c in cli.trainer.callbacks)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.model.backbone._compiled_call_impl is not None


def test_a_bad_option_in_a_recipe_ends_with_one_line(in_tmp, capsys):
    compile_path = "lightning_cv.callbacks.performance.CompileBackbone"
    args = [f"--trainer.callbacks+={compile_path}", "--trainer.callbacks.mode", "fast"]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--trainer.fast_dev_run", "true", *QUICK])
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("lightning-cv: error: unknown compile mode 'fast'; expected one of")


def test_the_benchmark_runs_in_tiny_mode_and_ends_with_a_json_result():
    script = REPO / "benchmarks" / "precision.py"
    command = [sys.executable, str(script), "--models", "linear", "--batch-size", "8"]
    command += ["--steps", "1", "--warmup", "1", "--repeats", "1", "--threads", "1"]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "precision" and result["models"] == ["linear"]
    rows = [(row["phase"], row["option"]) for row in result["rows"]]
    options = ["bf16", "channels_last", "compile"]
    assert rows == [("train", o) for o in [*options, "ema"]] + [("predict", o) for o in options]
    for phase in ("train", "predict"):
        bases = {row["base_images_per_s"] for row in result["rows"] if row["phase"] == phase}
        assert len(bases) == 1  # one base side per phase, every option against it
    assert all(row["ratio"] > 0 and row["option_images_per_s"] > 0 for row in result["rows"])
