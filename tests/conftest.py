"""Shared fixtures: every test runs offline, and file-writing tests run in a temporary folder."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO = Path(__file__).resolve().parents[1]
DATA_ENV = "LIGHTNING_CV_DATA"
# the real data sets (MNIST, Fashion-MNIST, CIFAR-10): $LIGHTNING_CV_DATA where it is set, else
# ../shared/datasets beside the repository; the data modules' default root for every test and
# every process a test starts (tests of the default itself set or clear the variable)
SHARED_DATASETS = Path(os.environ.get(DATA_ENV) or REPO.parent / "shared" / "datasets")
os.environ[DATA_ENV] = str(SHARED_DATASETS)


def pytest_report_header() -> str:
    """Where the real data come from, so a run that skips their tests says why up front."""
    if SHARED_DATASETS.is_dir():
        return f"real data sets: {SHARED_DATASETS} (${DATA_ENV})"
    return (
        f"real data sets: missing at {SHARED_DATASETS}: their tests skip (and fail under CI); "
        f"set ${DATA_ENV} to the folder that holds MNIST/, FashionMNIST/ and CIFAR-10-images/"
    )


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside an empty temporary folder (run folders land there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def require_shared_datasets() -> Path:
    """The real data sets beside the repository: a CI run without them fails, a local one skips."""
    if not SHARED_DATASETS.is_dir():
        message = f"the real data sets are missing: expected them in {SHARED_DATASETS}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_DATASETS


@pytest.fixture(autouse=True)
def _close_wandb_runs():
    """Finish a W&B run a test left open (WandbLogger would reuse it in the next test), and
    forget W&B's set-up: it keeps the settings (mode, key, host) of the test that made it."""
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()
    if wandb is not None:
        wandb.teardown()


@pytest.fixture
def silent_server():
    """``http://127.0.0.1:<port>`` of a server that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def stop_process(process: subprocess.Popen, *, grace_s: float = 30) -> None:
    """SIGTERM to a process a test started, SIGKILL when it has not exited ``grace_s`` later."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
