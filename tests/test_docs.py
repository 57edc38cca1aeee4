"""Every code block of the documentation runs, so a documented example cannot silently break.

How the blocks of a Markdown page run (one test per page, blocks in page order, inside a fresh
temporary working folder that holds a copy of ``recipes/`` and, when the offline data sets are
at ``../shared/datasets``, a ``data/`` folder of links to them):

* `````python`` blocks run in one namespace per page. Lightning's ``PL_TRAINER_LIMIT_*_BATCHES``
  environment defaults are set to 2, so a ``Trainer`` that does not state its own limits stops
  after 2 batches of each loop; everything else runs as written.
* `````bash`` blocks: each line is a command (``#`` comments, blank lines and ``\\``
  continuations are understood; ``NAME=value`` prefixes set environment variables).
  ``lightning-cv ...`` and ``python -m lightning_cv ...`` run in this process through
  ``lightning_cv.cli.main``, the function behind the console script (a subprocess would add
  seconds of imports to every line); a nonzero exit fails the test. Other ``python ...`` lines
  run as subprocesses. Any other command fails the test: shell lines that must not run
  (``pip install``, ``make``, ``git clone``) belong in `````console`` or `````text`` blocks.
* The commands that train or evaluate (:data:`RUN_SUBCOMMANDS`, unless they only print help
  or the configuration) get :data:`FAST_DEV_RUN` appended: one batch of each loop, nothing
  written. A ``fit`` whose run folder the next command reads (the next line of its block,
  or the next runnable block, mentions ``runs/`` or ``--ckpt_path last``) gets
  :data:`SHORT_RUN` instead: one epoch of 2 batches, with the run folder, checkpoints and
  pictures.
* Blocks of other languages (``console``, ``text``, ``yaml``, ...) are shown, not run.

Markers, an HTML comment on the line just before a block:

* ``<!-- no-test: reason -->``: a python or bash block that is shown but not run.
* ``<!-- pending: reason -->``: a placeholder for a feature that is not built yet; not run,
  reported as a skipped test so it is not forgotten.
* ``<!-- needs-data: NAME -->``: run only when ``../shared/datasets/NAME`` exists (the test
  links it as ``data/NAME``); skipped otherwise, with the rest of the page still running.
* ``<!-- expect-output -->`` on a text block: every non-empty line of it must appear in what the
  previous runnable block printed.
* ``<!-- expect-error -->`` on a text block: the previous runnable block must fail (a Python
  exception, shown as ``ExceptionName: message``, or a nonzero exit), and every line of the text
  block must appear in the error.

To test another Markdown file the same way (the README), add it to :data:`PAGES`.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lightning_cv.cli import main
from lightning_cv.hub.manifest import update_table
from lightning_cv.models import _registry
from lightning_cv.zoo import read_manifest, render_table

from .conftest import REPO, SHARED_DATASETS

DOCS = sorted((REPO / "docs").rglob("*.md"))
PAGES = DOCS  # the Markdown files whose blocks run (the README can join: REPO / "README.md")
RUN_SUBCOMMANDS = ("fit", "validate", "test", "predict", "cv")
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
FAST_DEV_RUN = ["--trainer.fast_dev_run", "true", *QUIET]
SHORT_RUN = [
    "--trainer.max_epochs", "1",
    "--trainer.limit_train_batches", "2",
    "--trainer.limit_val_batches", "2",
    "--trainer.limit_test_batches", "2",
    "--trainer.limit_predict_batches", "2",
    *QUIET,
]  # fmt: skip
PYTHON_TRAINER_LIMITS = {
    f"PL_TRAINER_LIMIT_{loop}_BATCHES": "2" for loop in ("TRAIN", "VAL", "TEST", "PREDICT")
}
RUN_LANGUAGES = ("python", "bash")
MARKERS = ("no-test", "pending", "needs-data", "expect-output", "expect-error")
FENCE = re.compile(r"^(\s*)```([\w-]*)[^`]*$")  # indented inside admonitions and tabs
MARKER = re.compile(r"^<!--\s*([\w-]+)\s*:?\s*(.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page."""

    page: Path
    line: int  # line of the opening fence, 1-based
    language: str
    code: str
    marker: str | None = None  # the marker comment just before the fence, if any
    reason: str = ""  # the marker's text

    @property
    def where(self) -> str:
        page = self.page.relative_to(REPO) if self.page.is_relative_to(REPO) else self.page.name
        return f"{page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES and self.marker not in ("no-test", "pending")


def collect_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, each with the marker comment written before it."""
    lines = page.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        indent = fence.group(1)
        end = next(
            (i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"), len(lines)
        )
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER.match(previous.strip())
        code = [line.removeprefix(indent) for line in lines[index + 1 : end]]
        blocks.append(
            Block(
                page=page,
                line=index + 1,
                language=fence.group(2),
                code="\n".join(code) + "\n",
                marker=marker.group(1) if marker else None,
                reason=marker.group(2) if marker else "",
            )
        )
        index = end + 1
    return blocks


def commands(code: str) -> list[str]:
    """The commands of a bash block: comments and blank lines dropped, ``\\`` lines joined."""
    joined = re.sub(r"[ \t]*\\\n\s*", " ", code)
    return [line for line in joined.splitlines() if shlex.split(line, comments=True)]


def _is_runnable_command(line: str) -> bool:
    words = [word for word in shlex.split(line, comments=True) if not _is_assignment(word)]
    return bool(words) and words[0] in ("lightning-cv", "python")


def _is_assignment(word: str) -> bool:
    return re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", word) is not None


def _only_prints(args: list[str]) -> bool:
    """``--help``, ``--model.help X`` and ``--print_config`` print and stop: nothing to shorten."""
    return any(arg in ("-h", "--help", "--print_config") or arg.endswith(".help") for arg in args)


class Outcome(Exception):
    """A block that failed; the message says what it printed or raised."""


def run_command(line: str, *, short: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one command line of a bash block, raising :class:`Outcome` when it fails.

    ``short``: its run folder is read afterwards, so a ``fit`` must write one.
    """
    words = shlex.split(line, comments=True)
    with monkeypatch.context() as patch:
        while _is_assignment(words[0]):
            name, value = words.pop(0).split("=", 1)
            patch.setenv(name, value)
        if words[0] == "python" and words[1:3] != ["-m", "lightning_cv"]:
            done = subprocess.run(
                [sys.executable, *words[1:]], capture_output=True, text=True, check=False
            )
            print(done.stdout, end="")
            print(done.stderr, end="", file=sys.stderr)
            if done.returncode:
                raise Outcome(f"exit code {done.returncode}: {done.stderr[-2000:]}")
            return
        args = words[3:] if words[0] == "python" else words[1:]
        if args and args[0] in RUN_SUBCOMMANDS and not _only_prints(args):
            args += SHORT_RUN if short and args[0] == "fit" else FAST_DEV_RUN
        try:
            main(args)
        except SystemExit as stop:
            if stop.code not in (0, None):
                raise Outcome(f"exit code {stop.code}") from None


def run_page(page: Path, folder: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the blocks of ``page`` in ``folder``; return the blocks skipped for missing data."""
    monkeypatch.chdir(folder)
    shutil.copytree(REPO / "recipes", folder / "recipes")
    if SHARED_DATASETS.is_dir():
        (folder / "data").mkdir()
        for dataset in SHARED_DATASETS.iterdir():
            if dataset.is_dir():
                (folder / "data" / dataset.name).symlink_to(dataset)
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(folder / "cache"))
    # a page may register its own architectures: they leave with the page
    monkeypatch.setattr(_registry, "_BUILDERS", dict(_registry._BUILDERS))

    blocks = collect_blocks(page)
    namespace: dict = {"__name__": "__docs__"}
    skipped: list[str] = []
    last: Block | None = None  # the last runnable block
    failure: str | None = None  # its error, if it failed
    printed = ""  # what it printed
    for index, block in enumerate(blocks):
        if block.marker in ("expect-output", "expect-error"):
            if last is None or last.where in skipped:
                continue  # checked by test_blocks_follow_the_rules, or skipped with its block
            expected = _lines(block.code)
            if block.marker == "expect-output":
                assert failure is None, f"{last.where} failed: {failure}"
                missing = [line for line in expected if line not in printed]
                assert not missing, f"{block.where}: not printed: {missing}\nprinted:\n{printed}"
            else:
                assert failure is not None, f"{last.where} did not fail, as {block.where} expects"
                missing = [line for line in expected if line not in failure]
                assert not missing, f"{block.where}: not in the error: {missing}\n{failure}"
                failure = None
            continue
        if not block.runs:
            continue
        assert failure is None, f"{last.where} failed: {failure}"
        last = block
        if block.marker == "needs-data" and not (SHARED_DATASETS / block.reason).is_dir():
            skipped.append(block.where)
            continue
        capsys.readouterr()
        try:
            if block.language == "python":
                # padded so that tracebacks give the page's line numbers
                code = "\n" * block.line + block.code
                with monkeypatch.context() as patch:
                    for name, value in PYTHON_TRAINER_LIMITS.items():
                        patch.setenv(name, value)
                    exec(compile(code, str(block.page), "exec"), namespace)
            else:
                following = next((later.code for later in blocks[index + 1 :] if later.runs), "")
                lines = commands(block.code)
                for number, line in enumerate(lines):
                    after = lines[number + 1] if number + 1 < len(lines) else following
                    reads_run = "runs/" in after or "--ckpt_path last" in after
                    run_command(line, short=reads_run, monkeypatch=monkeypatch)
        except Outcome as error:
            failure = str(error)
        except Exception as error:
            failure = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        captured = capsys.readouterr()
        printed = captured.out + captured.err
        if failure is not None:
            failure = f"{printed}\n{failure}"
    assert failure is None, f"{last.where} failed: {failure}"
    return skipped


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _all_blocks() -> list[Block]:
    return [block for page in PAGES for block in collect_blocks(page)]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_page_runs(page, tmp_path, capsys, monkeypatch):
    skipped = run_page(page, tmp_path, capsys, monkeypatch)
    if skipped:
        pytest.skip(f"ran without the blocks that need offline data: {skipped}")


def test_no_placeholder_is_forgotten():
    pending = [
        f"{block.where}: {block.reason}" for block in _all_blocks() if block.marker == "pending"
    ]
    if pending:
        pytest.skip(f"placeholders, not run: {pending}")


def test_blocks_follow_the_rules():
    problems = []
    for page in PAGES:
        blocks = collect_blocks(page)
        for index, block in enumerate(blocks):
            if block.marker is not None and block.marker not in MARKERS:
                problems.append(f"{block.where}: unknown marker {block.marker!r}")
            if not block.language:
                problems.append(f"{block.where}: a block without a language")
            if block.marker in ("expect-output", "expect-error"):
                before = blocks[index - 1] if index else None
                if before is None or not before.runs or block.language != "text":
                    problems.append(
                        f"{block.where}: {block.marker} must be a text block after a run"
                    )
            if block.marker in ("no-test", "pending", "needs-data") and not block.reason:
                problems.append(f"{block.where}: {block.marker} needs a reason")
            if block.language == "bash" and block.marker not in ("no-test", "pending"):
                problems += [
                    f"{block.where}: {line!r} is not lightning-cv or python; use a console block"
                    for line in commands(block.code)
                    if not _is_runnable_command(line)
                ]
    assert not problems, "\n".join(problems)


def test_the_rules_are_applied_to_a_page(tmp_path, capsys, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nvalue = 6 * 7\nprint(value)\n```\n\n<!-- expect-output -->\n```text\n42\n```\n"
        "\n```python\nraise ValueError(f'bad value {value}')\n```\n\n<!-- expect-error -->\n"
        "```text\nValueError: bad value 42\n```\n\n<!-- pending: not built -->\n"
        "```bash\nlightning-cv zoo list\n```\n\n```console\n$ make demo\n```\n"
        "\n```bash\nlightning-cv fit --model.backbone resnet  # a comment\n```\n\n"
        "<!-- expect-error -->\n```text\nlightning-cv: error: unknown model 'resnet'\n```\n"
    )
    blocks = collect_blocks(page)
    assert [(b.language, b.marker, b.runs) for b in blocks] == [
        ("python", None, True),
        ("text", "expect-output", False),
        ("python", None, True),
        ("text", "expect-error", False),
        ("bash", "pending", False),
        ("console", None, False),
        ("bash", None, True),
        ("text", "expect-error", False),
    ]
    folder = tmp_path / "work"
    folder.mkdir()
    assert run_page(page, folder, capsys, monkeypatch) == []

    page.write_text("```python\nprint('hello')\n```\n\n<!-- expect-output -->\n```text\nbye\n```\n")
    (tmp_path / "again").mkdir()
    with pytest.raises(AssertionError, match=re.escape("not printed: ['bye']")):
        run_page(page, tmp_path / "again", capsys, monkeypatch)


def test_bash_lines_are_split_into_commands():
    code = (
        "# fit a model\nlightning-cv fit \\\n  --model.lr 0.1\n"
        "\nWANDB_MODE=offline lightning-cv test\n"
    )
    assert commands(code) == [
        "lightning-cv fit --model.lr 0.1",
        "WANDB_MODE=offline lightning-cv test",
    ]
    assert _is_runnable_command(commands(code)[1])
    assert not _is_runnable_command("pip install lightning-cv")


def test_pictures_exist_and_stay_small():
    links = [
        (page, target)
        for page in PAGES
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", page.read_text())
    ]
    missing = [
        f"{page.name}: {target}" for page, target in links if not (page.parent / target).is_file()
    ]
    assert not missing, f"pictures that do not exist: {missing}"
    assets = [path for path in (REPO / "docs" / "assets").rglob("*") if path.is_file()]
    used = {(page.parent / target).resolve() for page, target in links}
    assert [path.name for path in assets if path.resolve() not in used] == []
    assert sum(path.stat().st_size for path in assets) < 2_000_000


def test_every_recipe_is_in_the_recipes_table():
    table = (REPO / "docs" / "cli.md").read_text()
    recipes = sorted((REPO / "recipes").glob("*.yaml"))
    missing = [path.name for path in recipes if f"| `{path.stem}` |" not in table]
    assert not missing, f"add these recipes to the table in docs/cli.md: {missing}"


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())

    def pages(entry) -> list[str]:
        if isinstance(entry, str):
            return [entry]
        if isinstance(entry, list):
            return [page for item in entry for page in pages(item)]
        return [page for value in entry.values() for page in pages(value)]

    listed = set(pages(config["nav"]))
    on_disk = {str(page.relative_to(REPO / "docs")) for page in DOCS}
    assert on_disk - listed == set(), "pages missing from the nav of mkdocs.yml"
    assert listed - on_disk == set(), "nav entries without a page"


def test_the_zoo_table_matches_the_manifest():
    page = REPO / "docs" / "zoo.md"
    stale = update_table(page, render_table(read_manifest()), write=False)
    assert not stale, "docs/zoo.md is out of date: run `lightning-cv zoo table`"
