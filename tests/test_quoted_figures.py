"""The figures the README and the getting-started page quote come from the runs they show."""

import re

from lightning_cv.cli import main

from .conftest import REPO


def quoted(page: str, after: str) -> list[str]:
    """The lines of the first ``text`` block after the line holding ``after`` on ``page``."""
    text = (REPO / page).read_text()
    block = re.search(re.escape(after) + r".*?```text\n(.*?)```", text, flags=re.DOTALL)
    return [line for line in block[1].splitlines() if line.strip()]


def test_the_readme_snippet_prints_the_figure_it_quotes(in_tmp, capsys):
    code = re.search(r"```python\n(.*?trainer\.fit\(.*?)```", (REPO / "README.md").read_text(),
                     flags=re.DOTALL)[1]  # fmt: skip
    exec(code, {})
    printed = capsys.readouterr().out.splitlines()
    assert quoted("README.md", "trainer.fit(model, datamodule=data)") == [
        line for line in printed if line.startswith("test top-1")
    ]


def test_getting_started_quotes_a_real_quickstart_run(in_tmp, capsys):
    main(["fit", "--config", "quickstart", "--trainer.enable_progress_bar", "false"])
    printed = capsys.readouterr().out.splitlines()
    lines = quoted("docs/getting-started.md", "lightning-cv fit --config quickstart")
    assert lines[0] == printed[0]  # the run's header
    assert printed[printed.index(lines[1]) :] == lines[1:]  # test accuracy, run folder, files
