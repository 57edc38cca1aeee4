"""Callbacks: pictures and tables of a run in its run folder (and W&B), test-time
augmentation, MixUp and CutMix, weight averaging, fine-tuning and speed options."""

from lightning_cv.callbacks.class_report import ClassReport, class_report, plot_class_report
from lightning_cv.callbacks.confusion_matrix import ConfusionMatrixPlot, plot_confusion_matrix
from lightning_cv.callbacks.curves import (
    LearningRatePlot,
    TrainingCurves,
    plot_learning_rate,
    plot_training_curves,
)
from lightning_cv.callbacks.finetuning import HeadFirstFinetuning
from lightning_cv.callbacks.gc_freeze import GCFreeze
from lightning_cv.callbacks.interrupt import Resumable
from lightning_cv.callbacks.misclassified import (
    MisclassifiedGrid,
    plot_misclassified,
    select_misclassified,
)
from lightning_cv.callbacks.mixing import BatchMixing, CutMix, MixUp, mix_batch
from lightning_cv.callbacks.performance import ChannelsLast, CompileBackbone
from lightning_cv.callbacks.predictions import PredictionWriter
from lightning_cv.callbacks.templates import LinearTemplates, linear_templates, plot_templates
from lightning_cv.callbacks.tta import TestTimeAugmentation, tta_views
from lightning_cv.callbacks.weight_averaging import EMAWeightAveraging
from lightning_cv.runs import run_folder

__all__ = [
    "BatchMixing",
    "ChannelsLast",
    "ClassReport",
    "CompileBackbone",
    "ConfusionMatrixPlot",
    "CutMix",
    "EMAWeightAveraging",
    "GCFreeze",
    "HeadFirstFinetuning",
    "LearningRatePlot",
    "LinearTemplates",
    "MisclassifiedGrid",
    "MixUp",
    "PredictionWriter",
    "Resumable",
    "TestTimeAugmentation",
    "TrainingCurves",
    "class_report",
    "linear_templates",
    "mix_batch",
    "plot_class_report",
    "plot_confusion_matrix",
    "plot_learning_rate",
    "plot_misclassified",
    "plot_templates",
    "plot_training_curves",
    "run_folder",
    "select_misclassified",
    "tta_views",
]
