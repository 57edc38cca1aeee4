"""The console script's entry: top-level help, recipes by name, and short parser errors."""

import subprocess
import sys
from importlib.resources import files

import pytest

from lightning_cv.cli import main
from lightning_cv.cli._parse_errors import short_error
from lightning_cv.cli.entry import TRAINER_COMMANDS
from lightning_cv.cli.recipes import describe_recipe, list_recipes, recipe_path, resolve_config_args

from .conftest import REPO

QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def test_help_lists_every_command_without_importing_lightning():
    code = (
        "import sys; from lightning_cv.cli import main; main(['--help']); "
        "print('lightning' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in ("fit", "validate", "test", "predict", "recipes", "preview", "cv", "zoo"):
        assert f"\n  {command} " in result.stdout
    assert result.stdout.splitlines()[-1] == "False"


@pytest.mark.upstream
def test_the_trainer_commands_are_lightning_cli_subcommands():
    # the entry dispatches them (and --help lists them) without importing Lightning
    from lightning import __version__
    from lightning.pytorch.cli import LightningCLI

    subcommands = tuple(LightningCLI.subcommands())
    message = f"Lightning {__version__}'s LightningCLI.subcommands() are {subcommands}"
    assert subcommands == TRAINER_COMMANDS, message


def test_an_unknown_command_suggests_the_close_one(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fitt"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "lightning-cv: error: unknown command 'fitt'; did you mean 'fit'? expected one of "
        "['fit', 'validate', 'test', 'predict', 'recipes', 'preview', 'cv', 'tune', 'lr-find', "
        "'zoo', 'serve'] "
        "(lightning-cv --help)\n"
    )


def test_the_recipes_are_the_repositorys_folder_installed_as_a_package():
    assert list_recipes() == sorted(path.stem for path in (REPO / "recipes").glob("*.yaml"))
    installed = files("lightning_cv.recipes") / "quickstart.yaml"
    assert installed.read_text() == (REPO / "recipes" / "quickstart.yaml").read_text()


def test_recipes_lists_names_with_their_first_sentence(capsys):
    main(["recipes"])
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[: len(list_recipes())]}
    assert sorted(rows) == list_recipes()
    assert rows["quickstart"].endswith(
        "LeNet-5 on the embedded handwritten digits: what `make demo` runs (about 25 s of one "
        "CPU core)."
    )
    assert describe_recipe("mnist_lenet5").startswith(
        "Zoo entry lenet5.mnist: LeNet-5 (LeCun et al. 1998"
    )


def test_recipes_show_and_path(capsys):
    main(["recipes", "show", "quickstart"])
    assert capsys.readouterr().out == (REPO / "recipes" / "quickstart.yaml").read_text()
    main(["recipes", "path", "quickstart.yaml"])
    assert capsys.readouterr().out.strip() == str(recipe_path("quickstart"))


def test_a_misspelt_recipe_name_suggests_the_close_one(in_tmp, capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", "quikstart"])
    assert capsys.readouterr().err == (
        f"lightning-cv: error: no config file '{in_tmp}/quikstart' and no bundled recipe "
        "'quikstart'; did you mean 'quickstart'? `lightning-cv recipes` lists the recipes\n"
    )


def test_a_bare_recipe_name_runs_from_any_folder(in_tmp):
    main(["fit", "--config", "quickstart", "--trainer.fast_dev_run", "true", *QUICK])
    assert list(in_tmp.iterdir()) == []  # a fast_dev_run writes nothing


def test_only_bare_config_names_are_looked_up(in_tmp):
    (in_tmp / "quickstart").write_text("seed_everything: 1\n")  # a file of that name wins
    args = ["fit", "-c", "quickstart", "--config=digits_mlp", "--config", "./x.yaml"]
    assert resolve_config_args(args) == [
        "fit", "-c", "quickstart", f"--config={recipe_path('digits_mlp')}", "--config", "./x.yaml"
    ]  # fmt: skip


# (arguments, the whole of stderr after "lightning-cv: error: ")
PARSER_ERRORS = [
    (["--model.lrr", "0.1"],
     "--model.lrr: ImageClassifier has no option 'lrr'; did you mean 'lr'?"),
    (["--data.rot", "x"], "--data.rot: DigitsDataModule has no option 'rot'; did you mean 'root'?"),
    (["--model.lr", "abc"], "--model.lr: expected float, got 'abc'"),
    (["--model.backbone_kwargs", "{dropout:0.5"],
     "--model.backbone_kwargs: expected dict, got '{dropout:0.5'"),
    (["--model", "{dropout:0.5}"], "--model: '{dropout:0.5}' is neither a file nor a class name"),
    (["--data.split_strategy", "nope"],
     "--data.split_strategy: expected one of ['random', 'stratified', 'group'], got 'nope'"),
    (["--trainer.max_epochz", "3"],
     "unknown option --trainer.max_epochz; did you mean '--trainer.max_epochs'?"),
    (["--trainer.nonsense", "1"], "unknown option --trainer.nonsense; no close match"),
]  # fmt: skip


@pytest.mark.parametrize("args, message", PARSER_ERRORS, ids=lambda value: str(value)[:30])
def test_a_parser_error_is_at_most_three_lines(args, message, in_tmp, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--trainer.fast_dev_run", "true"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"lightning-cv: error: {message}\nsee every option: lightning-cv fit --help\n"


def test_subcommands_name_themselves_in_the_hint(in_tmp, capsys):
    for command in (["test"], ["cv", "--grid", "{model.lr: [1]}"], ["preview"]):
        with pytest.raises(SystemExit):
            main([*command, "--model.lrr", "1"])
        prog = " ".join(["lightning-cv", command[0]])
        assert capsys.readouterr().err.endswith(f"see every option: {prog} --help\n")


def test_a_config_file_that_does_not_parse_is_named_in_one_line():
    message = (
        "Problems parsing config: while parsing a flow sequence\n"
        '  in "<unicode string>", line 1, column 10\n'
        "did not find expected ',' or ']'\n"
    )
    assert short_error(message, prog="lightning-cv fit") == (
        'Problems parsing config: while parsing a flow sequence in "<unicode string>", line 1, '
        "column 10 did not find expected ',' or ']'\nsee every option: lightning-cv fit --help"
    )


def test_zoo_list_and_recipes_start_without_lightning():
    code = (
        "import sys; from lightning_cv.cli import main; main(['zoo', 'list']); "
        "main(['recipes']); print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'lightning_fabric', 'pytorch_lightning')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "lenet5.mnist" in result.stdout
    assert result.stdout.splitlines()[-1] == "[]"  # neither lightning nor lightning_fabric
