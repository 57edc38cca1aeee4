"""Optimizers and LR schedules by name: closed forms, parameter groups, errors, and training."""

import copy
import math
import re
from functools import cache
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_cv import ConfigError, DigitsDataModule
from lightning_cv.losses import create_loss
from lightning_cv.models import create_model
from lightning_cv.optim import (
    OPTIMIZERS,
    SCHEDULERS,
    WARMUP_START_FACTOR,
    check_resumed_length,
    configure_optimization,
    create_optimizer,
    create_scheduler,
    scale_lr,
    scheduler_config,
)

LR0 = 0.1


@cache
def digits_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One augmented pass of the 8x8 digits training set and the validation set, as tensors."""
    data = DigitsDataModule(image_size=8, batch_size=64)
    data.setup("fit")
    torch.manual_seed(0)
    train_x, train_y = map(torch.cat, zip(*data.train_dataloader(), strict=True))
    val_x, val_y = map(torch.cat, zip(*data.val_dataloader(), strict=True))
    train_x = data.transform_batch(train_x, train=True)  # the batch path: augmented, normalised
    val_x = data.transform_batch(val_x, train=False)
    return train_x, train_y, val_x, val_y  # (1293, 1, 8, 8), (1293,), (144, 1, 8, 8), (144,)


def digits_val_accuracy(loss: nn.Module, optimizer: str, lr: float, epochs: int = 3) -> float:
    """Train a linear classifier on the 8x8 digits with a plain PyTorch loop; val accuracy."""
    torch.manual_seed(0)
    train_x, train_y, val_x, val_y = digits_tensors()
    model = create_model("linear", num_classes=10, in_channels=1, image_size=8)
    opt = create_optimizer(optimizer, model, lr=lr)
    for _ in range(epochs):
        for batch in torch.randperm(len(train_x)).split(64):
            opt.zero_grad()
            loss(model(train_x[batch]), train_y[batch]).backward()
            opt.step()
    with torch.no_grad():
        return (model(val_x).argmax(dim=1) == val_y).float().mean().item()


def lrs(scheduler, optimizer, steps: int) -> list[float]:
    """The learning rate in use at steps 0..steps-1."""
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def sgd() -> torch.optim.Optimizer:
    return create_optimizer("sgd", nn.Linear(3, 2), lr=LR0, momentum=0.9)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_trains_a_linear_model_on_digits(name):
    lr = {"sgd": 0.1, "adagrad": 0.1}.get(name, 0.01)
    assert digits_val_accuracy(create_loss("cross_entropy"), name, lr) > 0.3  # chance is 0.1


@pytest.mark.parametrize(
    ("name", "kwargs", "closed_form"),
    [
        ("constant", {}, lambda t: LR0),
        ("step", {"step_size": 3, "gamma": 0.5}, lambda t: LR0 * 0.5 ** (t // 3)),
        ("multistep", {"milestones": [2, 5]}, lambda t: LR0 * 0.1 ** ((t >= 2) + (t >= 5))),
        ("exponential", {"gamma": 0.8}, lambda t: LR0 * 0.8**t),
        ("inverse_time", {"decay_rate": 0.5}, lambda t: LR0 / (1 + 0.5 * t)),
        (
            "cosine",
            {"total_steps": 8, "eta_min": 0.01},
            lambda t: 0.01 + (LR0 - 0.01) * (1 + math.cos(math.pi * t / 8)) / 2,
        ),
    ],
)
def test_schedules_follow_their_closed_forms(name, kwargs, closed_form):
    optimizer = sgd()
    seen = lrs(create_scheduler(name, optimizer, **kwargs), optimizer, 9)
    assert seen == pytest.approx([closed_form(t) for t in range(9)])


def test_warmup_rises_linearly_then_hands_over_to_the_schedule():
    optimizer = sgd()
    scheduler = create_scheduler("cosine", optimizer, total_steps=14, warmup_steps=4)
    seen = lrs(scheduler, optimizer, 15)
    start = WARMUP_START_FACTOR * LR0
    assert seen[:5] == pytest.approx([start + (LR0 - start) * t / 4 for t in range(5)])
    # cosine over the remaining 10 steps, starting at step 4
    cosine = [LR0 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)]
    assert seen[4:] == pytest.approx(cosine, abs=1e-12)


def test_warmup_then_step_decay():
    optimizer = sgd()
    seen = lrs(
        create_scheduler("step", optimizer, step_size=2, gamma=0.5, warmup_steps=2), optimizer, 7
    )
    start = WARMUP_START_FACTOR * LR0
    assert seen == pytest.approx([start, (start + LR0) / 2, LR0, LR0, LR0 / 2, LR0 / 2, LR0 / 4])


def test_onecycle_starts_low_peaks_at_pct_start_and_ends_near_zero():
    optimizer = sgd()
    scheduler = create_scheduler("onecycle", optimizer, total_steps=100, pct_start=0.25)
    seen = lrs(scheduler, optimizer, 100)
    assert seen[0] == pytest.approx(LR0 / 25)  # max_lr (the optimizer's lr) / div_factor
    assert max(seen) == pytest.approx(LR0) and seen.index(max(seen)) == 24  # step 0.25*100 - 1
    assert seen[-1] == pytest.approx(LR0 / (25 * 1e4))  # max_lr / (div * final_div_factor)


def test_plateau_cuts_the_rate_when_the_metric_stalls_and_monitors_val_loss():
    optimizer = sgd()
    scheduler = create_scheduler("plateau", optimizer, factor=0.5, patience=1)
    for val_loss in (1.0, 1.0, 1.0):
        scheduler.step(val_loss)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(LR0 / 2)
    assert scheduler_config(scheduler) == {
        "scheduler": scheduler,
        "interval": "epoch",
        "monitor": "val/loss",
    }


def test_scheduler_config_of_a_per_step_schedule_has_no_monitor():
    scheduler = create_scheduler("cosine", sgd(), total_steps=10)
    assert scheduler_config(scheduler, "step") == {"scheduler": scheduler, "interval": "step"}


def test_total_steps_is_ignored_by_schedules_that_do_not_need_it():
    optimizer = sgd()
    scheduler = create_scheduler("exponential", optimizer, total_steps=10, gamma=0.5)
    assert lrs(scheduler, optimizer, 3) == pytest.approx([LR0, LR0 / 2, LR0 / 4])


def test_every_schedule_builds_with_its_required_options():
    required = {
        "cosine": {"total_steps": 10},
        "exponential": {"gamma": 0.9},
        "inverse_time": {"decay_rate": 0.1},
        "multistep": {"milestones": [3]},
        "onecycle": {"total_steps": 10},
        "step": {"step_size": 3},
    }
    for name in SCHEDULERS:
        assert isinstance(
            create_scheduler(name, sgd(), **required.get(name, {})),
            torch.optim.lr_scheduler.LRScheduler,
        )


def test_decay_biases_false_puts_every_bias_and_norm_weight_in_a_zero_decay_group():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 1, 5, 5))
    optimizer = create_optimizer("adamw", model, lr=1e-3, weight_decay=0.05, decay_biases=False)
    decayed, exempt = optimizer.param_groups
    assert (decayed["weight_decay"], exempt["weight_decay"]) == (0.05, 0.0)
    exempt_ids = {id(param) for param in exempt["params"]}
    named = dict(model.named_parameters())
    assert {name for name, param in named.items() if id(param) in exempt_ids} == {
        "0.bias",
        "1.weight",
        "1.bias",
        "3.bias",
    }
    assert {id(param) for param in decayed["params"]} == {
        id(named["0.weight"]),
        id(named["3.weight"]),
    }


def test_decay_biases_true_keeps_one_group_and_passes_options_to_torch():
    model = nn.Linear(3, 2)
    optimizer = create_optimizer(
        "sgd", model.parameters(), lr=0.1, weight_decay=1e-4, momentum=0.9, nesterov=True
    )
    assert len(optimizer.param_groups) == 1
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["momentum"], group["nesterov"]) == (
        0.1,
        1e-4,
        0.9,
        True,
    )


@pytest.mark.parametrize(
    ("lr", "batch", "reference", "expected"),
    [(0.1, 1024, 256, 0.4), (0.1, 64, 256, 0.025), (0.05, 256, 128, 0.1), (0.1, 256, 256, 0.1)],
)
def test_scale_lr_is_linear_in_the_batch_size(lr, batch, reference, expected):
    assert scale_lr(lr, batch, reference) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("lion", {"lr": 0.1}, f"unknown optimizer 'lion'; expected one of {list(OPTIMIZERS)}"),
        (
            "adamm",
            {"lr": 0.1},
            f"unknown optimizer 'adamm'; did you mean 'adam'? expected one of {list(OPTIMIZERS)}",
        ),
        ("sgd", {"lr": float("inf")}, "lr must be a finite number, got inf"),
        ("sgd", {"lr": 0.0}, "lr must be > 0, got 0.0"),
        ("adam", {"lr": -1e-3}, "lr must be > 0, got -0.001"),
        ("sgd", {"lr": 0.1, "weight_decay": -1}, "weight_decay must be >= 0, got -1"),
        (
            "adagrad",
            {"lr": 0.1, "momentum": 0.9},
            "optimizer 'adagrad' has no option ['momentum']; expected some of "
            "['differentiable', 'eps', 'foreach', 'fused', 'initial_accumulator_value', "
            "'lr_decay', 'maximize']",
        ),
        ("sgd", {"lr": 0.1, "momentum": -1}, "optimizer 'sgd': Invalid momentum value: -1"),
        (
            "sgd",
            {"lr": 0.1, "nesterov": True},
            "optimizer 'sgd': Nesterov momentum requires a momentum and zero dampening",
        ),
        (
            "adam",
            {"lr": 0.1, "betas": (1.5, 0.9)},
            "optimizer 'adam': Invalid beta parameter at index 0: 1.5",
        ),
    ],
)
def test_bad_optimizer_arguments_raise(name, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_optimizer(name, nn.Linear(3, 2), **kwargs)


def test_decay_biases_false_rejects_parameter_groups():
    groups = [{"params": nn.Linear(3, 2).parameters()}]
    message = "decay_biases=False needs a module or a list of parameters, not parameter groups"
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_optimizer("sgd", groups, lr=0.1, decay_biases=False)


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("linear", {}, f"unknown scheduler 'linear'; expected one of {list(SCHEDULERS)}"),
        (
            "step",
            {"step_size": 2, "decay": 0.5},
            "scheduler 'step' has no option ['decay']; expected some of ['gamma', 'step_size']",
        ),
        (
            "step",
            {"step_size": 2, "gama": 0.5},
            "scheduler 'step' has no option ['gama']; did you mean 'gamma'? expected some of "
            "['gamma', 'step_size']",
        ),
        ("step", {}, "scheduler 'step' needs ['step_size']"),
        ("step", {"step_size": 0}, "step_size must be >= 1, got 0"),
        ("exponential", {"gamma": 1.5}, "gamma must be in (0, 1], got 1.5"),
        ("inverse_time", {"decay_rate": -0.1}, "decay_rate must be >= 0, got -0.1"),
        (
            "cosine",
            {},
            "scheduler 'cosine' needs total_steps (how many times it steps in the run)",
        ),
        (
            "cosine",
            {"total_steps": 5, "warmup_steps": 5},
            "total_steps must exceed warmup_steps, got total_steps=5 and warmup_steps=5",
        ),
        ("cosine", {"total_steps": 5, "warmup_steps": -1}, "warmup_steps must be >= 0, got -1"),
        (
            "onecycle",
            {"total_steps": 10, "warmup_steps": 2},
            "scheduler 'onecycle' takes no warmup_steps (onecycle warms up itself, plateau "
            "follows a metric), got warmup_steps=2",
        ),
        ("plateau", {"factor": 1.0}, "scheduler 'plateau': Factor should be < 1.0."),
        (
            "plateau",
            {"mode": "up"},
            "scheduler 'plateau': mode='up' is a str; expected one of ['min', 'max']",
        ),
    ],
)
def test_bad_scheduler_arguments_raise(name, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_scheduler(name, sgd(), **kwargs)


def test_onecycle_needs_an_optimizer_with_momentum_to_cycle():
    optimizer = create_optimizer("adagrad", nn.Linear(3, 2), lr=0.1)
    message = (
        "scheduler 'onecycle': optimizer must support momentum or beta1 with `cycle_momentum` "
        "option enabled"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_scheduler("onecycle", optimizer, total_steps=10)
    create_scheduler("onecycle", optimizer, total_steps=10, cycle_momentum=False)


@pytest.mark.parametrize(
    ("scheduler", "interval", "message"),
    [
        ("cosine", "batch", "unknown interval 'batch'; expected one of ['epoch', 'step']"),
        ("plateau", "step", "a 'plateau' scheduler steps once per epoch; use interval 'epoch'"),
    ],
)
def test_bad_scheduler_config_raises(scheduler, interval, message):
    built = create_scheduler(scheduler, sgd(), total_steps=10)
    with pytest.raises(ConfigError, match=re.escape(message)):
        scheduler_config(built, interval)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.1, 0), "global_batch_size must be >= 1, got 0"),
        ((0.1, 256, 0), "reference_batch_size must be >= 1, got 0"),
    ],
)
def test_bad_scale_lr_arguments_raise(args, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        scale_lr(*args)


def test_configure_optimization_scales_lr_to_the_global_batch_and_spans_the_run():
    trainer = SimpleNamespace(datamodule=SimpleNamespace(batch_size=64), world_size=2,
                              accumulate_grad_batches=2, max_epochs=5,
                              estimated_stepping_batches=40)  # fmt: skip
    params = list(torch.nn.Linear(2, 2).parameters())
    config, length = configure_optimization(
        params, trainer, optimizer="sgd", lr=0.1, scheduler="cosine", lr_reference_batch_size=64
    )
    assert length == 5 and config["optimizer"].defaults["lr"] == pytest.approx(0.4)
    assert config["lr_scheduler"]["interval"] == "epoch"
    _, steps = configure_optimization(
        params, trainer, optimizer="sgd", lr=0.1, scheduler="cosine", scheduler_interval="step"
    )
    assert steps == 40
    optimizer, none = configure_optimization(params, None, optimizer="adam", lr=0.01)
    assert none is None and optimizer.defaults["lr"] == 0.01


def test_a_resumed_schedule_of_another_length_is_refused():
    check_resumed_length("cosine", 10, 10, "epoch")
    check_resumed_length("cosine", None, 3, "epoch")  # a checkpoint without a schedule
    message = (
        "the checkpoint's cosine schedule spans 100 optimizer steps, this run 300: a resumed "
        "schedule keeps its length; resume with the first run's --trainer.max_epochs and "
        "--trainer.max_steps, or start a new run"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_resumed_length("cosine", 100, 300, "step")


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "adagrad"])
def test_optimizers_with_a_fused_kernel_use_it_and_step_as_torchs_default(name):
    """One fused kernel a step (4x less optimizer time for LeNet-5 on a CPU), the same
    updates as torch's default per-parameter loop."""
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    reference = copy.deepcopy(model)
    options = {"momentum": 0.9, "nesterov": True} if name == "sgd" else {}
    fused = create_optimizer(name, model, lr=0.01, weight_decay=0.01, **options)
    default = create_optimizer(name, reference, lr=0.01, weight_decay=0.01, fused=None, **options)
    assert fused.param_groups[0]["fused"] is True
    assert default.param_groups[0]["fused"] is None
    images, targets = torch.randn(8, 1, 28, 28), torch.arange(8)
    for _ in range(3):
        for net, optimizer in ((model, fused), (reference, default)):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(images), targets).backward()
            optimizer.step()
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "options", "params"),
    [
        ("rmsprop", {}, None),  # torch has no fused RMSprop
        ("sgd", {"foreach": True}, None),  # the caller's choice of implementation
        ("adam", {"differentiable": True}, None),
        ("sgd", {}, [{"params": iter([nn.Parameter(torch.zeros(2))])}]),  # left unread
    ],
)
def test_no_fused_kernel_where_torch_has_none_or_the_caller_chose(name, options, params):
    params = params if params is not None else nn.Linear(2, 2).parameters()
    optimizer = create_optimizer(name, params, lr=0.1, **options)
    assert not optimizer.param_groups[0].get("fused")
    assert len(optimizer.param_groups[0]["params"]) == (1 if name == "sgd" and not options else 2)
