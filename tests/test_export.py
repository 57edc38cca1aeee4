"""ONNX and TorchScript export of every registered architecture, checked against eager PyTorch."""

import json
import re
import warnings

import onnx
import onnxruntime
import pytest
import torch

from lightning_cv import ConfigError
from lightning_cv.models import create_model, list_models
from lightning_cv.zoo import export_model, export_onnx, export_torchscript
from lightning_cv.zoo.export import METADATA_KEY

SHAPE = (3, 32, 32)  # every architecture takes 32x32 RGB (AlexNet picks its small variant)
# narrower than the defaults, same layers: exporting AlexNet's 7.7M-parameter head is slow
OPTIONS = {"alexnet": {"hidden_size": 64}}


def _jit_load(path, **kwargs) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
        return torch.jit.load(str(path), **kwargs)


@pytest.mark.parametrize("name", list_models())
def test_exports_match_the_eager_model_for_any_batch_size(name, tmp_path):
    torch.manual_seed(0)
    options = OPTIONS.get(name, {})
    net = create_model(name, num_classes=10, in_channels=3, image_size=32, **options).eval()
    onnx_path = export_onnx(net, tmp_path / f"{name}.onnx", input_shape=SHAPE)
    script_path = export_torchscript(net, tmp_path / f"{name}.pt", input_shape=SHAPE)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    scripted = _jit_load(script_path)
    for batch in (1, 3):
        images = torch.randn(batch, *SHAPE)
        with torch.no_grad():
            expected = net(images)
            traced = scripted(images)
        (logits,) = session.run(["logits"], {"images": images.numpy()})
        torch.testing.assert_close(torch.from_numpy(logits), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(traced, expected, atol=1e-5, rtol=0)


def test_metadata_travels_in_both_formats_and_the_batch_axis_is_named(tmp_path):
    net = create_model("linear", num_classes=3, in_channels=1, image_size=8).train()
    metadata = {"name": "linear.toy", "class_names": ["a", "b", "c"], "mean": [0.5]}
    onnx_path = export_model(
        net, tmp_path / "m.onnx", format="onnx", input_shape=(1, 8, 8), metadata=metadata
    )
    script_path = export_model(
        net, tmp_path / "m.pt", format="torchscript", input_shape=(1, 8, 8), metadata=metadata
    )
    assert net.training  # exported in eval mode, then given back as it was
    proto = onnx.load(str(onnx_path))
    assert {prop.key: json.loads(prop.value) for prop in proto.metadata_props} == {
        METADATA_KEY: metadata
    }
    (images,) = proto.graph.input
    assert images.name == "images"
    assert [dim.dim_param or dim.dim_value for dim in images.type.tensor_type.shape.dim] == [
        "batch",
        1,
        8,
        8,
    ]
    extra = {f"{METADATA_KEY}.json": ""}
    _jit_load(script_path, _extra_files=extra)
    assert json.loads(extra[f"{METADATA_KEY}.json"]) == metadata


def test_unknown_format():
    net = create_model("linear", num_classes=3, in_channels=1, image_size=8)
    message = "unknown export format 'tflite'; expected one of ['onnx', 'torchscript']"
    with pytest.raises(ConfigError, match=re.escape(message)):
        export_model(net, "m.tflite", format="tflite", input_shape=(1, 8, 8))
