"""KNNClassifier: votes equal scikit-learn's k-NN, through the Trainer, CLI and checkpoints."""

import re

import lightning.pytorch as L
import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from lightning_cv import ConfigError, DigitsDataModule, KNNClassifier
from lightning_cv.knn import knn_votes
from tests.conftest import REPO

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


def test_fitting_writes_a_last_checkpoint_that_keeps_the_memory(tmp_path):
    data = DigitsDataModule(image_size=8, batch_size=256, train_transform="eval")
    model = KNNClassifier(k=1, num_classes=10, in_channels=1, image_size=8)
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(model, datamodule=data)
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"  # written by the model's SaveMemory
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


def test_cli_fit_saves_the_memory_and_test_reuses_it(in_tmp, capsys):
    from lightning_cv.cli import main

    recipe = str(REPO / "recipes" / "digits_knn.yaml")
    main(["fit", "--config", recipe, "--trainer.enable_progress_bar", "false"])
    fitted = capsys.readouterr().out
    checkpoint = in_tmp / "runs" / "digits_knn" / "version_0" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    # no recipe: the checkpoint names its class (the CLI's default model is ImageClassifier)
    main(["test", "--ckpt_path", str(checkpoint), "--data.image_size", "8"])
    tested = capsys.readouterr().out
    accuracy = re.compile(r"test top-1 accuracy: ([0-9.]+)%")
    assert accuracy.search(tested).group(1) == accuracy.search(fitted).group(1) == "98.61"
