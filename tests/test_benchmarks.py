"""Benchmark scripts: argument parsing, pure helpers, the RESULTS.md writer, a tiny run.

The real-data runs are ``make bench``'s job; here one script runs on fake MNIST files.
"""

import csv
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from torch import nn

from lightning_cv.data import DigitsDataModule, MNISTDataModule
from lightning_cv.data.batches import to_image_tensor
from lightning_cv.errors import ConfigError
from lightning_cv.models import list_models
from tests.conftest import REPO
from tests.fakes import write_idx_dataset

BENCHMARKS = REPO / "benchmarks"


def _import(name: str):
    """A benchmark script as a module (they import each other by their bare names)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        with mock.patch.dict(os.environ):  # time_to_accuracy sets OMP_WAIT_POLICY for its runs
            return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


harness = _import("_harness")
run_all = _import("run_all")
time_to_accuracy = _import("time_to_accuracy")
scaling = _import("scaling")
inference = _import("inference")
startup = _import("startup")
SCRIPTS = {
    "time_to_accuracy": time_to_accuracy,
    "scaling": scaling,
    "inference": inference,
    "startup": startup,
}


# the shared harness


def test_interleaved_runs_every_side_once_per_repeat_and_rotates_who_goes_first():
    assert list(harness.interleaved(["plain", "ours"], 3)) == [
        (0, "plain"), (0, "ours"), (1, "ours"), (1, "plain"), (2, "plain"), (2, "ours"),
    ]  # fmt: skip
    order = [name for _, name in harness.interleaved(["a", "b", "c"], 3)]
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_print_result_prints_one_json_line_that_run_all_reads(capsys):
    result = harness.print_result("overhead", {"ratio": 0.97})
    assert result == {"benchmark": "overhead", "ratio": 0.97}
    assert run_all.last_json(capsys.readouterr().out) == result


def test_the_quiet_trainer_logs_checkpoints_and_validates_nothing():
    trainer = harness.quiet_trainer(3)
    assert (trainer.max_epochs, trainer.logger, trainer.checkpoint_callback) == (3, None, None)
    assert (trainer.limit_val_batches, trainer.num_sanity_val_steps) == (0, 0)
    assert trainer.progress_bar_callback is None


# run_all: targets, JSON lines, the results file


def test_every_benchmark_has_its_script_a_unique_name_and_a_quick_command():
    names = [benchmark.name for benchmark in run_all.BENCHMARKS]
    assert names == [
        "overhead", "time_to_accuracy", "dataloading", "inference", "scaling", "startup",
        "precision", "imbalance", "tta", "finetune",
    ]  # fmt: skip
    for benchmark in run_all.BENCHMARKS:
        assert benchmark.script == BENCHMARKS / f"{benchmark.name}.py"
        assert benchmark.script.is_file()
        command = benchmark.command(quick=True)
        assert command[:2] == [sys.executable, str(benchmark.script)]
        assert benchmark.command(quick=False) == command[:2]  # full runs use the defaults


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_quick_arguments_parse_in_each_script(name):
    benchmark = next(b for b in run_all.BENCHMARKS if b.name == name)
    args = SCRIPTS[name].parse_args(benchmark.command(quick=True)[2:])
    assert args.repeats == 1


def test_a_target_accuracy_outside_zero_to_one_is_refused(capsys):
    with pytest.raises(SystemExit):
        time_to_accuracy.parse_args(["--target", "99"])
    assert "--target must be a test accuracy in [0, 1], got 99.0" in capsys.readouterr().err


def test_check_target_passes_misses_and_misses_a_missing_figure():
    at_least = run_all.Target("ratio", ">=", 0.95, "")
    at_most = run_all.Target("lightning_cv_seconds", "<=", 20.0, "")
    assert run_all.check_target(at_least, {"ratio": 0.95}) == "pass"
    assert run_all.check_target(at_least, {"ratio": 0.949}) == "miss"
    assert run_all.check_target(at_most, {"lightning_cv_seconds": 19.9}) == "pass"
    assert run_all.check_target(at_most, {"lightning_cv_seconds": None}) == "miss"
    assert run_all.check_target(at_least, {}) == "miss"
    assert run_all.check_target(at_least, None) == "miss"
    assert str(at_most) == "lightning_cv_seconds <= 20"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('figures\n{"benchmark": "x", "ratio": 1.02}\n\n', {"benchmark": "x", "ratio": 1.02}),
        ('{"ratio": 1}\nTraceback ...\n', None),
        ("[1, 2]\n", None),
        ("", None),
    ],
)
def test_last_json_reads_only_an_object_on_the_last_line(output, expected):
    assert run_all.last_json(output) == expected


def _outcome(name: str, result: dict | None, **kwargs) -> "run_all.Outcome":
    benchmark = next(b for b in run_all.BENCHMARKS if b.name == name)
    command = f".venv/bin/python benchmarks/{name}.py"
    return run_all.Outcome(benchmark, command, result, f"{name} printed this", **kwargs)


def test_render_results_states_machine_ratios_targets_verdicts_and_commands():
    outcomes = [
        _outcome(
            "overhead",
            {"benchmark": "overhead", "ratio": 0.97, "ours_vs_lightning": 0.97},
            load_before=6.5,
        ),
        _outcome(
            "time_to_accuracy",
            {"ratio": 0.8, "throughput_ratio": 0.9, "plain_seconds": 17.0},
        ),
        _outcome("dataloading", None, error="exit code 1, failed; stderr ends with:\nBoom"),
        _outcome(
            "inference",
            {"ratio": 2.5, "models": ["lenet5"], "rows": [{"model": "lenet5", "eager": 10.0}]},
        ),
    ]
    machine = {"CPU": "Test CPU", "GPU": "no GPU"}
    text = run_all.render_results(outcomes, machine, "2025-01-02 03:04 UTC")
    lines = text.splitlines()
    assert lines[0] == run_all.BEGIN and lines[-1] == run_all.END
    assert "Measured on 2025-01-02 03:04 UTC by `python benchmarks/run_all.py`" in text
    assert "| CPU | Test CPU |" in lines and "| GPU | no GPU |" in lines
    assert (
        "| Trainer overhead | 0.97 | ratio >= 0.95; ours_vs_lightning >= 0.98 | "
        "ratio >= 0.95: pass; ours_vs_lightning >= 0.98: miss |"
    ) in lines
    assert (
        "| Time to accuracy | 0.8 | throughput_ratio >= 0.9; ratio >= 0.9; lockstep_ratio >= 0.9 | "
        "throughput_ratio >= 0.9: pass; ratio >= 0.9: miss; lockstep_ratio >= 0.9: miss |"
    ) in lines
    assert (
        "| Data loading | failed | ratio >= 3; digits_ratio >= 3; "
        "albumentations_vs_torchvision >= 1.5 | ratio >= 3: miss; digits_ratio >= 3: miss; "
        "albumentations_vs_torchvision >= 1.5: miss |"
    ) in lines
    assert "| Inference | 2.5 | none set (reported) | n/a |" in lines
    assert "Command: `.venv/bin/python benchmarks/overhead.py`" in lines
    assert "Ran 0 s; load average (1 min) 6.50 at the start, 0.00 at the end." in lines
    assert (
        "- target `ratio >= 0.9` (plain / documented fit seconds to 99% (aim 1.0)): **miss**"
    ) in lines
    assert "| plain_seconds | 17.0 |" in lines and "| models | lenet5 |" in lines
    assert lines[lines.index("rows:") + 2 : lines.index("rows:") + 5] == [
        "| model | eager |",
        "| --- | --- |",
        "| lenet5 | 10.0 |",
    ]
    failed = lines.index("**Failed**:")
    error = ["```", "exit code 1, failed; stderr ends with:", "Boom", "```"]
    assert lines[failed + 2 : failed + 6] == error
    assert text.count("printed this") == 4


def test_merge_results_replaces_only_the_generated_block():
    generated = f"{run_all.BEGIN}\nnew figures\n{run_all.END}\n"
    assert run_all.merge_results(None, generated) == generated
    previous = f"Notes.\n{run_all.BEGIN}\nold figures\n{run_all.END}\n\n## GPU\n\nH100: 1e6 img/s\n"
    assert run_all.merge_results(previous, generated) == (
        f"Notes.\n{run_all.BEGIN}\nnew figures\n{run_all.END}\n\n## GPU\n\nH100: 1e6 img/s\n"
    )
    handwritten = "# Results\n\n## GPU\n\nH100: 1e6 img/s\n"
    assert run_all.merge_results(handwritten, generated) == generated + "\n" + handwritten


def _script(tmp_path: Path, body: str) -> "run_all.Benchmark":
    script = tmp_path / "fake.py"
    script.write_text(body)
    return run_all.Benchmark("fake", "Fake", script, "nothing", quick_args="--small 1")


def test_run_benchmark_keeps_the_printed_lines_and_the_json_result(tmp_path, capsys):
    body = "import json, sys\nprint('figure 1', sys.argv[1:])\nprint(json.dumps({'ratio': 1.5}))\n"
    outcome = run_all.run_benchmark(_script(tmp_path, body), quick=True)
    assert outcome.result == {"ratio": 1.5}
    assert outcome.output == "figure 1 ['--small', '1']"
    assert outcome.error == ""
    assert outcome.command.endswith(f"{tmp_path / 'fake.py'} --small 1")
    assert "figure 1" in capsys.readouterr().out  # echoed as it came


def test_run_benchmark_reports_a_failing_script_with_its_stderr(tmp_path):
    body = "import sys\nprint('half way')\nsys.exit('data missing')\n"
    outcome = run_all.run_benchmark(_script(tmp_path, body))
    assert outcome.result is None
    assert outcome.output == "half way"
    assert outcome.error == "exit code 1, failed; stderr ends with:\ndata missing"
    no_json = run_all.run_benchmark(_script(tmp_path, "print('no result')\n"))
    assert no_json.result is None
    assert no_json.error.startswith("exit code 0, no JSON object on its last line")


def test_machine_info_names_cpu_cores_memory_gpu_and_versions():
    info = run_all.machine_info()
    assert list(info) == ["CPU", "cores", "memory", "GPU", "system", "libraries"]
    assert info["GPU"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
    assert f"torch {torch.__version__}" in info["libraries"]
    assert re.fullmatch(r"\d+ \(\d+ usable by this process\)", info["cores"])


# time_to_accuracy: the recipe, the plain loop's options, the data order, the figures


def test_build_makes_the_recipes_model_and_data_through_the_cli(tmp_path):
    setup = time_to_accuracy.build(REPO / "recipes" / "mnist_lenet5.yaml", tmp_path)
    assert (setup.max_epochs, setup.seed, type(setup.data)) == (8, 0, MNISTDataModule)
    assert (setup.data.root, setup.data.batch_size) == (tmp_path, 128)
    shape = {name: setup.hparams[name] for name in ("num_classes", "in_channels", "image_size")}
    assert shape == {"num_classes": 10, "in_channels": 1, "image_size": 28}  # linked from data
    assert time_to_accuracy.plain_sgd_options(setup.hparams) == {
        "lr": 0.1,
        "weight_decay": 0.0005,
        "momentum": 0.9,
        "nesterov": True,
    }
    time_to_accuracy.check_plain_data(setup.data)
    assert (
        time_to_accuracy.build(REPO / "recipes" / "mnist_lenet5.yaml", tmp_path, 2).max_epochs == 2
    )


@pytest.fixture(scope="module")
def fast_hparams() -> dict:
    """The hyperparameters of recipes/mnist_lenet5_fast.yaml's model."""
    return time_to_accuracy.build(REPO / "recipes" / "mnist_lenet5_fast.yaml", REPO).hparams


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"mixup": 0.2},
            "the plain loop does not implement model option 'mixup'; expected some of "
            "['backbone', 'backbone_kwargs', 'class_names', 'decay_biases', 'freeze_backbone', "
            "'image_size', 'in_channels', 'l1_strength', 'l2_strength', 'loss', 'loss_kwargs', "
            "'lr', 'lr_reference_batch_size', 'num_classes', 'optimizer', 'optimizer_kwargs', "
            "'scheduler', 'scheduler_interval', 'scheduler_kwargs', 'step_batch_size', "
            "'warmup_steps', 'weight_decay', 'weights']",
        ),
        (
            {"loss_kwargs": {"weight": [1.0, 2.0]}},
            "the plain loop implements loss_kwargs label_smoothing only, the recipe has ['weight']",
        ),
        (
            {"optimizer": "adam"},
            "the plain loop implements optimizer='sgd', the recipe has optimizer='adam'",
        ),
        (
            {"scheduler_interval": "epoch"},
            "the plain loop implements scheduler_interval='step', the recipe has "
            "scheduler_interval='epoch'",
        ),
    ],
)
def test_plain_sgd_options_refuses_what_the_plain_loop_does_not_implement(
    fast_hparams, change, message
):
    with pytest.raises(ConfigError, match=re.escape(message)):
        time_to_accuracy.plain_sgd_options({**fast_hparams, **change})


def test_time_ratio_is_plain_over_ours_and_none_when_a_side_missed():
    assert time_to_accuracy.time_ratio(19.0, 20.0) == 0.95
    assert time_to_accuracy.time_ratio(None, 20.0) is None
    assert time_to_accuracy.time_ratio(19.0, None) is None


def test_the_plain_loop_refuses_data_options_it_does_not_implement():
    time_to_accuracy.check_plain_data(DigitsDataModule(train_transform="eval"))
    message = "the plain loop implements data train_transform='eval', the recipe has 'digits'"
    with pytest.raises(ConfigError, match=re.escape(message)):
        time_to_accuracy.check_plain_data(DigitsDataModule(train_transform="digits"))


def test_normalised_is_the_batch_paths_arithmetic_on_the_whole_set():
    data = DigitsDataModule(batch_size=16)
    data.setup("fit")
    images, labels = time_to_accuracy.normalised(data, data.train_set, 16)
    chosen = data.train_set.indices[:16]
    uint8 = to_image_tensor(data.train_set.images[chosen])
    assert torch.equal(images, data.transform_batch(uint8, train=False))
    assert labels.tolist() == data.train_set.labels[chosen].tolist()


def test_run_reaches_the_target_on_its_last_epoch_and_summarize_takes_medians():
    missed = time_to_accuracy.Run(0.99, [0.97, 0.985], [1.0, 2.0], train_seconds=2.2)
    assert not missed.reached and missed.seconds_to_target is None
    runs = [
        time_to_accuracy.Run(0.99, [0.98, 0.991], [1.0, 2.0], 2.1, eval_seconds=0.4),
        time_to_accuracy.Run(0.99, [0.98, 0.992], [1.0, 2.4], 2.5, eval_seconds=0.6),
        time_to_accuracy.Run(0.99, [0.995], [1.1], 1.2, eval_seconds=0.2),
    ]
    assert runs[0].reached and runs[0].seconds_to_target == 2.1
    summary = time_to_accuracy.summarize({"plain": runs, "lightning_cv": [runs[0], missed]})
    assert summary["plain"] == {
        "seconds": 2.1, "epochs": 2, "acc": 0.995, "eval_seconds": 0.4, "images_per_s": 0.0,
    }  # fmt: skip
    assert summary["lightning_cv"]["seconds"] is None


def test_top1_accuracy_counts_correct_argmaxes_and_restores_training_mode():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [1.0, 0.0]])
    model = nn.Identity().train()
    test = (logits, torch.tensor([0, 1, 1, 1]))
    assert time_to_accuracy.top1_accuracy(model, test, batch_size=3) == 0.5
    assert model.training


# inference and scaling helpers


def test_inference_input_shapes_and_geometric_mean():
    shapes = {name: inference.input_shape(name) for name in list_models()}
    assert shapes == {name: (3, 32, 32) if name == "alexnet" else (1, 28, 28) for name in shapes}
    assert inference.geometric_mean([4.0, 1.0]) == pytest.approx(2.0)
    assert inference.images_per_second(nn.Identity(), torch.zeros(4, 1, 2, 2), 0.001) > 0


def test_scaling_sizes_double_and_the_slope_of_a_linear_cost_is_one():
    assert scaling.subset_sizes(60000, 3) == [7500, 15000, 30000, 60000]
    assert scaling.subset_sizes(512, 1) == [256, 512]
    assert scaling.loglog_slope([1000, 2000, 4000], [1.5, 3.0, 6.0]) == pytest.approx(1.0)
    assert scaling.loglog_slope([1000, 2000, 4000], [1.0, 4.0, 16.0]) == pytest.approx(2.0)


# one script end to end, tiny, on fake MNIST files


def test_time_to_accuracy_runs_end_to_end_and_ends_with_a_json_ratio(tmp_path):
    write_idx_dataset(tmp_path, "MNIST", sizes={"train": 300, "test": 60}, compress=False)
    recipe = (REPO / "recipes" / "mnist_lenet5_fast.yaml").read_text()
    (tmp_path / "fake.yaml").write_text(  # fake unpacked files: no official MD5 to match
        recipe.replace("lightning_cv.data.MNISTDataModule", "tests.fakes.UncheckedMNIST")
    )
    command = [sys.executable, str(BENCHMARKS / "time_to_accuracy.py"), "--root", str(tmp_path)]
    command += ["--recipe", str(tmp_path / "fake.yaml"), "--train-limit", "256"]
    command += ["--max-epochs", "2", "--target", "0", "--threads", "1"]
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "time_to_accuracy"
    assert (result["train_images"], result["test_images"]) == (256, 60)
    assert result["plain_epochs"] == result["lightning_cv_epochs"] == 1  # target 0: one epoch
    assert result["plain_acc"] == result["lightning_cv_acc"]  # the same training
    assert result["ratio"] > 0 and result["plain_seconds"] > 0
    assert result["throughput_ratio"] > 0 and result["pipeline"] == "batch"
    # the lockstep: both sides stop together, trained alike (the warm-up compared weights)
    assert result["lockstep_fit_epochs"] == result["lockstep_plain_epochs"] == 1
    assert result["lockstep_plain_acc"] == result["lockstep_fit_acc"] == result["plain_acc"]
    assert result["lockstep_trainer_epochs"] == result["lockstep_trainer_plain_epochs"] == 1
    assert result["lockstep_trainer_plain_acc"] == result["lockstep_trainer_acc"]
    assert result["lockstep_bare_epochs"] == result["lockstep_bare_plain_epochs"] == 1
    assert result["lockstep_bare_plain_acc"] == result["lockstep_bare_acc"] == result["plain_acc"]
    for prefix in ("lockstep", "trainer_lockstep", "bare_lockstep"):
        low, high = result[f"{prefix}_ratio_min"], result[f"{prefix}_ratio_max"]
        assert 0 < low <= result[f"{prefix}_ratio"] <= high
    assert "lockstep, repeat by repeat: plain / fit seconds " in done.stdout
    assert "lockstep 2: plain / stripped Trainer seconds " in done.stdout
    assert "lockstep 3: plain / bare LightningModule seconds " in done.stdout


def test_lockstep_ratios_pair_each_repeats_plain_loop_with_its_fit():
    runs = {
        "lockstep_plain": [time_to_accuracy.Run(0.9, train_seconds=9.0),
                           time_to_accuracy.Run(0.9, train_seconds=6.0)],
        "lockstep_fit": [time_to_accuracy.Run(0.9, train_seconds=10.0),
                         time_to_accuracy.Run(0.9, train_seconds=5.0)],
    }  # fmt: skip
    assert time_to_accuracy.lockstep_ratios(runs) == [0.9, 1.2]
    renamed = {"lockstep_trainer_plain": runs["lockstep_plain"],
               "lockstep_trainer": runs["lockstep_fit"]}  # fmt: skip
    pair = time_to_accuracy.LOCKSTEPS["trainer_lockstep"]
    assert time_to_accuracy.lockstep_ratios(renamed, *pair) == [0.9, 1.2]


# startup: the importtime report, the rows, a skipped command, a tiny run


def test_imported_modules_reads_the_importtime_report():
    report = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       311 |        311 |   torch._C\n"
        "import time:      1200 |      90000 | lightning.pytorch\n"
        "some other line\n"
    )
    assert startup.imported_modules(report) == {"torch._C", "lightning.pytorch"}


def test_startup_rows_give_the_median_the_difference_and_the_verdict():
    seconds = {"torch": [2.0, 2.4, 2.2], "help": [2.9, 3.0, 9.0], "zoo-list": [3.5, 3.4, 3.3]}
    rows = startup.summarize(seconds, {"help": False, "zoo-list": True})
    assert rows == [
        {"command": "help", "seconds": 3.0, "minus_torch": 0.8, "within": True, "lightning": False},
        {"command": "zoo-list", "seconds": 3.4, "minus_torch": 1.2, "within": False,
         "lightning": True},
    ]  # fmt: skip


def test_a_failing_command_is_skipped_with_a_note(capsys, monkeypatch):
    monkeypatch.setitem(startup.COMMANDS, "bogus", ["no-such-subcommand"])
    assert startup.warm_up(["bogus"]) == {}
    note = capsys.readouterr().out
    assert note.startswith("skipped bogus: exit code ") and note.endswith(")\n")


def test_zoo_predict_starts_in_plain_torch_and_writes_a_new_output_each_run(tmp_path):
    startup.write_image(tmp_path)
    assert startup.warm_up(["zoo-predict", "zoo-predict"], tmp_path) == {"zoo-predict": False}
    outputs = sorted(tmp_path.glob("*.csv"))  # one per run: no run is refused an existing file
    assert len(outputs) == 2
    for output in outputs:
        [row] = list(csv.DictReader(output.open(newline="")))
        assert (row["path"], row["class_1"]) == ("one.png", "1 - one")


def test_startup_runs_end_to_end_and_ends_with_a_json_result():
    command = [sys.executable, str(BENCHMARKS / "startup.py"), "--repeats", "1", "--only", "help"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "startup" and result["skipped"] == []
    (row,) = result["rows"]
    assert row["command"] == "help" and row["seconds"] > 0 < result["torch_seconds"]
    difference = row["seconds"] - result["torch_seconds"]
    assert row["minus_torch"] == pytest.approx(difference, abs=2e-3)
    assert row["within"] == (row["minus_torch"] <= 1.0)
    assert result["lightning_imports"] == int(row["lightning"])
    assert result["ratio"] == pytest.approx(row["seconds"] / result["torch_seconds"], abs=2e-3)
    assert "lightning-cv --help" in done.stdout
