"""Two nodes on one machine: two ``torchrun`` agents, one process each, fit and test the digits
through ``lightning-cv`` with DDP over gloo, as two machines would (on a shared file system).

torchrun gives every worker ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE`` and the node's rank as ``GROUP_RANK`` (not ``NODE_RANK``), which Lightning's
``TorchElasticEnvironment`` reads; the probe callback records what the Trainer made of them.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightning_cv.data import DigitsDataModule

from .conftest import REPO, free_port, stop_process

TIMEOUT = 300  # seconds for one torchrun pair (a fit takes ~25 s on an idle 2-core machine)
TRAINING_IMAGES = 1_293  # digits_lenet5's training split: 1,797 digits less 360 test, 144 val
TEST_IMAGES = 360
QUICK = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def worker_env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def start_node(node: int, args: list[str], port: int, cwd: Path) -> subprocess.Popen:
    """``torchrun --nnodes 2 --node_rank node ... -m lightning_cv args``, logging to
    ``node<N>.log``."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2",
        "--node_rank", str(node), "--nproc_per_node", "1",
        "--master_addr", "127.0.0.1", "--master_port", str(port),
        "-m", "lightning_cv", *args, "--trainer.num_nodes", "2",
        "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", *QUICK,
    ]  # fmt: skip
    with (cwd / f"node{node}.log").open("w") as log:
        return subprocess.Popen(
            command, cwd=cwd, env=worker_env(), stdout=log, stderr=subprocess.STDOUT
        )


def run_two_nodes(args: list[str], cwd: Path) -> None:
    """Two torchrun agents on 127.0.0.1 running ``lightning-cv args``: both must exit 0 within
    TIMEOUT, and neither (nor a worker) outlives the call."""
    port = free_port()
    agents = []
    try:
        for node in (0, 1):
            agents.append(start_node(node, args, port, cwd))
        for node, agent in enumerate(agents):
            code = agent.wait(timeout=TIMEOUT)
            assert code == 0, (cwd / f"node{node}.log").read_text()[-3000:]
    finally:
        for agent in agents:
            stop_process(agent)  # torchrun stops its workers on SIGTERM (each has its own session)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One epoch of digits_lenet5 fitted on two nodes, its best checkpoint tested on two nodes
    (version_1) and by one plain process (version_2), all in one shared folder."""
    cwd = tmp_path_factory.mktemp("multinode")
    probe = (
        "--trainer.callbacks+={class_path: tests.rank_probe.RecordRankShare, "
        f"init_args: {{folder: {cwd / 'probe'}}}}}"
    )
    recipe = ["--config", "digits_lenet5"]
    fit = ["fit", *recipe, "--trainer.max_epochs", "1", "--test_after_fit", "false", probe]
    run_two_nodes(fit, cwd)
    (best,) = (cwd / "runs" / "digits_lenet5" / "version_0" / "checkpoints").glob("best-*.ckpt")
    run_two_nodes(["test", *recipe, "--ckpt_path", str(best)], cwd)
    one = ["test", *recipe, "--trainer.accelerator", "cpu", "--trainer.devices", "1", *QUICK]
    result = subprocess.run(
        [sys.executable, "-m", "lightning_cv", *one, "--ckpt_path", str(best)],
        cwd=cwd, env=worker_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd


def rank_records(cwd: Path) -> list[dict]:
    return [json.loads((cwd / "probe" / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def read_test_metrics(run: Path) -> tuple[dict[str, float], np.ndarray]:
    """The test row of a run's metrics.csv and its confusion matrix."""
    with (run / "metrics.csv").open() as file:
        (row,) = csv.DictReader(file)
    matrix = np.loadtxt(run / "confusion_matrix.csv", delimiter=",", skiprows=1)[:, 1:]
    return {key: float(value) for key, value in row.items()}, matrix


def test_torchrun_makes_two_nodes_of_one_process_each(runs):
    layout = [{k: v for k, v in record.items() if k != "samples"} for record in rank_records(runs)]
    assert layout == [
        {"global_rank": rank, "local_rank": 0, "node_rank": rank, "world_size": 2,
         "environment": "TorchElasticEnvironment", "uses_batches": True}
        for rank in (0, 1)
    ]  # fmt: skip


def test_each_node_trains_on_its_own_equal_share_of_the_epoch(runs):
    first, second = (record["samples"] for record in rank_records(runs))
    assert len(first) == len(second) == TRAINING_IMAGES // 2  # one image left out, not repeated
    assert len(set(first)) == len(first) and len(set(second)) == len(second)
    assert not set(first) & set(second)
    data = DigitsDataModule(image_size=28, batch_size=32)  # the recipe's data, one process
    data.setup("fit")
    training = set(data.train_set.indices.tolist())
    assert len(training) == TRAINING_IMAGES
    assert len(training - set(first) - set(second)) == 1  # all but the odd one out


def test_two_node_test_gives_the_one_process_metrics(runs):
    folder = runs / "runs" / "digits_lenet5"
    assert sorted(path.name for path in folder.iterdir()) == ["version_0", "version_1", "version_2"]
    (two_nodes, two_matrix), (one, one_matrix) = (
        read_test_metrics(folder / version) for version in ("version_1", "version_2")
    )
    assert one_matrix.sum() == two_matrix.sum() == TEST_IMAGES  # every test image once
    np.testing.assert_array_equal(two_matrix, one_matrix)
    assert two_nodes.keys() == one.keys()
    assert two_nodes == pytest.approx(one, abs=1e-6)
    assert two_nodes["test/acc"] == one["test/acc"]
