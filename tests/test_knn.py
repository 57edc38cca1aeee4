"""KNNClassifier: votes equal scikit-learn's k-NN, through the Trainer, CLI and checkpoints."""

import re

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from lightning_cv import ConfigError, DigitsDataModule, KNNClassifier
from lightning_cv.knn import knn_votes

METRICS = {"l1": "manhattan", "l2": "euclidean"}


@pytest.mark.parametrize("distance", ["l1", "l2"])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_votes_match_scikit_learn(distance, k):
    rng = np.random.default_rng(k)
    memory, queries = rng.normal(size=(300, 12)), rng.normal(size=(40, 12))
    labels = rng.integers(0, 4, 300)
    votes = knn_votes(
        torch.tensor(queries),
        torch.tensor(memory),
        torch.tensor(labels),
        k=k,
        p={"l1": 1.0, "l2": 2.0}[distance],
        num_classes=4,
        chunk_size=64,  # several chunks: the running top-k must be exact
    )
    oracle = KNeighborsClassifier(n_neighbors=k, metric=METRICS[distance]).fit(memory, labels)
    np.testing.assert_allclose(votes.numpy(), oracle.predict_proba(queries))
    np.testing.assert_array_equal(votes.argmax(1).numpy(), oracle.predict(queries))


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_trainer_accuracy_equals_scikit_learn_on_digits(distance, tmp_path):
    data = DigitsDataModule(image_size=8, batch_size=256, train_transform="eval")
    model = KNNClassifier(k=3, distance=distance, num_classes=10, in_channels=1, image_size=8)
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(model, datamodule=data)
    accuracy = trainer.test(model, datamodule=data, verbose=False)[0]["test/acc"]

    def arrays(dataset):
        pairs = [dataset[i] for i in range(len(dataset))]
        return torch.stack([x for x, _ in pairs]).flatten(1).numpy(), [y for _, y in pairs]

    train_x, train_y = arrays(data.train_set)
    test_x, test_y = arrays(data.test_set)
    oracle = KNeighborsClassifier(n_neighbors=3, metric=METRICS[distance]).fit(train_x, train_y)
    assert accuracy == pytest.approx(oracle.score(test_x, test_y), abs=1e-6)
    assert len(model.memory) == len(data.train_set) == 1293


def test_checkpoint_keeps_the_memory(tmp_path):
    data = DigitsDataModule(image_size=8, batch_size=256, train_transform="eval")
    model = KNNClassifier(k=1, num_classes=10, in_channels=1, image_size=8)
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(model, datamodule=data)
    checkpoint = tmp_path / "knn.ckpt"
    trainer.save_checkpoint(checkpoint)
    loaded = KNNClassifier.load_from_checkpoint(checkpoint, weights_only=True)
    assert loaded.memory.shape == (1293, 64) and loaded.hparams.k == 1
    images = torch.randn(5, 1, 8, 8)
    probs = loaded.predict_step(images, 0)["probs"]
    torch.testing.assert_close(probs.sum(1), torch.ones(5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be >= 1, got 0"),
        ({"distance": "cosine"}, "unknown distance 'cosine'; expected one of ['l1', 'l2']"),
    ],
)
def test_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        KNNClassifier(**kwargs)


def test_predicting_before_fitting_says_so():
    with pytest.raises(RuntimeError, match="no memory yet: fit it on a training set first"):
        KNNClassifier()(torch.zeros(1, 1, 28, 28))
