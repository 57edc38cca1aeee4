"""``lightning-cv lr-find``: Lightning's learning-rate range test on a recipe.

The learning rate grows exponentially from ``--min_lr`` to ``--max_lr`` over
``--num_training`` steps of the recipe's model and data; the loss against the learning rate
is plotted, and the learning rate where the loss falls fastest is printed as a ready option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as L
from lightning.pytorch.cli import LightningArgumentParser, SaveConfigCallback
from lightning.pytorch.tuner import Tuner
from matplotlib import pyplot as plt

from lightning_cv._io import save_figure
from lightning_cv.cli.lightning_cli import LightningCVCLI
from lightning_cv.cli.tune import _run_name
from lightning_cv.errors import ConfigError

__all__ = ["LRFindCLI", "lr_find_main"]

LR_FIND_KEYS = ("min_lr", "max_lr", "num_training", "output")


class LRFindCLI(LightningCVCLI):
    """``lightning-cv lr-find``: the options of ``fit`` plus the range test's own."""

    PROG = "lightning-cv lr-find"
    DESCRIPTION = "Suggest a learning rate by the learning-rate range test (Smith 2017)."

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        group = parser.add_argument_group("range test")
        group.add_argument("--min_lr", type=float, default=1e-6, help="the first learning rate")
        group.add_argument("--max_lr", type=float, default=1.0, help="the last learning rate")
        group.add_argument("--num_training", type=int, default=100, help="steps of the test")
        group.add_argument("--output", type=str | None, default=None,
                           help="the plot (PNG); default: runs/<run name>/lr_find.png")  # fmt: skip

    def before_instantiate_classes(self) -> None:
        """Note the recipe's run name (the plot goes beside its runs), then drop the logger:
        the range test is no run, and leaves no run folder."""
        super().before_instantiate_classes()
        self.run_name = _run_name(self.config)
        self.config.trainer.logger = False
        model = self.config.model.get("init_args") or {}
        if model.get("step_batch_size") is not None:
            # Lightning's test takes one optimizer step per batch: load one step's samples
            self.config.data.init_args.batch_size = model.step_batch_size
            model.step_batch_size = None

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)  # no config.yaml: there is no run
        trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, SaveConfigCallback)]
        return trainer


def lr_find_main(args: list[str]) -> None:
    """Run the range test, save the loss-vs-lr plot and print the suggested ``--model.lr``."""
    own = ["--trainer.enable_checkpointing=false",
           "--trainer.callbacks=[]", "--test_after_fit=false"]  # fmt: skip
    cli = LRFindCLI([*args, *own], run=False)
    options = cli.config
    if not 0 < options.min_lr < options.max_lr:
        raise ConfigError(
            f"--min_lr and --max_lr must be 0 < min_lr < max_lr, got {options.min_lr} and "
            f"{options.max_lr}"
        )
    if options.num_training < 2:
        raise ConfigError(f"--num_training must be >= 2, got {options.num_training}")
    save_dir, name = cli.run_name
    path = Path(options.output or Path(save_dir) / name / "lr_find.png")
    finder = Tuner(cli.trainer).lr_find(
        cli.model, datamodule=cli.datamodule, min_lr=options.min_lr, max_lr=options.max_lr,
        num_training=options.num_training, update_attr=False,
    )  # fmt: skip
    suggestion = finder.suggestion() if finder is not None else None
    figure = finder.plot(suggest=suggestion is not None)
    save_figure(figure, path)
    plt.close(figure)
    print(f"loss against learning rate: {path}")
    if suggestion is None:
        print("no suggestion: the loss did not fall; try a wider --min_lr .. --max_lr")
        return
    print(f"suggested learning rate (steepest fall of the loss): --model.lr {suggestion:.3g}")
