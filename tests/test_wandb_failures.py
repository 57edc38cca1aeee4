"""A W&B server that does not answer: ``zoo publish`` fails in one line naming the host W&B
dialled, within the documented timeout, and leaves the working folder as it was.

The "server" is a socket on 127.0.0.1 that listens and never answers (connections are queued,
no byte comes back), bound to a free port for one test and closed by it.
"""

import time

import pytest

from lightning_cv.cli import main
from lightning_cv.hub.files import TIMEOUT_S, checkpoint_file
from lightning_cv.zoo import get_entry

from .fake_folders import snapshot

FAKE_KEY = "k" * 40  # the form of a W&B API key; no server ever sees it


@pytest.fixture
def online(monkeypatch, silent_server, tmp_path):
    """W&B online with a key, pointed at the silent server; its own folders in tmp_path."""
    import wandb

    wandb.teardown()  # a W&B set up by an earlier test would keep its server
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", silent_server)
    for variable in ("DATA_DIR", "CACHE_DIR", "CONFIG_DIR"):
        monkeypatch.setenv(f"WANDB_{variable}", str(tmp_path / "w_and_b" / variable.lower()))
    yield silent_server
    wandb.teardown()


def test_a_publish_to_a_silent_server_is_one_line_and_leaves_nothing(
    online, tmp_path, monkeypatch, capfd
):
    work = tmp_path / "project"
    work.mkdir()
    (work / "notes.txt").write_text("the user's file\n")
    monkeypatch.chdir(work)
    before = snapshot(work)
    checkpoint = checkpoint_file(get_entry("lenet5.mnist"))  # the bundled file
    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        main(["zoo", "publish", str(checkpoint), "--name", "lenet5.mnist", "--entity", "me",
              "--project", "zoo"])  # fmt: skip
    elapsed = time.monotonic() - started
    assert exit_info.value.code == 2
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"lightning-cv: error: publishing lenet5.mnist: W&B at {online} failed within "
        f"{TIMEOUT_S} s ("
    )
    assert lines[0].endswith("); check the network, the API key and WANDB_BASE_URL")
    assert snapshot(work) == before and sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    assert elapsed < 3 * TIMEOUT_S  # W&B's own default waits about two minutes


def test_the_host_named_is_the_one_w_and_b_dials(online):
    import wandb

    assert wandb.setup().settings.base_url == online  # what hub.files reads for its messages
