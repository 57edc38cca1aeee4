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
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.optim import lr_scheduler

from lightning_cv._options import check_option_types
from lightning_cv.errors import ConfigError

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "WARMUP_START_FACTOR",
    "create_optimizer",
    "create_scheduler",
    "scale_lr",
    "scheduler_config",
]

WARMUP_START_FACTOR = 0.01
"""The warm-up's first learning rate, as a share of the optimizer's."""

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adagrad": torch.optim.Adagrad,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
OPTIMIZERS: tuple[str, ...] = tuple(sorted(_OPTIMIZERS))
"""Names accepted by :func:`create_optimizer`."""


def _check_options(kind: str, name: str, kwargs: dict, options: Iterable[str]) -> None:
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ConfigError(
            f"{kind} {name!r} has no option {unknown}; expected some of {sorted(options)}"
        )


def check_optimizer_options(name: str, kwargs: dict) -> None:
    """Refuse an unknown optimizer, an option it lacks, or a value of the wrong type."""
    if name not in _OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")
    optimizer = _OPTIMIZERS[name]
    options = set(inspect.signature(optimizer).parameters) - {"params", "lr", "weight_decay"}
    _check_options("optimizer", name, kwargs, options)
    check_option_types("optimizer", name, optimizer, kwargs)


def check_scheduler_options(name: str, kwargs: dict) -> None:
    """Refuse an unknown schedule, an option it lacks, or a value of the wrong type."""
    if name not in _SCHEDULERS:
        raise ConfigError(f"unknown scheduler {name!r}; expected one of {list(SCHEDULERS)}")
    parameters = set(inspect.signature(_SCHEDULERS[name]).parameters) - {"optimizer", "total_steps"}
    _check_options("scheduler", name, kwargs, parameters)
    check_option_types("scheduler", name, _SCHEDULERS[name], kwargs)


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
    check_optimizer_options(name, kwargs)
    optimizer = _OPTIMIZERS[name]
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr}")
    if not weight_decay >= 0:
        raise ConfigError(f"weight_decay must be >= 0, got {weight_decay}")
    if isinstance(params_or_module, nn.Module):
        params_or_module = params_or_module.parameters()
    params = list(params_or_module)
    if not decay_biases:
        if not all(isinstance(param, torch.Tensor) for param in params):
            raise ConfigError(
                "decay_biases=False needs a module or a list of parameters, not parameter groups"
            )
        groups = [
            {"params": [param for param in params if param.ndim > 1]},
            {"params": [param for param in params if param.ndim <= 1], "weight_decay": 0.0},
        ]
        params = [group for group in groups if group["params"]]
    try:
        return optimizer(params, lr=lr, weight_decay=weight_decay, **kwargs)
    except ValueError as error:  # torch checks momentum, betas, eps, nesterov, empty params
        raise ConfigError(f"optimizer {name!r}: {error}") from None


def _check_gamma(gamma: float) -> None:
    if not 0 < gamma <= 1:
        raise ConfigError(f"gamma must be in (0, 1], got {gamma}")


def _step(optimizer, *, step_size: int, gamma: float = 0.1) -> lr_scheduler.LRScheduler:
    # lr_t = lr0 * gamma ** (t // step_size)
    if not step_size >= 1:
        raise ConfigError(f"step_size must be >= 1, got {step_size}")
    _check_gamma(gamma)
    return lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


def _multistep(
    optimizer, *, milestones: Sequence[int], gamma: float = 0.1
) -> lr_scheduler.LRScheduler:
    # lr_t = lr0 * gamma ** (number of milestones <= t)
    _check_gamma(gamma)
    return lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=gamma)


def _exponential(optimizer, *, gamma: float) -> lr_scheduler.LRScheduler:
    # lr_t = lr0 * gamma ** t, i.e. lr0 * exp(-lambda t) with gamma = exp(-lambda)
    _check_gamma(gamma)
    return lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


def _inverse_time(optimizer, *, decay_rate: float) -> lr_scheduler.LRScheduler:
    # lr_t = lr0 / (1 + decay_rate * t)
    if not decay_rate >= 0:
        raise ConfigError(f"decay_rate must be >= 0, got {decay_rate}")
    return lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + decay_rate * step))


def _constant(optimizer) -> lr_scheduler.LRScheduler:
    # lr_t = lr0: with warmup_steps, a warm-up and nothing else
    return lr_scheduler.ConstantLR(optimizer, factor=1.0)


def _cosine(optimizer, *, total_steps: int, eta_min: float = 0.0) -> lr_scheduler.LRScheduler:
    # lr_t = eta_min + (lr0 - eta_min) * (1 + cos(pi t / total_steps)) / 2
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=eta_min)


def _onecycle(
    optimizer,
    *,
    total_steps: int,
    max_lr: float | None = None,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    three_phase: bool = False,
    cycle_momentum: bool = True,
) -> lr_scheduler.LRScheduler:
    # Smith and Topin 2019: max_lr / div_factor up to max_lr over pct_start of the steps, then
    # down to max_lr / (div_factor * final_div_factor); max_lr defaults to the optimizer's lr
    return lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups] if max_lr is None else max_lr,
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        anneal_strategy=anneal_strategy,
        three_phase=three_phase,
        cycle_momentum=cycle_momentum,
    )


def _plateau(
    optimizer,
    *,
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    cooldown: int = 0,
    min_lr: float = 0.0,
) -> lr_scheduler.ReduceLROnPlateau:
    # lr *= factor after `patience` epochs without improvement of the monitored metric
    return lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        cooldown=cooldown,
        min_lr=min_lr,
    )


_SCHEDULERS: dict[str, Callable[..., lr_scheduler.LRScheduler]] = {
    "constant": _constant,
    "cosine": _cosine,
    "exponential": _exponential,
    "inverse_time": _inverse_time,
    "multistep": _multistep,
    "onecycle": _onecycle,
    "plateau": _plateau,
    "step": _step,
}
SCHEDULERS: tuple[str, ...] = tuple(sorted(_SCHEDULERS))
"""Names accepted by :func:`create_scheduler`."""

_NO_WARMUP = ("onecycle", "plateau")  # onecycle warms up itself; plateau follows a metric


def create_scheduler(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int | None = None,
    warmup_steps: int = 0,
    **kwargs,
) -> lr_scheduler.LRScheduler:
    """Build a learning-rate schedule by name; ``t`` counts ``scheduler.step()`` calls.

    ========================  ======================================================
    ``constant``              ``lr0`` (with ``warmup_steps``: a warm-up alone)
    ``step``                  ``lr0 * gamma ** (t // step_size)``; gamma 0.1
    ``multistep``             ``lr0 * gamma ** (milestones passed)``; gamma 0.1
    ``exponential``           ``lr0 * gamma ** t``
    ``inverse_time``          ``lr0 / (1 + decay_rate * t)``
    ``cosine``                ``eta_min + (lr0 - eta_min) (1 + cos(pi t / T)) / 2``
    ``onecycle``              up from ``max_lr / div_factor`` to ``max_lr``, then down
    ``plateau``               ``lr * factor`` when the monitored metric stalls
    ========================  ======================================================

    With ``warmup_steps = w > 0`` the rate first rises linearly from
    ``WARMUP_START_FACTOR * lr0`` to ``lr0`` over ``w`` steps, then the schedule starts, at
    its own ``t = 0``, at step ``w``.

    Args:
        name: one of :data:`SCHEDULERS`.
        optimizer: the optimizer whose learning rate is scheduled.
        total_steps: how many times the schedule will step in the whole run (optimizer steps
            for ``interval="step"``, epochs for ``"epoch"``); needed by ``cosine`` (T is
            ``total_steps - warmup_steps``) and ``onecycle``, ignored by the others.
        warmup_steps: linear warm-up length; not for ``onecycle`` or ``plateau``.
        **kwargs: the schedule's options (``step_size``, ``milestones``, ``gamma``,
            ``decay_rate``, ``eta_min``, ``max_lr``, ``pct_start``, ``factor``, ...).

    Returns:
        A torch scheduler (a ``ReduceLROnPlateau`` for ``plateau``; step it with the metric).

    Raises:
        ConfigError: unknown name or option, a missing option or ``total_steps``, or a value
            out of range.

    Example:
        >>> optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
        >>> scheduler = create_scheduler("inverse_time", optimizer, decay_rate=1.0)
        >>> optimizer.step(); scheduler.step()
        >>> scheduler.get_last_lr()  # 0.1 / (1 + 1.0 * 1)
        [0.05]
    """
    check_scheduler_options(name, kwargs)
    builder = _SCHEDULERS[name]
    parameters = dict(inspect.signature(builder).parameters)
    del parameters["optimizer"]
    needs_total = parameters.pop("total_steps", None) is not None
    missing = [key for key, p in parameters.items() if p.default is p.empty and key not in kwargs]
    if missing:
        raise ConfigError(f"scheduler {name!r} needs {missing}")
    if not warmup_steps >= 0:
        raise ConfigError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if warmup_steps and name in _NO_WARMUP:
        raise ConfigError(
            f"scheduler {name!r} takes no warmup_steps (onecycle warms up itself, plateau "
            f"follows a metric), got warmup_steps={warmup_steps}"
        )
    if needs_total:
        if total_steps is None:
            raise ConfigError(
                f"scheduler {name!r} needs total_steps (how many times it steps in the run)"
            )
        if not total_steps > warmup_steps:
            raise ConfigError(
                f"total_steps must exceed warmup_steps, got total_steps={total_steps} and "
                f"warmup_steps={warmup_steps}"
            )
        kwargs["total_steps"] = total_steps - warmup_steps
    try:
        if not warmup_steps:
            return builder(optimizer, **kwargs)
        schedule = builder(optimizer, **kwargs)
        warmup = lr_scheduler.LinearLR(
            optimizer, start_factor=WARMUP_START_FACTOR, total_iters=warmup_steps
        )
        return lr_scheduler.SequentialLR(optimizer, [warmup, schedule], milestones=[warmup_steps])
    except ConfigError:
        raise
    except ValueError as error:  # torch checks factors, modes, pct_start, momentum support
        raise ConfigError(f"scheduler {name!r}: {error}") from None


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
    if interval not in ("step", "epoch"):
        raise ConfigError(f"unknown interval {interval!r}; expected one of ['epoch', 'step']")
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
        lr: the learning rate tuned at ``reference_batch_size``, > 0.
        global_batch_size: the batch size over all devices (per-device size times devices
            times gradient accumulation), >= 1.
        reference_batch_size: the batch size ``lr`` was tuned at, >= 1.

    Returns:
        ``lr * global_batch_size / reference_batch_size``.

    Raises:
        ConfigError: a value out of range.

    Example:
        >>> scale_lr(0.1, global_batch_size=1024)  # 4x the batch, 4x the rate
        0.4
    """
    if not lr > 0:
        raise ConfigError(f"lr must be > 0, got {lr}")
    for key, size in [
        ("global_batch_size", global_batch_size),
        ("reference_batch_size", reference_batch_size),
    ]:
        if not size >= 1:
            raise ConfigError(f"{key} must be >= 1, got {size}")
    return lr * global_batch_size / reference_batch_size
