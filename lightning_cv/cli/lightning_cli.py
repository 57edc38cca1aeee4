"""The ``lightning-cv`` command: LightningCLI over ImageClassifier and the data modules."""

from __future__ import annotations

import argparse
import functools
import math
import warnings
from collections.abc import Iterable
from contextlib import ExitStack
from typing import Any

import lightning.pytorch as L
from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor

from lightning_cv._checkpoint import read_checkpoint
from lightning_cv._io import atomic_write_text
from lightning_cv.callbacks import (
    ClassReport,
    ConfusionMatrixPlot,
    GCFreeze,
    LearningRatePlot,
    MisclassifiedGrid,
    TrainingCurves,
    run_folder,
)
from lightning_cv.callbacks.interrupt import Resumable
from lightning_cv.callbacks.predictions import PredictionWriter
from lightning_cv.checkpoint_io import AtomicCheckpointIO
from lightning_cv.cli._conflicts import (
    check_linked_values,
    given_model_options,
    notice_checkpoint_values,
)
from lightning_cv.cli._csv_logger import LIGHTNING_CSV_LOGGERS, RunCSVLogger
from lightning_cv.cli._output import quiet_lightning
from lightning_cv.cli._parse_errors import build_error, short_error
from lightning_cv.cli._progress import EpochProgressBar
from lightning_cv.cli._resume import resume_last_run
from lightning_cv.cli._unprofiled import Unprofiled
from lightning_cv.cli.recipes import resolve_config_args
from lightning_cv.data import ImageDataModule
from lightning_cv.errors import ConfigError
from lightning_cv.knn import KNNClassifier
from lightning_cv.runs import lock_run_folder
from lightning_cv.step_batches import check_step_batches
from lightning_cv.task import ClassificationTask

__all__ = ["LightningCVCLI"]

# imported so that `--model KNNClassifier` resolves by its short name, like ImageClassifier
MODELS = (KNNClassifier,)

LINKED_FROM_DATA = ("num_classes", "in_channels", "image_size", "class_names")


# Callbacks that draw only when testing. ``fit`` runs without them and adds them for its
# ``--test_after_fit``: Lightning calls every callback on each of a training step's six hooks,
# 7 us a callback a step on a CPU with :class:`Unprofiled` (16 us with Lightning's default
# profiler); exact types: a subclass may do more
_TEST_PICTURES = (ConfusionMatrixPlot, ClassReport, MisclassifiedGrid)


def _trainer_defaults(*, quiet: bool) -> dict[str, Any]:
    return {
        "max_epochs": 10,
        "enable_model_summary": False,  # the run header says what trains; the table is long
        "enable_progress_bar": not quiet,
        "logger": {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": "runs", "name": "lightning-cv"},
        },
        "callbacks": [
            LearningRateMonitor(),
            ConfusionMatrixPlot(),
            ClassReport(),
            MisclassifiedGrid(),
            TrainingCurves(),
            LearningRatePlot(),
        ],
    }


class _Checkpoint(ModelCheckpoint):
    """ModelCheckpoint whose checkpoints stay in the run folder without a logger too
    (Lightning's would go to ``default_root_dir/checkpoints``, shared by every such run).

    The file itself is written by :class:`~lightning_cv.checkpoint_io.AtomicCheckpointIO`
    (installed on every CLI Trainer): a reader sees the old checkpoint or the new one.
    """

    @functools.cached_property
    def state_key(self) -> str:
        """Lightning's key (the monitor, mode and triggers this checkpoint was made with), built
        once: Lightning reads it at each of a training step's twelve hook calls on the two
        checkpoints, and building it (a dict's repr) costs 2 us each time on a CPU."""
        return super().state_key

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if not trainer.loggers:
            self.dirpath = trainer.strategy.broadcast(str(run_folder(trainer) / "checkpoints"))


class _BestAccuracy(_Checkpoint):
    """The best ``val/acc``, a tie going to the lower ``val/loss``: on a small validation split
    (fine-tuning on a few images) the accuracy ties for many epochs, and keeping the first of
    them would keep an undertrained model."""

    def __init__(self) -> None:
        super().__init__(
            monitor="val/acc",
            mode="max",
            filename="best-epoch{epoch:02d}-acc{val/acc:.4f}",
            auto_insert_metric_name=False,
        )
        self.best_loss = math.inf  # val/loss of the kept checkpoint

    def check_monitor_top_k(self, trainer: L.Trainer, current: Tensor | None = None) -> bool:
        loss = trainer.callback_metrics.get("val/loss")
        loss = math.inf if loss is None else float(loss)
        tie = current is not None and self.best_k_models and float(current) == self.kth_value
        if tie:  # every process decides alike, as Lightning's own comparison does
            better = trainer.strategy.reduce_boolean_decision(loss < self.best_loss)
        else:
            better = super().check_monitor_top_k(trainer, current)
        if better:
            self.best_loss = loss
        return better

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "best_loss": self.best_loss}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best_loss = state_dict.get("best_loss", math.inf)


def _default_checkpoints(*, best: bool = True) -> list[ModelCheckpoint]:
    """The best validation accuracy, ties broken by the loss (when there is a validation
    split), and the state after every epoch as ``last.ckpt``.

    Lightning 2.6's ``save_last=True`` refreshes ``last.ckpt`` only when a best checkpoint is
    saved, so a second callback without a monitor overwrites ``last.ckpt`` every epoch.
    """
    last = _Checkpoint(filename="last", enable_version_counter=False)
    if not best:
        return [last]
    return [_BestAccuracy(), last]


class _EpochLoggingInterval(Callback):
    """Log training steps at least once an epoch: Lightning's default interval of 50 steps is
    longer than an epoch of a small data set (and it warns then). Added only when the run does
    not set ``log_every_n_steps`` itself."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loader = trainer.datamodule.train_dataloader() if trainer.datamodule else None
        batches = len(loader) if loader is not None and hasattr(loader, "__len__") else 0
        limit = trainer.limit_train_batches  # as Lightning counts an epoch's batches
        batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
        if 0 < batches < trainer.log_every_n_steps:
            trainer.log_every_n_steps = batches


class _RunHeader(Callback):
    """One line when fitting starts: what trains on what, for how long, and where to."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        data = trainer.datamodule
        params = sum(parameter.numel() for parameter in pl_module.parameters())
        model = getattr(pl_module.hparams, "backbone", type(pl_module).__name__)
        splits = [("training", getattr(data, "train_set", None)),
                  ("validation", getattr(data, "val_set", None))]  # fmt: skip
        images = ", ".join(f"{len(part):,} {name}" for name, part in splits if part is not None)
        steps = trainer.max_steps
        epochs = trainer.max_epochs
        length = f"{epochs} epoch{'s' * (epochs != 1)}" if steps < 0 else f"{steps} steps"
        where = "no run folder" if trainer.fast_dev_run else f"run folder {run_folder(trainer)}"
        if trainer.ckpt_path:  # checked and held by now: said here, not before an error
            where += f", resumed from {trainer.ckpt_path}"
        print(
            f"fit: {model} ({params:,} parameters) on {type(data).__name__} ({images} images), "
            f"{length} on {trainer.strategy.root_device.type}; {where}"
        )


class _SplitPredictions(PredictionWriter):
    """``lightning-cv predict``: the top-5 classes of every sample of the data module's predict
    split (its test split), with the true class, and the file where the data has files."""

    def __init__(self, class_names: list[str]) -> None:
        super().__init__("predictions.csv", class_names, top_k=min(5, len(class_names)))

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.output = run_folder(trainer) / "predictions.csv"
        dataset = getattr(trainer.datamodule, "test_set", None)
        if dataset is not None:
            self.labels = dataset.labels[dataset.indices].tolist()
            files = getattr(dataset.images, "paths", None)
            self.paths = None if files is None else [str(files[i]) for i in dataset.indices]


class SaveConfigToRunFolder(SaveConfigCallback):
    """Write the resolved ``config.yaml`` into the run folder, whatever the logger."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        folder = run_folder(trainer)
        if self.config.get("ckpt_path") and (folder / self.config_filename).is_file():
            return  # resumed into its own run folder: keep the config the run started with
        text = self.parser.dump(self.config, skip_none=False)
        atomic_write_text(folder / self.config_filename, text)


def _option_names(parsers: Iterable[LightningArgumentParser]) -> set[str]:
    """Every ``--option`` the parsers take, read from their defaults (``--model.lr`` for
    ``model.init_args.lr``), and the groups above them (``--trainer``, ``--model``)."""
    names = set()
    for parser in parsers:
        for key in parser.get_defaults().keys():  # noqa: SIM118 (a Namespace does not iterate)
            parts = [part for part in key.split(".") if part != "init_args"]
            names.update("--" + ".".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return names


def _as_list(callbacks: Callback | list[Callback] | None) -> list[Callback]:
    if callbacks is None:
        return []
    return callbacks if isinstance(callbacks, list) else [callbacks]


def _check_epochs_left(checkpoint: dict, max_epochs: int | None, path: object) -> None:
    """Refuse to resume past ``max_epochs`` before the run writes anything: Lightning would
    refuse too, but only once the run folder's hparams.yaml has been rewritten."""
    epoch = checkpoint.get("epoch")
    limited = isinstance(max_epochs, int) and max_epochs >= 0
    if limited and isinstance(epoch, int) and epoch > max_epochs:
        raise ConfigError(
            f"checkpoint {str(path)!r} was saved at epoch index {epoch}, past this run's "
            f"--trainer.max_epochs {max_epochs}; resume with a larger --trainer.max_epochs "
            "(the run's total, not the epochs still to run)"
        )


class LightningCVCLI(LightningCLI):
    """``fit | validate | test | predict`` with lightning-cv's defaults.

    The data module's ``num_classes``, ``in_channels``, ``image_size`` and ``class_names`` are
    linked into the model, every run writes into one folder (checkpoints, resolved
    ``config.yaml``, ``metrics.csv``, pictures), and ``fit --test_after_fit true`` evaluates the
    best checkpoint on the test split when training ends.
    """

    PROG = "lightning-cv"
    DESCRIPTION = "Train, evaluate and ship image classifiers (lightning-cv)."

    def __init__(
        self, args: list[str] | None = None, run: bool = True, *, quiet: bool = False
    ) -> None:
        # parser errors are raised (and shortened in parse_arguments), not printed with usage
        raising = {"exit_on_error": False}
        parser_kwargs = {"prog": self.PROG, "description": self.DESCRIPTION, **raising}
        quiet_lightning()
        self.quiet = quiet  # a run the command starts itself (a cv fold): no header, no listing
        self._parsers: list[LightningArgumentParser] = []  # for "did you mean" on a typo
        self._held = ExitStack()  # the run folder, from before_<subcommand> to the end of the run
        self._test_pictures: list[Callback] = []  # fit's, held out of training (before_fit)
        with self._held:
            super().__init__(
                model_class=ClassificationTask,
                subclass_mode_model=True,
                datamodule_class=ImageDataModule,
                subclass_mode_data=True,
                trainer_defaults=_trainer_defaults(quiet=quiet),
                save_config_callback=SaveConfigToRunFolder,
                save_config_kwargs={"save_to_log_dir": False},
                seed_everything_default=0,
                load_from_checkpoint_support=False,
                auto_configure_optimizers=False,
                parser_kwargs=parser_kwargs | {name: raising for name in self.subcommands()},
                args=None if args is None else resolve_config_args(args),
                run=run,
            )

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """Add the default checkpointing unless the run turned it off (or is a fast_dev_run),
        a progress bar refreshed 50 times an epoch (:class:`EpochProgressBar`) unless the run
        has its own or none, :class:`Unprofiled` unless the run names a profiler,
        :class:`GCFreeze` to ``fit``, and fit the defaults to the data, so they cause no
        warnings: no validation loop or best checkpoint without a validation split, a logging
        interval no longer than an epoch, no learning-rate monitor without a logger
        (Lightning's refuses such a run).
        """
        config = self.config_init[self.subcommand] if self.subcommand else self.config_init
        trainer = {**config.get("trainer", {}), **kwargs}
        validates = getattr(self.datamodule, "validates", True)  # ImageDataModule's
        if not validates:
            kwargs["limit_val_batches"] = 0
        configured = _as_list(trainer.get("callbacks"))
        ours = [_EpochLoggingInterval()] if trainer.get("log_every_n_steps") is None else []
        if self.subcommand == "fit" and not any(isinstance(c, GCFreeze) for c in configured):
            ours.append(GCFreeze())
        if self.subcommand == "fit" and not self.quiet:
            ours.append(_RunHeader())
        bars = any(isinstance(callback, ProgressBar) for callback in configured)
        if trainer.get("enable_progress_bar") is not False and not bars:
            ours.append(EpochProgressBar())  # not Lightning's, refreshed after every batch
        if trainer.get("profiler") is None:
            kwargs["profiler"] = Unprofiled()  # Lightning's default, cheaper to call
        if trainer.get("enable_checkpointing") is not False and not trainer.get("fast_dev_run"):
            ours += _default_checkpoints(best=validates)
            if not any(isinstance(callback, Resumable) for callback in configured):
                ours.append(Resumable())
        try:
            built = super().instantiate_trainer(**{**kwargs, "callbacks": [*configured, *ours]})
        except (MisconfigurationException, ValueError) as error:  # Lightning's option checks
            raise ConfigError(f"trainer: {error}") from error
        if not built.loggers:
            built.callbacks = [c for c in built.callbacks if not isinstance(c, LearningRateMonitor)]
        if type(built.strategy.checkpoint_io) is TorchCheckpointIO:  # not a user's own plugin
            built.strategy.checkpoint_io = AtomicCheckpointIO()
        return built

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        self._parsers.append(parser)  # each subcommand's
        parser.set_defaults(
            {
                "model": {"class_path": "lightning_cv.ImageClassifier"},
                "data": {"class_path": "lightning_cv.data.DigitsDataModule"},
            }
        )
        for name in LINKED_FROM_DATA:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
        # accepted by every subcommand so one recipe serves fit, test and predict
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="fit only: evaluate the best checkpoint on the test split when training ends.",
        )

    def parse_arguments(self, parser, args) -> None:
        """Parse, then check a ``--ckpt_path`` file before Lightning reads its hyperparameters.

        A parser error becomes a :class:`ConfigError` of at most three lines.
        """
        try:
            with warnings.catch_warnings():
                # the console script passes sys.argv[1:] as args, which Lightning warns about
                warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
                super().parse_arguments(parser, args)
        except argparse.ArgumentError as error:
            raise ConfigError(self._short_error(error, args)) from None
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        seed = self.config[subcommand].get("seed_everything") if subcommand else None
        if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed < 2**32:
            raise ConfigError(f"seed_everything must be in [0, 2**32 - 1], got {seed}")
        model = self.config[subcommand].get("model") if subcommand else None
        self._given_model = given_model_options(model)
        if ckpt_path is not None and ckpt_path not in ("last", "best", "hpc"):
            named = model.get("class_path") if isinstance(model, Namespace) else None
            checkpoint = read_checkpoint(ckpt_path, model_class=named)
            hparams = checkpoint.get("hyper_parameters") or {}
            notice_checkpoint_values(self._given_model, hparams, ckpt_path)
            if subcommand == "fit":
                _check_epochs_left(checkpoint, self.config.fit.trainer.get("max_epochs"), ckpt_path)

    def _short_error(self, error: argparse.ArgumentError, args: list[str] | None) -> str:
        """jsonargparse's message in at most three lines, naming the subcommand's options."""
        subcommand = next((arg for arg in args or () if arg in self.subcommands()), None)
        prog = f"{self.parser.prog} {subcommand}" if subcommand else self.parser.prog
        return short_error(str(error), prog=prog, options=_option_names(self._parsers))

    def before_instantiate_classes(self) -> None:
        if self.subcommand == "fit":
            self._resume_last_run()
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False
        loggers = config.trainer.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if isinstance(logger, Namespace) and logger.get("class_path") in LIGHTNING_CSV_LOGGERS:
                logger.class_path = f"{RunCSVLogger.__module__}.{RunCSVLogger.__name__}"

    def _resume_last_run(self) -> None:
        checkpoint = resume_last_run(self.config.fit)
        if checkpoint is None:
            return
        try:  # the same checks as an explicit --ckpt_path, with what to do about a bad file
            saved = read_checkpoint(checkpoint)
        except ConfigError as error:
            raise ConfigError(
                f"{error}; --ckpt_path last picked it: delete it to resume from an earlier "
                "run, or pass another checkpoint with --ckpt_path"
            ) from None
        _check_epochs_left(saved, self.config.fit.trainer.get("max_epochs"), checkpoint)

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as error:  # jsonargparse's Union report keeps one branch's error
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(build_error(str(error))) from error
        check_linked_values(self._given_model, self.datamodule, LINKED_FROM_DATA)
        step_batch_size = self.model.hparams.get("step_batch_size")
        if step_batch_size is not None and self.subcommand in ("fit", None):  # None: tune, cv
            check_step_batches(step_batch_size, self.datamodule, self.trainer)

    def _hold_run_folder(self) -> None:
        """Hold the run folder until the command ends (``__init__`` lets it go): a second run
        into the same folder stops at once; a run that fails before writing anything leaves
        no empty run folder."""
        logger = self.trainer.logger
        unnamed = logger is not None and logger.version is None  # a new W&B run: a fresh id
        if self.trainer.fast_dev_run or not self.trainer.is_global_zero or unnamed:
            return  # no run folder, rank 0 holds it, or a new run has no folder yet
        self._held.enter_context(lock_run_folder(run_folder(self.trainer)))

    def before_fit(self) -> None:
        """Hold the run folder; keep the pictures that only a test draws out of training."""
        self._hold_run_folder()
        callbacks = self.trainer.callbacks
        self._test_pictures = [c for c in callbacks if type(c) in _TEST_PICTURES]
        self.trainer.callbacks = [c for c in callbacks if type(c) not in _TEST_PICTURES]

    def before_validate(self) -> None:
        self._hold_run_folder()

    def before_test(self) -> None:
        self._hold_run_folder()

    def after_fit(self) -> None:
        if self.config.fit.test_after_fit:
            checkpoint = self.trainer.checkpoint_callback
            # the path, not "best": with best and last checkpoints Lightning would warn
            best = checkpoint.best_model_path if checkpoint is not None else None
            self.trainer.callbacks += self._test_pictures
            self.trainer.test(
                self.model, datamodule=self.datamodule, ckpt_path=best or None, verbose=False
            )  # the test line below says it; the table is for `lightning-cv test`
        self._print_run_folder()

    def after_test(self) -> None:
        self._print_run_folder()

    def before_predict(self) -> None:
        """Write ``predictions.csv`` into the run folder (not for a fast_dev_run)."""
        self._hold_run_folder()
        if not self.trainer.fast_dev_run:
            names = self.model.class_names or [
                str(i) for i in range(self.model.hparams.num_classes)
            ]
            self.trainer.callbacks.append(_SplitPredictions(names))

    def after_predict(self) -> None:
        self._print_run_folder()

    def _print_run_folder(self) -> None:
        if self.quiet or not self.trainer.is_global_zero or self.trainer.fast_dev_run:
            return  # a run the command started itself, another rank, or no run folder
        folder = run_folder(self.trainer)
        top1 = self.trainer.callback_metrics.get("test/acc")
        if top1 is not None:
            print(f"test top-1 accuracy: {100 * float(top1):.2f}%")
        print(f"run folder: {folder}")
        files = (path.relative_to(folder) for path in folder.rglob("*") if path.is_file())
        for path in sorted(path for path in files if not path.name.startswith(".")):
            print(f"  {path}")
