"""Lightning's CSVLogger, as every ``lightning-cv`` run uses it: a resumed run appends to its
``metrics.csv`` (Lightning's writer deletes it), and a failed write names its file.

Lightning has no public hook to keep the file, so this module, and nothing else in
lightning-cv, touches Lightning's private names: it overrides the writer's
``_check_log_dir_exists`` and reads ``_fs`` and ``_experiment``. tests/test_resume.py
(``-m upstream``) pins them to the installed Lightning.
"""

from __future__ import annotations

import csv
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

__all__ = ["LIGHTNING_CSV_LOGGERS", "RunCSVLogger"]

# the class paths a config may name Lightning's CSVLogger by; the CLI runs RunCSVLogger instead
LIGHTNING_CSV_LOGGERS = (
    "lightning.pytorch.loggers.CSVLogger",
    "lightning.pytorch.loggers.csv_logs.CSVLogger",
)


class _RunWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Keep a metrics.csv that is there (a resumed run's) and append to it."""
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = sorted(csv.DictReader(file).fieldnames or [])

    def save(self) -> None:
        try:
            super().save()
        except OSError as error:  # fsspec's errors (a full disk) name no file
            raise _named(error, self.metrics_file_path) from error

    def log_hparams(self, params: dict[str, Any]) -> None:
        try:
            super().log_hparams(params)
        except OSError as error:
            raise _named(error, f"{self.log_dir}/{self.NAME_HPARAMS_FILE}") from error


def _named(error: OSError, path: str) -> OSError:
    return error if error.filename else OSError(error.errno, error.strerror or str(error), path)


class RunCSVLogger(CSVLogger):
    """``CSVLogger`` whose rows of a resumed run follow the earlier ones in ``metrics.csv``."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _RunWriter(log_dir=self.log_dir)
        return self._experiment
