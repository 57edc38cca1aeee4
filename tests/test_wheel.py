"""A new user's first day: the built wheel, installed outside the checkout, used from an empty
folder with only what README and docs/ say.

The wheel goes into a fresh virtual environment that reuses this environment's installed
dependencies (a ``.pth`` line, no network); this checkout is never on its path.
"""

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import REPO

README_SNIPPET = re.compile(r"## Use it as a library.*?```python\n(.*?)```", re.DOTALL)


def _run(command: list, cwd: Path, env: dict) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(the new environment's bin folder, an environment for its commands)."""
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    _run([*build, "--quiet", "-w", wheels, REPO], cwd=root, env=os.environ.copy())
    [wheel] = wheels.glob("lightning_cv_zoo-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=root, env=os.environ.copy())
    bin_folder = venv / "bin"
    site = Path(_run([bin_folder / "python", "-c", "import site; print(site.getsitepackages()[0])"],
                     cwd=root, env=os.environ.copy()).strip())  # fmt: skip
    (site / "reused_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [bin_folder / "python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    _run([*pip, wheel], cwd=root, env=os.environ.copy())
    env = {
        **os.environ,
        "PATH": f"{bin_folder}{os.pathsep}{os.environ['PATH']}",
        "LIGHTNING_CV_HOME": str(root / "cache"),
        "PYTHONPATH": "",
    }
    return bin_folder, env


@pytest.fixture
def empty(tmp_path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def test_the_package_comes_from_the_wheel_not_the_checkout(installed, empty):
    bin_folder, env = installed
    code = "import lightning_cv; print(lightning_cv.__file__)"
    location = Path(_run([bin_folder / "python", "-c", code], cwd=empty, env=env).strip())
    assert REPO not in location.parents and "site-packages" in location.parts


def test_the_readme_snippet_runs(installed, empty):
    bin_folder, env = installed
    snippet = README_SNIPPET.search((REPO / "README.md").read_text())[1]
    _run([bin_folder / "python", "-c", snippet], cwd=empty, env=env)


def test_a_first_day_from_an_empty_folder(installed, empty):
    bin_folder, env = installed
    command = bin_folder / "lightning-cv"
    recipes = _run([command, "recipes"], cwd=empty, env=env)
    assert recipes.startswith("cifar10_alexnet") and "\nquickstart " in recipes
    assert "lenet5.mnist" in _run([command, "zoo", "list"], cwd=empty, env=env)

    quick = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    out = _run([command, "fit", "--config", "quickstart", "--trainer.max_epochs", "1", *quick],
               cwd=empty, env=env)  # fmt: skip
    assert "test top-1 accuracy:" in out  # the quickstart recipe tests after fit
    [checkpoint] = (empty / "runs" / "quickstart" / "version_0" / "checkpoints").glob("last.ckpt")

    images = empty / "digits" / "3"
    images.mkdir(parents=True)
    for number in range(2):
        pixels = np.zeros((8, 8), dtype=np.uint8)
        pixels[1:7, 2 + number : 5 + number] = 255
        Image.fromarray(pixels).save(images / f"{number}.png")
    for model in (checkpoint, "lenet5.mnist"):
        output = empty / f"predictions-{Path(str(model)).stem}.csv"
        predict = [command, "zoo", "predict", model, empty / "digits", "--top_k", "2"]
        _run([*predict, "--output", output], cwd=empty, env=env)
        rows = output.read_text().splitlines()
        assert len(rows) == 3 and rows[0].startswith("path,")
        assert rows[1].startswith(str(images / "0.png"))
    # the folder's class sub-folder names the true class when it is one of the model's classes
    assert (empty / "predictions-last.csv").read_text().startswith("path,label,class_1,")

    export = [command, "zoo", "export", checkpoint, "--format", "onnx", "--output", "m.onnx"]
    _run(export, cwd=empty, env=env)
    assert (empty / "m.onnx").stat().st_size > 10_000
