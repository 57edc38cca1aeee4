"""Callbacks that turn a run into pictures and tables in its run folder."""

from lightning_cv.callbacks._run_folder import run_folder
from lightning_cv.callbacks.confusion_matrix import ConfusionMatrixPlot, plot_confusion_matrix

__all__ = ["ConfusionMatrixPlot", "plot_confusion_matrix", "run_folder"]
