"""Losses by name: the lecture's SVM example, hand computations, torch oracles, errors, training."""

import math
import re

import pytest
import torch
import torch.nn.functional as F

from lightning_cv import ConfigError
from lightning_cv.losses import LOSSES, create_loss
from tests.test_optim import digits_val_accuracy

# CS231n's example: scores of (cat, car, frog) for a cat, a car and a frog image
SCORES = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
LABELS = torch.tensor([0, 1, 2])


@pytest.fixture
def logits() -> torch.Tensor:
    return torch.randn(6, 4, generator=torch.Generator().manual_seed(0))  # (B, K)


TARGETS = torch.tensor([0, 3, 1, 1, 2, 0])


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_trains_a_linear_model_on_digits(name):
    assert digits_val_accuracy(create_loss(name), "adam", lr=0.01) > 0.3  # chance is 0.1


def test_hinge_reproduces_the_lecture_svm_example():
    per_sample = create_loss("hinge", reduction="none")(SCORES, LABELS)
    assert per_sample.tolist() == pytest.approx([2.9, 0.0, 12.9])
    assert create_loss("hinge")(SCORES, LABELS).item() == pytest.approx(5.27, abs=5e-3)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # cat: 2.9**2; car: no violation; frog: 6.3**2 + 6.6**2
        ({"squared": True}, [2.9**2, 0.0, 6.3**2 + 6.6**2]),
        # a margin of 2: cat 5.1 - 3.2 + 2; car 2.0 - 4.9 + 2 < 0; frog 7.3 + 7.6
        ({"margin": 2.0}, [3.9, 0.0, 14.9]),
    ],
)
def test_hinge_options_match_hand_computations(kwargs, expected):
    per_sample = create_loss("hinge", reduction="none", **kwargs)(SCORES, LABELS)
    assert per_sample.tolist() == pytest.approx(expected)


def test_cross_entropy_is_minus_log_softmax_of_the_true_class(logits):
    probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)  # (B, K)
    expected = -probs[torch.arange(6), TARGETS].log()
    loss = create_loss("cross_entropy", reduction="none")
    torch.testing.assert_close(loss(logits, TARGETS), expected)
    torch.testing.assert_close(create_loss("cross_entropy")(logits, TARGETS), expected.mean())


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_nll_of_log_softmax_equals_cross_entropy(logits, reduction):
    torch.testing.assert_close(
        create_loss("nll", reduction=reduction)(logits, TARGETS),
        create_loss("cross_entropy", reduction=reduction)(logits, TARGETS),
    )


def test_class_weights_and_label_smoothing_act_as_in_torch(logits):
    weights = [1.0, 2.0, 0.5, 4.0]
    loss = create_loss("cross_entropy", class_weights=weights, label_smoothing=0.1)
    expected = F.cross_entropy(logits, TARGETS, weight=torch.tensor(weights), label_smoothing=0.1)
    torch.testing.assert_close(loss(logits, TARGETS), expected)
    assert loss(logits, TARGETS) != create_loss("cross_entropy", label_smoothing=0.1)(
        logits, TARGETS
    )
    assert "class_weights" not in loss.state_dict()  # checkpoints do not depend on the loss


def test_class_weights_must_match_the_number_of_logits(logits):
    loss = create_loss("cross_entropy", class_weights=[1.0, 2.0])
    with pytest.raises(
        ConfigError, match=re.escape("class_weights has 2 entries but the logits have 4 classes")
    ):
        loss(logits, TARGETS)


def test_bce_one_vs_all_on_class_indices():
    # sigmoid(0) = 1/2 against target 0, sigmoid(log 3) = 3/4 against target 1
    logits = torch.tensor([[0.0, math.log(3)]])
    expected = (math.log(2) + math.log(4 / 3)) / 2  # mean over the 2 logits
    assert create_loss("bce")(logits, torch.tensor([1])).item() == pytest.approx(expected)


def test_bce_single_logit_for_two_classes():
    logits = torch.tensor([[math.log(3)], [math.log(3)]])  # p(class 1) = 3/4
    per_sample = create_loss("bce", reduction="none")(logits, torch.tensor([1, 0]))
    assert per_sample.tolist() == pytest.approx([math.log(4 / 3), math.log(4)])


def test_bce_multi_label_float_targets():
    logits = torch.tensor([[0.0, math.log(3), -math.log(3)]])
    targets = torch.tensor([[1.0, 1.0, 0.0]])  # two classes present at once
    expected = (math.log(2) + 2 * math.log(4 / 3)) / 3
    assert create_loss("bce")(logits, targets).item() == pytest.approx(expected)
    torch.testing.assert_close(
        create_loss("bce")(logits, targets), F.binary_cross_entropy_with_logits(logits, targets)
    )


def test_mse_between_scores_and_one_hot_targets():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 0.0]])
    # (2 - 1)^2, (-1)^2, 0.5^2 -> 2.25 / 3; the second row is exactly its one-hot target
    per_sample = create_loss("mse", reduction="none")(logits, torch.tensor([0, 1]))
    assert per_sample.tolist() == pytest.approx([0.75, 0.0])
    assert create_loss("mse")(logits, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])).item() == (
        pytest.approx(0.375)
    )


@pytest.mark.parametrize(
    ("name", "targets", "message"),
    [
        (
            "bce",
            torch.zeros(6, 3),
            "bce: float targets must have the logits' shape (6, 4), got (6, 3)",
        ),
        (
            "mse",
            torch.zeros(6, 1, dtype=torch.long),
            "mse: class-index targets must have shape (6,), got (6, 1)",
        ),
    ],
)
def test_targets_of_the_wrong_shape_raise(logits, name, targets, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_loss(name)(logits, targets)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("focal", {}, f"unknown loss 'focal'; expected one of {list(LOSSES)}"),
        (
            "hinge",
            {"label_smoothing": 0.1},
            "loss 'hinge' has no option ['label_smoothing']; "
            "expected some of ['margin', 'reduction', 'squared']",
        ),
        ("hinge", {"margin": 0.0}, "margin must be > 0, got 0.0"),
        ("cross_entropy", {"label_smoothing": 1.0}, "label_smoothing must be in [0, 1), got 1.0"),
        (
            "cross_entropy",
            {"class_weights": [1.0, -2.0]},
            "class_weights must be a non-empty list of numbers >= 0, got [1.0, -2.0]",
        ),
        ("mse", {"reduction": "sum"}, "unknown reduction 'sum'; expected one of ['mean', 'none']"),
    ],
)
def test_bad_loss_arguments_raise(name, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_loss(name, **kwargs)
