"""PredictionWriter: Trainer.predict's probabilities as one CSV of top-k classes per image."""

import re

import lightning.pytorch as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_cv import ConfigError
from lightning_cv.callbacks.predictions import PredictionWriter, prediction_rows

PROBS = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.0, 0.25, 0.75]])
CLASSES = ["cat", "dog", "fox"]


class FixedScores(L.LightningModule):
    """Predicts the rows of PROBS its batch indexes; with ``labelled``, returns labels too."""

    def __init__(self, labelled: bool = False) -> None:
        super().__init__()
        self.labelled = labelled
        self.dummy = torch.nn.Linear(1, 1)

    def predict_step(self, batch, batch_idx):
        (index,) = batch
        out = {"preds": PROBS[index].argmax(1), "probs": PROBS[index]}
        return {**out, "labels": [2] * len(index)} if self.labelled else out


def _predict(writer: PredictionWriter, labelled: bool = False) -> None:
    trainer = L.Trainer(
        accelerator="cpu", logger=False, callbacks=[writer], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False,
    )  # fmt: skip
    loader = DataLoader(TensorDataset(torch.arange(3)), batch_size=2)
    trainer.predict(FixedScores(labelled), loader, return_predictions=False)


def test_the_csv_holds_paths_true_classes_and_the_top_k_in_order(tmp_path):
    output = tmp_path / "out" / "predictions.csv"
    writer = PredictionWriter(output, CLASSES, top_k=2, paths=["a.png", "b.png", "c.png"],
                              labels=[1, 0, 0])  # fmt: skip
    _predict(writer)
    assert output.read_text().splitlines() == [
        "path,label,class_1,prob_1,class_2,prob_2",
        "a.png,dog,dog,0.700000,fox,0.200000",
        "b.png,cat,cat,0.500000,fox,0.300000",
        "c.png,cat,fox,0.750000,dog,0.250000",
    ]
    assert writer.rows[2] == {
        "path": "c.png", "label": "cat", "class_1": "fox", "prob_1": "0.750000",
        "class_2": "dog", "prob_2": "0.250000",
    }  # fmt: skip


def test_labels_from_predict_step_and_top_k_capped_at_the_class_count(tmp_path):
    output = tmp_path / "predictions.csv"
    _predict(PredictionWriter(output, CLASSES, top_k=9), labelled=True)
    assert output.read_text().splitlines() == [
        "label,class_1,prob_1,class_2,prob_2,class_3,prob_3",
        "fox,dog,0.700000,fox,0.200000,cat,0.100000",
        "fox,cat,0.500000,fox,0.300000,dog,0.200000",
        "fox,fox,0.750000,dog,0.250000,cat,0.000000",
    ]


def test_prediction_rows_and_bad_arguments():
    rows = prediction_rows(PROBS[:1], CLASSES, top_k=1, paths=["x.png"], labels=[2])
    assert rows == [{"path": "x.png", "label": "fox", "class_1": "dog", "prob_1": "0.700000"}]
    with pytest.raises(ConfigError, match=re.escape("top_k must be >= 1, got 0")):
        PredictionWriter("p.csv", CLASSES, top_k=0)
    with pytest.raises(ConfigError, match=re.escape("2 labels for 3 paths")):
        PredictionWriter("p.csv", CLASSES, paths=["a", "b", "c"], labels=[0, 1])
