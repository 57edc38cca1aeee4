"""`lightning-cv lr-find`: Lightning's range test on a recipe, a plot and a ready override."""

import re

import pytest

from lightning_cv.cli import main
from tests.conftest import REPO


def test_lr_find_writes_the_plot_and_prints_the_override(in_tmp, capsys):
    main(["lr-find", "--config", str(REPO / "recipes" / "digits_linear.yaml"),
          "--data.image_size", "8", "--num_training", "30",
          "--trainer.enable_progress_bar", "false"])  # fmt: skip
    out = capsys.readouterr().out
    plot = in_tmp / "runs/digits_linear/lr_find.png"
    assert f"loss against learning rate: {plot.relative_to(in_tmp)}" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    override = re.search(r"--model\.lr (\S+)$", out.strip())
    assert override is not None and 1e-6 <= float(override[1]) <= 1.0
    assert [path.name for path in (in_tmp / "runs/digits_linear").iterdir()] == ["lr_find.png"]


def test_lr_find_takes_one_step_a_batch_of_a_step_batch_size(in_tmp, capsys):
    main(["lr-find", "--config", str(REPO / "recipes" / "digits_linear.yaml"),
          "--data.image_size", "8", "--num_training", "30", "--data.batch_size", "128",
          "--model.step_batch_size", "32", "--trainer.enable_progress_bar", "false"])  # fmt: skip
    out = capsys.readouterr().out
    override = re.search(r"--model\.lr (\S+)$", out.strip())
    assert override is not None and 1e-6 <= float(override[1]) <= 1.0


def test_lr_find_refuses_an_empty_range(in_tmp, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["lr-find", "--min_lr", "0.1", "--max_lr", "0.01"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "lightning-cv: error: --min_lr and --max_lr must be 0 < min_lr < max_lr, got 0.1 and 0.01"
    )
