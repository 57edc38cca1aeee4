"""Every Python block of the README runs as written."""

import re
import subprocess
import sys

from lightning_cv import ImageClassifier
from lightning_cv.models import list_models

from .conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)


def block(containing: str) -> str:
    """The README's one Python block that contains ``containing``."""
    [found] = [code for code in BLOCKS if containing in code]
    return found


def test_library_snippet_trains_and_tests(in_tmp, capsys):
    exec(block("trainer.fit(model, datamodule=data)"), {})
    accuracy = float(re.search(r"test top-1: ([\d.]+)", capsys.readouterr().out).group(1))
    assert accuracy > 0.8


def test_models_snippet(capsys):
    namespace = {}
    exec(block("create_model("), namespace)
    assert str(list_models()) in capsys.readouterr().out
    assert namespace["net"].head.in_features == 300


def test_checkpoint_snippet_after_a_quickstart_run(in_tmp):
    recipe = str(REPO / "recipes" / "quickstart.yaml")
    fit = [sys.executable, "-m", "lightning_cv", "fit", "--config", recipe]
    quick = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]
    subprocess.run([*fit, *quick, "--trainer.enable_progress_bar", "false"], check=True)
    namespace = {"ImageClassifier": ImageClassifier}
    exec(block("load_from_checkpoint"), namespace)
    assert namespace["model"].hparams.backbone == "lenet5"
