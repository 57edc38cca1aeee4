"""benchmarks/gpu_check.py --tiny: every part runs on the CPU and its section is appended."""

import os
import re
import subprocess
import sys

import pytest
import torch

from .conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.py"
NUMBER = r"[\d,]+(?:\.\d+)?"


def run_check(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_tiny_check_appends_every_part_with_its_figures(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nearlier figures\n")
    done = run_check("--tiny", "--results", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [path.name for path in tmp_path.iterdir()] == ["RESULTS.md"]  # no run folders left
    text = results.read_text()
    assert text.startswith("# Results\n\nearlier figures\n\n## GPU check: CPU (")
    for heading in (
        "### LeNet-5 MNIST to 30.0% test top-1 (1,293 training images)",
        "### cifar10_alexnet training images/s",
        "### Speed options against fp32",
        "### lightning-cv serve",
    ):
        assert f"\n{heading}\n" in text
    for side in ("hand-written loop", "lightning-cv fit"):
        assert re.search(rf"\| {side} \| {NUMBER} \| \d \| {NUMBER}% \| {NUMBER} \|", text)
    assert re.search(rf"seconds plain / ours: {NUMBER}\n", text)
    for pipeline in ("sample", "batch"):
        assert re.search(rf"\| {pipeline} \| {NUMBER} \|", text)
    options = re.findall(
        rf"\| (\w+) \| (\w+) \| (\w+) \| {NUMBER} \| {NUMBER} \| {NUMBER} \|", text
    )
    assert sorted(options) == sorted(
        (model, phase, option)
        for model in ("lenet5", "alexnet")
        for phase, names in (("train", ("bf16", "channels_last", "ema")),
                             ("predict", ("bf16", "channels_last")))
        for option in names
    )  # fmt: skip
    served = rf"{NUMBER} requests/s, p50 {NUMBER} ms, p99 {NUMBER} ms \(16 requests, 8 clients"
    assert re.search(rf"### lightning-cv serve\n\n{served}, batched\)\n$", text)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the full check runs on a GPU")
def test_without_a_gpu_the_full_check_says_so_in_one_line(tmp_path):
    done = run_check("--results", str(tmp_path / "RESULTS.md"), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == (
        "gpu_check.py needs a CUDA GPU (none is visible); --tiny runs on the CPU\n"
    )
    assert not (tmp_path / "RESULTS.md").exists()
