"""Classification losses looked up by name: softmax cross-entropy, the multiclass SVM, and more.

Every loss is an ``nn.Module`` called as ``loss(logits, targets)``, where ``logits`` are the raw
class scores ``(B, K)`` and ``targets`` the class indices ``(B,)``, and returns the mean over the
batch (a scalar), so any of them can stand where ``nn.CrossEntropyLoss`` stood. With
``reduction="none"`` they return the ``(B,)`` per-sample losses instead. Targets may also be
class probabilities ``(B, K)`` (soft targets, as MixUp and CutMix make them), which every loss
but the hinge takes.

The softmax and SVM losses follow Stanford's CS231n: the SVM (hinge) loss is satisfied once the
true class outscores every other class by a margin, while cross-entropy keeps pushing the
probability of the true class towards 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_cv._lookup import check_options, lookup
from lightning_cv.errors import ConfigError, check_choice, check_range

__all__ = [
    "LOSSES",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "MulticlassHinge",
    "NegativeLogLikelihood",
    "OneHotMSE",
    "create_loss",
    "weight_penalties",
]

_REDUCTIONS = ("mean", "none")


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """(B,) per-sample losses -> their mean (a scalar), or themselves for ``"none"``."""
    return per_sample.mean() if reduction == "mean" else per_sample


def _dense_targets(logits: torch.Tensor, targets: torch.Tensor, name: str) -> torch.Tensor:
    """Targets as float ``(B, K)`` like the logits: one-hot rows for class indices.

    One logit (K == 1) stands for two classes: index 1 is the positive class, index 0 the
    negative. Float targets of the logits' shape (multi-label or soft targets) pass unchanged.
    """
    if targets.is_floating_point():
        if targets.shape != logits.shape:
            raise ConfigError(
                f"{name}: float targets must have the logits' shape {tuple(logits.shape)}, "
                f"got {tuple(targets.shape)}"
            )
        return targets
    if targets.shape != logits.shape[:1]:
        raise ConfigError(
            f"{name}: class-index targets must have shape ({logits.shape[0]},), "
            f"got {tuple(targets.shape)}"
        )
    num_classes = logits.shape[1]
    one_hot = F.one_hot(targets, num_classes=max(num_classes, 2)).to(logits.dtype)  # (B, K)
    return one_hot[:, 1:] if num_classes == 1 else one_hot


class CrossEntropy(nn.Module):
    """Softmax cross-entropy ``-log softmax(s)[y]``, with label smoothing and class weights.

    Args:
        label_smoothing: share of the target mass spread evenly over all classes, in [0, 1).
        class_weights: one weight per class (e.g. inverse class frequencies for imbalanced
            data); the mean is then weighted, as in ``F.cross_entropy(weight=...)``. Its length
            is checked against the logits at every call.
        reduction: ``"mean"`` over the batch or ``"none"`` for the ``(B,)`` losses.

    Raises:
        ConfigError: ``label_smoothing`` outside [0, 1), negative or empty ``class_weights``,
            or (when called) ``class_weights`` whose length differs from the number of logits.

    Example:
        >>> loss = CrossEntropy(class_weights=[1.0, 3.0])
        >>> round(loss(torch.zeros(4, 2), torch.tensor([0, 1, 1, 0])).item(), 4)  # log 2
        0.6931
    """

    class_weights: torch.Tensor | None

    def __init__(
        self,
        *,
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        check_range("label_smoothing", label_smoothing, "[0, 1)")
        if class_weights is not None and (
            len(class_weights) == 0 or any(not weight >= 0 for weight in class_weights)
        ):
            raise ConfigError(
                f"class_weights must be a non-empty list of numbers >= 0, got {class_weights}"
            )
        check_choice("reduction", reduction, _REDUCTIONS)
        self.label_smoothing = label_smoothing
        self.reduction = reduction
        weights = None if class_weights is None else torch.tensor(class_weights).float()
        # not persistent: checkpoints keep the same keys whatever loss trained them
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.is_floating_point():  # class probabilities: F.cross_entropy takes them too
            targets = _dense_targets(logits, targets, "cross_entropy")
        if self.class_weights is not None and len(self.class_weights) != logits.shape[1]:
            raise ConfigError(
                f"class_weights has {len(self.class_weights)} entries but the logits have "
                f"{logits.shape[1]} classes"
            )
        weight = None if self.class_weights is None else self.class_weights.to(logits.dtype)
        return F.cross_entropy(
            logits,
            targets,
            weight=weight,
            label_smoothing=self.label_smoothing,
            reduction=self.reduction,
        )


class NegativeLogLikelihood(nn.Module):
    """Negative log-likelihood of the log-softmax: cross-entropy computed in two steps.

    Args:
        reduction: ``"mean"`` over the batch or ``"none"`` for the ``(B,)`` losses.

    Example:
        >>> round(NegativeLogLikelihood()(torch.zeros(2, 4), torch.tensor([0, 3])).item(), 4)
        1.3863
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        check_choice("reduction", reduction, _REDUCTIONS)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(logits, dim=1)  # (B, K)
        if targets.is_floating_point():  # class probabilities: -sum_k p_k log q_k
            dense = _dense_targets(logits, targets, "nll")
            return _reduce(-(dense * log_probs).sum(dim=1), self.reduction)
        return F.nll_loss(log_probs, targets, reduction=self.reduction)


class MulticlassHinge(nn.Module):
    """The multiclass SVM loss (Weston and Watkins 1999, as in CS231n).

    Per sample, ``sum over j != y of max(0, s_j - s_y + margin)`` (squared terms when
    ``squared``): zero once the true class outscores every other class by ``margin``. Unlike
    ``nn.MultiMarginLoss``, the sum is not divided by the number of classes.

    Args:
        margin: how far the true score must lead the others, > 0.
        squared: square each term (the squared hinge, or L2-SVM), penalising large violations
            more.
        reduction: ``"mean"`` over the batch or ``"none"`` for the ``(B,)`` losses.

    Raises:
        ConfigError: ``margin`` <= 0.

    Example:
        >>> scores = torch.tensor([[3.2, 5.1, -1.7]])  # cat, car, frog for a cat image
        >>> round(MulticlassHinge()(scores, torch.tensor([0])).item(), 4)  # 5.1 - 3.2 + 1
        2.9
    """

    def __init__(
        self, *, margin: float = 1.0, squared: bool = False, reduction: str = "mean"
    ) -> None:
        super().__init__()
        check_range("margin", margin, "> 0")
        check_choice("reduction", reduction, _REDUCTIONS)
        self.margin = margin
        self.squared = squared
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.is_floating_point():
            raise ConfigError(
                "hinge: the targets are class probabilities (from MixUp or CutMix), which have "
                "no true class to lead by a margin; expected class indices, or a loss that takes "
                "probabilities: cross_entropy, nll, bce or mse"
            )
        true_scores = logits.gather(1, targets[:, None])  # (B, 1)
        margins = (logits - true_scores + self.margin).clamp(min=0)  # (B, K)
        margins = margins.scatter(1, targets[:, None], 0.0)  # the true class is no violation
        if self.squared:
            margins = margins.square()
        return _reduce(margins.sum(dim=1), self.reduction)


class BinaryCrossEntropy(nn.Module):
    """Sigmoid binary cross-entropy on each logit: one independent yes/no question per class.

    Targets may be:

    - class indices ``(B,)`` with K >= 2 logits: one-vs-all, the one-hot row is the target of
      the K parallel sigmoids;
    - class indices 0/1 ``(B,)`` with a single logit (K == 1): the classic binary classifier,
      ``sigmoid(s)`` being the probability of class 1;
    - floats ``(B, K)`` in [0, 1] (multi-label: several classes may be present at once).

    A sample's loss is the mean over its K logits, so the batch mean equals
    ``F.binary_cross_entropy_with_logits`` on the dense targets.

    Args:
        reduction: ``"mean"`` over the batch or ``"none"`` for the ``(B,)`` losses.

    Raises:
        ConfigError: (when called) targets whose shape fits neither form.

    Example:
        >>> loss = BinaryCrossEntropy()
        >>> round(loss(torch.zeros(2, 1), torch.tensor([0, 1])).item(), 4)  # log 2
        0.6931
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        check_choice("reduction", reduction, _REDUCTIONS)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        dense = _dense_targets(logits, targets, "bce")  # (B, K)
        losses = F.binary_cross_entropy_with_logits(logits, dense, reduction="none")
        return _reduce(losses.mean(dim=1), self.reduction)


class OneHotMSE(nn.Module):
    """Mean squared error between the raw scores and the one-hot targets.

    The historical regression loss of linear classifiers (Widrow-Hoff, LeCun et al. 1998): the
    score of the true class is pulled to 1 and every other score to 0. A sample's loss is the
    mean over its K scores, so the batch mean equals ``F.mse_loss(logits, one_hot)``. Float
    ``(B, K)`` targets (soft labels) are used as they are.

    Args:
        reduction: ``"mean"`` over the batch or ``"none"`` for the ``(B,)`` losses.

    Raises:
        ConfigError: (when called) targets whose shape fits neither form.

    Example:
        >>> OneHotMSE()(torch.tensor([[1.0, 1.0]]), torch.tensor([0])).item()  # (0 + 1) / 2
        0.5
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        check_choice("reduction", reduction, _REDUCTIONS)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        dense = _dense_targets(logits, targets, "mse")  # (B, K)
        return _reduce((logits - dense).square().mean(dim=1), self.reduction)


_LOSSES: dict[str, type[nn.Module]] = {
    "bce": BinaryCrossEntropy,
    "cross_entropy": CrossEntropy,
    "hinge": MulticlassHinge,
    "mse": OneHotMSE,
    "nll": NegativeLogLikelihood,
}
LOSSES: tuple[str, ...] = tuple(sorted(_LOSSES))
"""Names accepted by :func:`create_loss`."""


def create_loss(name: str, **kwargs) -> nn.Module:
    """Build a classification loss by name.

    Args:
        name: one of :data:`LOSSES`: ``cross_entropy``, ``nll``, ``hinge``, ``bce``, ``mse``.
        **kwargs: the loss's options (e.g. ``margin`` for ``hinge``, ``class_weights`` for
            ``cross_entropy``); all take ``reduction``.

    Returns:
        An ``nn.Module`` mapping ``(logits (B, K), targets (B,))`` to the batch-mean loss.

    Raises:
        ConfigError: unknown name, unknown option, or an option's value out of range.

    Example:
        >>> loss = create_loss("hinge", margin=1.0)
        >>> round(loss(torch.tensor([[3.2, 5.1, -1.7]]), torch.tensor([0])).item(), 4)
        2.9
    """
    loss = lookup("loss", name, _LOSSES)
    check_options("loss", name, loss, kwargs)
    return loss(**kwargs)


def weight_penalties(
    module: nn.Module, l1_strength: float = 0.0, l2_strength: float = 0.0
) -> dict[str, torch.Tensor]:
    """L1 and L2 penalties on the module's weights (not biases: parameters of one dimension),
    each times its strength, as ``l1_penalty`` and ``l2_penalty``; a zero strength adds none.

    Example:
        >>> weight_penalties(nn.Linear(2, 1, bias=False), l1_strength=0.0)
        {}
    """
    if not (l1_strength or l2_strength):
        return {}
    weights = [p for p in module.parameters() if p.ndim > 1]
    penalties = {}
    if l1_strength:
        penalties["l1_penalty"] = l1_strength * sum(w.abs().sum() for w in weights)
    if l2_strength:
        penalties["l2_penalty"] = l2_strength * sum(w.square().sum() for w in weights)
    return penalties
