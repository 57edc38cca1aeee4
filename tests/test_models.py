"""Model registry and architectures: shapes, the shared interface, errors, and oracles."""

import copy
import re
import subprocess
import sys

import pytest
import torch
import torchvision

from lightning_cv.errors import ConfigError
from lightning_cv.hub.files import load_backbone_weights
from lightning_cv.models import (
    DEFAULTS,
    OPTIONS,
    LinearClassifier,
    architecture_options,
    create_model,
    list_models,
)

BATCH = 2


def _build(name: str, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, **kw):
    return create_model(
        name, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kw
    )


def test_list_models_has_the_course_architectures():
    assert {"linear", "mlp", "lenet5", "alexnet"} <= set(list_models())
    assert list_models() == sorted(list_models())


@pytest.mark.parametrize("image_size", [28, 32])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", list_models())
def test_interface(name, in_channels, image_size):
    model = _build(name, in_channels, image_size, num_classes=7).eval()
    x = torch.randn(BATCH, in_channels, image_size, image_size)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
        assert logits.shape == (BATCH, 7)
        assert model.num_classes == 7
        assert features.ndim == 2 and features.shape[0] == BATCH
        torch.testing.assert_close(model.forward_head(features), logits)


@pytest.mark.parametrize("name", list_models())
def test_reset_classifier_keeps_dtype(name):
    model = _build(name).to(torch.float64).eval()
    model.reset_classifier(3)
    assert model.num_classes == 3
    with torch.no_grad():
        logits = model(torch.randn(BATCH, 1, 28, 28, dtype=torch.float64))
    assert logits.shape == (BATCH, 3) and logits.dtype == torch.float64
    with pytest.raises(ConfigError, match=re.escape("num_classes must be >= 1, got 0")):
        model.reset_classifier(0)


def test_non_square_images():
    for name in list_models():
        model = _build(name, image_size=(28, 40)).eval()
        assert model(torch.randn(BATCH, 1, 28, 40)).shape == (BATCH, 10)


def test_alexnet_matches_torchvision():
    torch.manual_seed(0)
    reference = torchvision.models.alexnet(weights=None, num_classes=10).eval()
    model = _build("alexnet", in_channels=3, image_size=224).eval()
    assert model.variant == "imagenet"
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    assert list(model.state_dict()) == list(reference.state_dict())
    model.load_state_dict(reference.state_dict())
    x = torch.randn(BATCH, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
        assert model.forward_features(x).shape == (BATCH, 4096)


def test_lenet5_parameter_count_matches_the_paper_layout():
    model = _build("lenet5", image_size=32)
    # conv1 6*(25+1), conv2 16*(6*25+1), FC 400*120+120, FC 120*84+84, output 84*10+10; the
    # paper's sparse C3 table has fewer weights, our C3 is fully connected
    expected = 156 + 2416 + 48120 + 10164 + 850
    assert sum(p.numel() for p in model.parameters()) == expected == 61706


@pytest.mark.parametrize("image_size", [28, 32])
def test_lenet5_treats_28_as_the_papers_32(image_size):
    model = _build("lenet5", image_size=image_size)
    assert model.features[0].padding == ((2, 2) if image_size == 28 else (0, 0))
    assert model.fc[0].in_features == 16 * 5 * 5


def test_mlp_layout():
    model = _build("mlp", hidden_sizes=(300,))
    assert [p.shape for p in model.parameters()] == [(300, 784), (300,), (10, 300), (10,)]
    deep = _build("mlp", hidden_sizes=[64, 32], activation="tanh", dropout=0.2)
    assert deep.forward_features(torch.randn(BATCH, 1, 28, 28)).shape == (BATCH, 32)


def test_linear_weight_reshapes_to_class_templates():
    model = _build("linear", in_channels=3, image_size=(32, 28))
    assert isinstance(model, LinearClassifier)
    templates = model.head.weight.reshape(10, model.in_channels, *model.image_size)
    assert templates.shape == (10, 3, 32, 28)


@pytest.mark.parametrize(
    ("name", "options", "min_side"),
    [
        ("lenet5", {}, 12),
        ("alexnet", {"variant": "small"}, 8),
        ("alexnet", {"variant": "imagenet"}, 63),
    ],
)
def test_minimum_image_size(name, options, min_side):
    model = _build(name, image_size=min_side, **options).eval()
    assert model(torch.randn(1, 1, min_side, min_side)).shape == (1, 10)
    prefix = name if not options else f"{name} variant {options['variant']!r}"
    too_small = min_side - 1
    message = f"{prefix} needs image_size >= {min_side}x{min_side}, got {too_small}x{min_side + 5}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        _build(name, image_size=(too_small, min_side + 5), **options)


def test_alexnet_picks_variant_from_image_size():
    assert _build("alexnet", image_size=32).variant == "small"
    assert _build("alexnet", image_size=32, hidden_size=64).forward_features(
        torch.randn(BATCH, 1, 32, 32)
    ).shape == (BATCH, 64)


def test_small_alexnet_starts_with_signal_through_its_relus():
    """He initialisation: features of unit-variance input keep a unit-order scale (PyTorch's
    default initialisation shrinks them about 100-fold, and SGD then sat at chance)."""
    torch.manual_seed(0)
    model = _build("alexnet", in_channels=3, image_size=32).eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(64, 3, 32, 32))
        logits = model.forward_head(features)
    assert 0.5 < features.std().item() < 10
    assert 0.1 < logits.std().item() < 5


@pytest.mark.parametrize(
    ("name", "hint"), [("nope", ""), ("lenet", " did you mean 'lenet5'?"), ("resnet", "")]
)
def test_unknown_model(name, hint):
    message = f"unknown model {name!r};{hint} expected one of {list_models()}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        _build(name)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"depth": 3}, "model 'lenet5' has no option ['depth']; expected some of"),
        ({"pooing": "avg"}, "has no option ['pooing']; did you mean 'pooling'? expected some of"),
    ],
)
def test_unknown_option(options, message):
    with pytest.raises(ConfigError, match=re.escape(message + " ['activation', 'pooling']")):
        _build("lenet5", **options)


def test_create_model_loads_zoo_weights_with_the_entrys_options_and_a_new_head():
    state, trained = load_backbone_weights("lenet5.cifar10")
    model = create_model(None, weights="lenet5.cifar10", num_classes=3)
    assert model.pretrained_cfg == {"weights": "lenet5.cifar10",
                                    **{key: trained[key] for key in OPTIONS}}  # fmt: skip
    assert (model.head.out_features, model.head.in_features) == (3, 84)
    own = model.state_dict()
    for key, value in state.items():
        if not key.startswith("head."):
            torch.testing.assert_close(own[key], value.float(), rtol=0, atol=0)
    same = create_model("lenet5", weights="lenet5.cifar10").eval()
    torch.testing.assert_close(same.head.weight, state["head.weight"].float(), rtol=0, atol=0)
    message = "zoo weights 'lenet5.cifar10' are for 'lenet5', not 'mlp'"
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_model("mlp", weights="lenet5.cifar10")


def test_architecture_options_take_the_given_then_the_weights_then_the_defaults():
    given = dict.fromkeys(OPTIONS)
    assert architecture_options(given) == {**given, **DEFAULTS}
    trained = {
        "backbone": "mlp", "backbone_kwargs": {"hidden_sizes": [8], "dropout": 0.5},
        "num_classes": 2, "in_channels": 3, "image_size": 8, "class_names": ["a", "b"],
    }  # fmt: skip
    assert architecture_options(given, trained) == trained
    asked = {**given, "backbone_kwargs": {"dropout": 0.1}, "in_channels": 1, "num_classes": 3}
    assert architecture_options(asked, trained) == {
        **trained, "backbone_kwargs": {"hidden_sizes": [8], "dropout": 0.1}, "in_channels": 1,
        "num_classes": 3, "class_names": None,  # the entry's names are for its 2 classes
    }  # fmt: skip
    named = {**asked, "class_names": ["x", "y", "z"]}
    assert architecture_options(named, trained)["class_names"] == ["x", "y", "z"]


def test_the_models_package_does_not_reach_the_zoo_or_the_task():
    code = "import sys, lightning_cv.models; print(sorted(m for m in sys.modules if m.startswith("
    code += "('lightning_cv.zoo', 'lightning_cv.task', 'lightning_cv.data'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        (
            "mlp",
            {"activation": "gelu"},
            "unknown activation 'gelu'; did you mean 'relu'? expected one of "
            "['relu', 'sigmoid', 'tanh']",
        ),
        (
            "lenet5",
            {"activation": "sigmoid"},
            "unknown activation 'sigmoid'; expected one of ['relu', 'tanh']",
        ),
        ("lenet5", {"pooling": "lp"}, "unknown pooling 'lp'; expected one of ['avg', 'max']"),
        ("alexnet", {"variant": "tiny"}, "unknown variant 'tiny'; expected one of"),
        ("mlp", {"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),
        ("alexnet", {"dropout": -0.1}, "dropout must be in [0, 1), got -0.1"),
        ("mlp", {"hidden_sizes": ()}, "hidden_sizes must be a non-empty sequence"),
        ("mlp", {"hidden_sizes": (300, 0)}, "hidden_sizes must be a non-empty sequence"),
        ("alexnet", {"hidden_size": 0}, "hidden_size must be >= 1, got 0"),
        ("linear", {"num_classes": 0}, "num_classes must be >= 1, got 0"),
        ("linear", {"in_channels": 0}, "in_channels must be >= 1, got 0"),
        ("linear", {"image_size": (28,)}, "image_size must be a positive int or (height, width)"),
    ],
)
def test_bad_options(name, options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        _build(name, **options)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_lenet5_pools_before_relu_with_the_same_values_and_gradients(memory_format):
    """The ReLU after max pooling (a quarter of the elements) trains exactly as the textbook
    order, conv -> ReLU -> pool."""
    torch.manual_seed(0)
    model = _build("lenet5").to(memory_format=memory_format)
    assert [type(layer).__name__ for layer in model.features] == [
        "Conv2d", "MaxPool2d", "ReLU", "Conv2d", "MaxPool2d", "ReLU"
    ]  # fmt: skip
    textbook = copy.deepcopy(model)
    conv1, pool1, relu1, conv2, pool2, relu2 = textbook.features
    textbook.features = torch.nn.Sequential(conv1, relu1, pool1, conv2, relu2, pool2)
    # MNIST-like: a flat background (exact ties in every pooling window) around random strokes
    images = torch.randn(16, 1, 28, 28).clamp(min=-0.42).contiguous(memory_format=memory_format)
    targets = torch.arange(16) % 10
    for net in (model, textbook):
        torch.nn.functional.cross_entropy(net(images), targets).backward()
    assert torch.equal(model(images), textbook(images))
    for (name, ours), theirs in zip(model.named_parameters(), textbook.parameters(), strict=True):
        assert torch.equal(ours.grad, theirs.grad), name


def test_lenet5_keeps_the_activation_first_where_the_order_matters():
    """Average pooling does not commute with the activation; tanh keeps the paper's order."""
    for options in ({"pooling": "avg"}, {"activation": "tanh"}):
        layers = [type(layer).__name__ for layer in _build("lenet5", **options).features]
        assert layers[1:3] in (["ReLU", "AvgPool2d"], ["Tanh", "MaxPool2d"]), options
