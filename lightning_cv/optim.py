"""Optimizers and learning-rate schedules looked up by name, with plain-data options.

The optimizers are the course's: SGD (with momentum or Nesterov momentum), Adagrad, RMSProp,
Adam and AdamW. The schedules decay the step size as training goes on: by steps, exponentially,
as 1/t, along a cosine, in one cycle, or when the validation loss stops improving; any of them
but the last two can start with a linear warm-up.

Example:
    >>> model = torch.nn.Linear(64, 10)
    >>> optimizer = create_optimizer("sgd", model, lr=0.1, momentum=0.9, weight_decay=5e-4)
    >>> scheduler = create_scheduler("cosine", optimizer, total_steps=100, warmup_steps=5)
    >>> scheduler_config(scheduler, interval="step")["interval"]
    'step'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler

from lightning_cv._lookup import check_options, lookup
from lightning_cv.errors import ConfigError, check_choice, check_range
from lightning_cv.step_batches import optimizer_steps

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "WARMUP_START_FACTOR",
    "check_optimizer",
    "check_resumed_length",
    "check_scheduler",
    "configure_optimization",
    "create_optimizer",
    "create_scheduler",
    "scale_lr",
    "schedule_length",
    "scheduler_config",
]

WARMUP_START_FACTOR = 0.01
"""The warm-up's first learning rate, as a share of the optimizer's."""

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {  # with torch's own defaults
    "adagrad": torch.optim.Adagrad,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
OPTIMIZERS: tuple[str, ...] = tuple(sorted(_OPTIMIZERS))
"""Names accepted by :func:`create_optimizer`."""


def check_optimizer(name: str, *, lr: float, weight_decay: float = 0.0, **kwargs) -> None:
    """Refuse, before anything is built, what :func:`create_optimizer` would refuse without a
    model: an unknown name or option, a value of the wrong type, ``lr`` or ``weight_decay``
    out of range."""
    optimizer = lookup("optimizer", name, _OPTIMIZERS)
    check_options("optimizer", name, optimizer, kwargs, given=("params", "lr", "weight_decay"))
    check_range("lr", lr, "> 0")
    check_range("weight_decay", weight_decay, ">= 0")


def create_optimizer(
    name: str,
    params_or_module: nn.Module | Iterable[torch.Tensor],
    *,
    lr: float,
    weight_decay: float = 0.0,
    decay_biases: bool = True,
    **kwargs,
) -> torch.optim.Optimizer:
    """Build an optimizer by name.

    Args:
        name: one of :data:`OPTIMIZERS`: ``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``.
        params_or_module: a module, or its parameters (parameter groups and named parameters
            pass through to torch when ``decay_biases`` is true).
        lr: the learning rate, > 0.
        weight_decay: the L2 penalty (decoupled for ``adamw``), >= 0.
        decay_biases: when false, biases and normalisation weights (every parameter with
            ``ndim <= 1``) go in a second group with ``weight_decay=0``.
        **kwargs: the torch optimizer's other options, e.g. ``momentum`` and ``nesterov`` for
            ``sgd`` or ``betas`` for ``adam``.

    Returns:
        The torch optimizer.

    Raises:
        ConfigError: unknown name or option, or a value torch rejects (the message keeps
            torch's reason).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> optimizer = create_optimizer("adamw", model, lr=1e-3, weight_decay=0.05,
        ...                              decay_biases=False)
        >>> [group["weight_decay"] for group in optimizer.param_groups]
        [0.05, 0.0]
    """
    check_optimizer(name, lr=lr, weight_decay=weight_decay, **kwargs)
    params = _param_groups(params_or_module, decay_biases)
    kwargs = {**_fused_default(_OPTIMIZERS[name], params, kwargs), **kwargs}
    try:
        return _OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay, **kwargs)
    except ValueError as error:  # torch checks momentum, betas, eps, nesterov, empty params
        raise ConfigError(f"optimizer {name!r}: {error}") from None


def _fused_default(optimizer: type, params: list, given: dict) -> dict:
    """``{"fused": True}`` where torch has a fused kernel for ``optimizer`` and the parameters
    are floating point on a CPU or CUDA device, unless the caller chose an implementation
    (``fused``, ``foreach``, ``differentiable``): one kernel a step instead of a few per
    parameter, 4x less optimizer time for LeNet-5 on a CPU, where torch's default is a Python
    loop over the parameters."""
    if given.keys() & {"fused", "foreach", "differentiable"}:
        return {}
    if "fused" not in inspect.signature(optimizer).parameters:
        return {}
    groups = [group["params"] if isinstance(group, dict) else [group] for group in params]
    groups = [[group] if isinstance(group, torch.Tensor) else group for group in groups]
    if not all(isinstance(group, list | tuple) for group in groups):  # an iterator stays unread
        return {}
    tensors = [param for group in groups for param in group]
    suited = all(
        isinstance(param, torch.Tensor)
        and param.is_floating_point()
        and param.device.type in ("cpu", "cuda")
        for param in tensors
    )
    return {"fused": True} if tensors and suited else {}


def _param_groups(params_or_module: nn.Module | Iterable, decay_biases: bool) -> list:
    """The parameters, or with ``decay_biases=False`` two groups: ``ndim > 1``, and the rest
    with ``weight_decay=0``."""
    if isinstance(params_or_module, nn.Module):
        params_or_module = params_or_module.parameters()
    params = list(params_or_module)
    if decay_biases:
        return params
    if not all(isinstance(param, torch.Tensor) for param in params):
        raise ConfigError(
            "decay_biases=False needs a module or a list of parameters, not parameter groups"
        )
    groups = [
        {"params": [param for param in params if param.ndim > 1]},
        {"params": [param for param in params if param.ndim <= 1], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def _inverse_time(optimizer, *, decay_rate: float) -> lr_scheduler.LRScheduler:
    """Torch has no inverse-time decay; a ``LambdaLR`` needs a function, which YAML lacks."""
    return lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + decay_rate * step))


def _optimizer_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


@dataclass(frozen=True)
class _Schedule:
    """A row of the schedule table: the torch class (or our builder) and what we add to it."""

    target: Callable[..., lr_scheduler.LRScheduler]
    defaults: Mapping[str, Any] = field(default_factory=dict)  # a function: of the optimizer
    limits: Mapping[str, str] = field(default_factory=dict)  # those torch does not check
    length: str | None = None  # the parameter that takes the run's length (total_steps)
    warmup: bool = True  # whether a linear warm-up may come first


_GAMMA = {"gamma": "(0, 1]"}
_SCHEDULERS: dict[str, _Schedule] = {
    # lr_t = lr0: with warmup_steps, a warm-up and nothing else
    "constant": _Schedule(lr_scheduler.ConstantLR, {"factor": 1.0}),
    # lr_t = eta_min + (lr0 - eta_min) * (1 + cos(pi t / total_steps)) / 2
    "cosine": _Schedule(lr_scheduler.CosineAnnealingLR, length="T_max"),
    # lr_t = lr0 * gamma ** t, i.e. lr0 * exp(-lambda t) with gamma = exp(-lambda)
    "exponential": _Schedule(lr_scheduler.ExponentialLR, limits=_GAMMA),
    # lr_t = lr0 / (1 + decay_rate * t)
    "inverse_time": _Schedule(_inverse_time, limits={"decay_rate": ">= 0"}),
    # lr_t = lr0 * gamma ** (number of milestones <= t)
    "multistep": _Schedule(lr_scheduler.MultiStepLR, limits=_GAMMA),
    # Smith and Topin 2019: max_lr / div_factor up to max_lr over pct_start of the steps, then
    # down to max_lr / (div_factor * final_div_factor); max_lr defaults to the optimizer's lr.
    # It warms up itself.
    "onecycle": _Schedule(
        lr_scheduler.OneCycleLR, {"max_lr": _optimizer_lrs}, length="total_steps", warmup=False
    ),
    # lr *= factor after `patience` epochs without improvement of the monitored metric; a
    # warm-up would step it without the metric
    "plateau": _Schedule(lr_scheduler.ReduceLROnPlateau, warmup=False),
    # lr_t = lr0 * gamma ** (t // step_size)
    "step": _Schedule(lr_scheduler.StepLR, limits={"step_size": ">= 1", **_GAMMA}),
}
SCHEDULERS: tuple[str, ...] = tuple(sorted(_SCHEDULERS))
"""Names accepted by :func:`create_scheduler`."""


def check_scheduler(name: str | None, *, warmup_steps: int = 0, **kwargs) -> None:
    """Refuse, before anything is built, what :func:`create_scheduler` would refuse without an
    optimizer: an unknown name or option, a missing option, a value of the wrong type or out
    of range, a warm-up the schedule cannot take; with ``name=None`` (no schedule), any
    warm-up or option, which nothing would use."""
    check_range("warmup_steps", warmup_steps, ">= 0")
    if name is None:
        if warmup_steps or kwargs:
            raise ConfigError(
                f"warmup_steps={warmup_steps} and scheduler_kwargs={kwargs} need a scheduler "
                "('constant' gives a warm-up alone)"
            )
        return
    schedule = lookup("scheduler", name, _SCHEDULERS)
    given = {"optimizer", "last_epoch", schedule.length}
    check_options("scheduler", name, schedule.target, kwargs, given=given)
    for key, bounds in schedule.limits.items():
        if key in kwargs:
            check_range(key, kwargs[key], bounds)
    parameters = inspect.signature(schedule.target).parameters.values()
    missing = [
        p.name
        for p in parameters
        if p.default is p.empty and p.name not in {*given, *schedule.defaults, *kwargs}
    ]
    if missing:
        raise ConfigError(f"scheduler {name!r} needs {missing}")
    if warmup_steps and not schedule.warmup:
        raise ConfigError(
            f"scheduler {name!r} takes no warmup_steps (onecycle warms up itself, plateau "
            f"follows a metric), got warmup_steps={warmup_steps}"
        )


def create_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int | None = None,
    warmup_steps: int = 0,
    **kwargs,
) -> lr_scheduler.LRScheduler:
    """Build a learning-rate schedule by name: a torch schedule (``step`` is ``StepLR``, ...)
    with its options; the formulas stand beside the table in this module and in the training
    guide. With ``warmup_steps = w > 0`` the rate first rises linearly from
    ``WARMUP_START_FACTOR * lr0`` to ``lr0`` over ``w`` steps, then the schedule starts.

    Args:
        name: one of :data:`SCHEDULERS`.
        optimizer: the optimizer whose learning rate is scheduled.
        total_steps: how many times the schedule will step in the whole run (optimizer steps
            for ``interval="step"``, epochs for ``"epoch"``); needed by ``cosine`` (T is
            ``total_steps - warmup_steps``) and ``onecycle``, ignored by the others.
        warmup_steps: linear warm-up length; not for ``onecycle`` or ``plateau``.
        **kwargs: the torch schedule's options (``step_size``, ``milestones``, ``gamma``,
            ``eta_min``, ``max_lr``, ``pct_start``, ``factor``, ...; ``decay_rate`` for
            ``inverse_time``).

    Returns:
        A torch scheduler (a ``ReduceLROnPlateau`` for ``plateau``; step it with the metric).

    Raises:
        ConfigError: what :func:`check_scheduler` refuses, or a missing ``total_steps``.

    Example:
        >>> optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
        >>> scheduler = create_scheduler("inverse_time", optimizer, decay_rate=1.0)
        >>> optimizer.step(); scheduler.step()
        >>> scheduler.get_last_lr()  # 0.1 / (1 + 1.0 * 1)
        [0.05]
    """
    check_scheduler(name, warmup_steps=warmup_steps, **kwargs)
    schedule = _SCHEDULERS[name]
    defaults = schedule.defaults.items()
    options = {key: value(optimizer) if callable(value) else value for key, value in defaults}
    options |= kwargs
    if schedule.length is not None:
        options[schedule.length] = _run_length(name, total_steps, warmup_steps)
    try:
        main = schedule.target(optimizer, **options)
        return _after_warmup(optimizer, main, warmup_steps) if warmup_steps else main
    except ValueError as error:  # torch checks factors, modes, pct_start, momentum support
        raise ConfigError(f"scheduler {name!r}: {error}") from None


def _after_warmup(
    optimizer: torch.optim.Optimizer, main: lr_scheduler.LRScheduler, warmup_steps: int
) -> lr_scheduler.LRScheduler:
    """``main`` after a linear rise from ``WARMUP_START_FACTOR * lr0`` over ``warmup_steps``."""
    warmup = lr_scheduler.LinearLR(
        optimizer, start_factor=WARMUP_START_FACTOR, total_iters=warmup_steps
    )
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[warmup_steps])


def _run_length(name: str, total_steps: int | None, warmup_steps: int) -> int:
    """The steps after the warm-up, for the schedules that need the run's length."""
    if total_steps is None:
        raise ConfigError(
            f"scheduler {name!r} needs total_steps (how many times it steps in the run)"
        )
    if not total_steps > warmup_steps:
        raise ConfigError(
            f"total_steps must exceed warmup_steps, got total_steps={total_steps} and "
            f"warmup_steps={warmup_steps}"
        )
    return total_steps - warmup_steps


def scheduler_config(
    scheduler: lr_scheduler.LRScheduler, interval: str = "epoch", monitor: str = "val/loss"
) -> dict:
    """The ``lr_scheduler`` entry that Lightning's ``configure_optimizers`` returns.

    Args:
        scheduler: from :func:`create_scheduler`.
        interval: step the schedule after every ``"step"`` (optimizer step) or ``"epoch"``.
        monitor: the metric a ``plateau`` schedule follows (only added for ``plateau``).

    Returns:
        ``{"scheduler": ..., "interval": ...}``, plus ``"monitor"`` for ``plateau``.

    Raises:
        ConfigError: an unknown interval, or ``"step"`` for ``plateau`` (the validation
            metric only exists once per epoch).

    Example:
        >>> optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
        >>> scheduler_config(create_scheduler("plateau", optimizer))["monitor"]
        'val/loss'
    """
    check_choice("interval", interval, ("epoch", "step"))
    config = {"scheduler": scheduler, "interval": interval}
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        if interval == "step":
            raise ConfigError("a 'plateau' scheduler steps once per epoch; use interval 'epoch'")
        config["monitor"] = monitor
    return config


def scale_lr(lr: float, global_batch_size: int, reference_batch_size: int = 256) -> float:
    """The linear scaling rule: multiply the learning rate by the batch size's growth.

    Goyal et al. 2017, "Accurate, Large Minibatch SGD": when the minibatch is k times larger,
    take a k times larger learning rate (with a warm-up at the start).

    Args:
        lr: the learning rate tuned at ``reference_batch_size``.
        global_batch_size: the batch size over all devices (per-device size times devices
            times gradient accumulation), >= 1.
        reference_batch_size: the batch size ``lr`` was tuned at, >= 1.

    Returns:
        ``lr * global_batch_size / reference_batch_size``.

    Raises:
        ConfigError: a batch size below 1 (``lr`` is checked where it is used, by
            :func:`create_optimizer`).

    Example:
        >>> scale_lr(0.1, global_batch_size=1024)  # 4x the batch, 4x the rate
        0.4
    """
    check_range("global_batch_size", global_batch_size, ">= 1")
    check_range("reference_batch_size", reference_batch_size, ">= 1")
    return lr * global_batch_size / reference_batch_size


def configure_optimization(
    parameters: Iterable[nn.Parameter], trainer: Any, *, optimizer: str, lr: float,
    weight_decay: float = 0.0, decay_biases: bool = True, optimizer_kwargs: dict | None = None,
    scheduler: str | None = None, scheduler_kwargs: dict | None = None, warmup_steps: int = 0,
    scheduler_interval: str = "epoch", lr_reference_batch_size: int | None = None,
    resumed_length: int | None = None, step_batch_size: int | None = None,
) -> tuple[Any, int | None]:  # fmt: skip
    """What a LightningModule's ``configure_optimizers`` returns for a run of ``trainer``, and
    the length of its schedule (which a checkpoint keeps, for :func:`check_resumed_length`).

    ``lr`` is scaled by :func:`scale_lr` to the run's global batch when
    ``lr_reference_batch_size`` is set; ``scheduler`` spans :func:`schedule_length`. With
    ``step_batch_size`` (several optimizer steps per loaded batch) that is the batch an
    optimizer step sees.

    Returns:
        ``(optimizer, None)`` without a scheduler, else ``({"optimizer": ...,
        "lr_scheduler": ...}, length)``.

    Raises:
        ConfigError: as :func:`create_optimizer`, :func:`create_scheduler` and
            :func:`check_resumed_length` do.
    """
    data = getattr(trainer, "datamodule", None)
    if lr_reference_batch_size is not None and data is not None:
        accumulated = trainer.world_size * trainer.accumulate_grad_batches
        step_batch = step_batch_size or data.batch_size
        lr = scale_lr(lr, step_batch * accumulated, lr_reference_batch_size)
    built = create_optimizer(optimizer, parameters, lr=lr, weight_decay=weight_decay,
                             decay_biases=decay_biases, **(optimizer_kwargs or {}))  # fmt: skip
    if scheduler is None:
        return built, None
    length = schedule_length(trainer, scheduler_interval, step_batch_size)
    check_resumed_length(scheduler, resumed_length, length, scheduler_interval)
    schedule = create_scheduler(scheduler, built, total_steps=length, warmup_steps=warmup_steps,
                                **(scheduler_kwargs or {}))  # fmt: skip
    return {
        "optimizer": built,
        "lr_scheduler": scheduler_config(schedule, scheduler_interval),
    }, length


def schedule_length(trainer: Any, interval: str, step_batch_size: int | None = None) -> int | None:
    """Steps a schedule runs for in a run of ``trainer``: its optimizer steps (``"step"``;
    :func:`~lightning_cv.step_batches.optimizer_steps` when loaded batches are split into steps
    of ``step_batch_size``) or its epochs; None for a run without an epoch limit."""
    if interval == "step":
        loaded = trainer.estimated_stepping_batches  # may load the training data to count it
        return int(loaded if step_batch_size is None else optimizer_steps(trainer, step_batch_size))
    max_epochs = trainer.max_epochs
    return max_epochs if max_epochs and max_epochs > 0 else None


def check_resumed_length(name: str, saved: int | None, resumed: int | None, interval: str) -> None:
    """A resumed run restores the schedule's state, whose length is the first run's: a run
    resumed with another length would follow the old one (a cosine schedule sits at 0 for
    every epoch past it), so it is refused."""
    if saved is None or resumed is None or saved == resumed:
        return
    unit = "optimizer steps" if interval == "step" else "epochs"
    raise ConfigError(
        f"the checkpoint's {name} schedule spans {saved} {unit}, this run {resumed}: a resumed "
        "schedule keeps its length; resume with the first run's --trainer.max_epochs and "
        "--trainer.max_steps, or start a new run"
    )
