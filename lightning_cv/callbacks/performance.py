"""Speed options of a recipe: the channels-last memory format and ``torch.compile`` of the backbone.

Both change how the backbone computes, never what: the same weights give the same logits
(within float rounding), the checkpoint keeps the plain state-dict keys, and a model trained
with them loads and runs without them. Mixed precision needs no callback of ours: it is
Lightning's ``trainer.precision: bf16-mixed``.

    trainer:
      callbacks:
        - class_path: lightning_cv.callbacks.performance.ChannelsLast
        - class_path: lightning_cv.callbacks.performance.CompileBackbone
          init_args: {mode: max-autotune-no-cudagraphs}
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as L
import torch
from torch import nn

from lightning_cv.errors import ConfigError, check_choice

__all__ = ["COMPILE_MODES", "ChannelsLast", "CompileBackbone", "backbone_of"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""``torch.compile``'s modes; None (the default) is ``"default"``."""


def backbone_of(pl_module: L.LightningModule, attribute: str) -> nn.Module:
    """``pl_module.<attribute>``, the module a callback changes.

    Raises:
        ConfigError: ``pl_module`` has no ``nn.Module`` under that name.
    """
    module = getattr(pl_module, attribute, None)
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"{type(pl_module).__name__} has no module {attribute!r} to speed up; expected "
            "an nn.Module attribute such as ImageClassifier's 'backbone'"
        )
    return module


def _check_attribute(attribute: str) -> None:
    if not isinstance(attribute, str) or not attribute.isidentifier():
        raise ConfigError(f"attribute must be a Python name such as 'backbone', got {attribute!r}")


def to_channels_last(module: nn.Module, args: tuple) -> tuple:
    """A forward pre-hook: 4-D tensor inputs as ``torch.channels_last`` (same values)."""
    return tuple(
        arg.contiguous(memory_format=torch.channels_last)
        if isinstance(arg, torch.Tensor) and arg.ndim == 4
        else arg
        for arg in args
    )


class ChannelsLast(L.Callback):
    """Run the backbone in the channels-last (NHWC) memory format.

    Convolution weights become channels-last and a forward pre-hook converts each 4-D input,
    so oneDNN and cuDNN pick their NHWC kernels. Layers without 4-D tensors (``linear``,
    ``mlp``) are unchanged.

    Args:
        attribute: the LightningModule's attribute holding the backbone.

    Raises:
        ConfigError: ``attribute`` is not a Python name, or (at setup) names no module.

    Example:
        >>> ChannelsLast().attribute
        'backbone'
    """

    def __init__(self, attribute: str = "backbone") -> None:
        _check_attribute(attribute)
        self.attribute = attribute
        self._hooks: dict[int, Any] = {}  # id(module) -> the pre-hook's handle

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        module = backbone_of(pl_module, self.attribute)
        module.to(memory_format=torch.channels_last)
        if id(module) not in self._hooks:
            self._hooks[id(module)] = module.register_forward_pre_hook(to_channels_last)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for handle in self._hooks.values():
            handle.remove()
        self._hooks.clear()


class CompileBackbone(L.Callback):
    """Compile the backbone with ``torch.compile`` when a stage is set up.

    ``nn.Module.compile`` compiles in place, so the state-dict keys stay those of the plain
    backbone (``torch.compile(module)`` would prefix them with ``_orig_mod.``) and checkpoints
    load into an uncompiled model. The first batches of each input shape pay the compilation.

    Args:
        mode: one of :data:`COMPILE_MODES`, or None for torch's default.
        fullgraph: refuse graph breaks instead of running them eagerly.
        dynamic: None lets torch decide, False compiles per shape, True for dynamic shapes.
        attribute: the LightningModule's attribute holding the backbone.

    Raises:
        ConfigError: an unknown ``mode``, a non-bool ``fullgraph`` or ``dynamic``, or a bad
            ``attribute``.

    Example:
        >>> CompileBackbone(mode="max-autotune-no-cudagraphs").mode
        'max-autotune-no-cudagraphs'
    """

    def __init__(
        self,
        mode: str | None = None,
        fullgraph: bool = False,
        dynamic: bool | None = None,
        attribute: str = "backbone",
    ) -> None:
        if mode is not None:
            check_choice("compile mode", mode, COMPILE_MODES)
        for name, value in (("fullgraph", fullgraph), ("dynamic", dynamic)):
            if not isinstance(value, bool) and not (name == "dynamic" and value is None):
                raise ConfigError(f"{name} must be true or false, got {value!r}")
        _check_attribute(attribute)
        self.mode, self.fullgraph, self.dynamic = mode, fullgraph, dynamic
        self.attribute = attribute

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        module = backbone_of(pl_module, self.attribute)
        module.compile(mode=self.mode, fullgraph=self.fullgraph, dynamic=self.dynamic)
