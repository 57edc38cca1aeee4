"""The installed package: its public API, a light import, no wandb unless asked for."""

import subprocess
import sys

import pytest

import lightning_cv


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_import_loads_neither_lightning_nor_wandb():
    code = "import sys, lightning_cv; print(sorted({'lightning', 'wandb'} & set(sys.modules)))"
    assert _run(code) == "[]"


def test_the_whole_api_never_imports_wandb():
    code = (
        "import sys, lightning_cv\n"
        "for name in lightning_cv.__all__: getattr(lightning_cv, name)\n"
        "import lightning_cv.cli\n"
        "print('wandb' in sys.modules)"
    )
    assert _run(code) == "False"


def test_public_names():
    assert dir(lightning_cv) == sorted(lightning_cv.__all__)
    for name in lightning_cv.__all__:
        assert getattr(lightning_cv, name) is not None
    with pytest.raises(AttributeError, match="module 'lightning_cv' has no attribute 'Nope'"):
        lightning_cv.Nope  # noqa: B018


def test_typed_package():
    from importlib.resources import files

    assert files("lightning_cv").joinpath("py.typed").is_file()
