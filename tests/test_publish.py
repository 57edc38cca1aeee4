"""``lightning-cv zoo publish`` to the W&B Registry, through the real W&B SDK as far as it goes
without a server: offline, the run W&B writes holds the artifact (checkpoint and model card),
its metadata and its aliases, read back from the run's ``.wandb`` log."""

import base64
import hashlib
import json
import re
import struct
from pathlib import Path

import pytest

from lightning_cv.cli.zoo import zoo_main
from lightning_cv.errors import ConfigError
from lightning_cv.hub.files import checkpoint_file
from lightning_cv.hub.manifest import get_entry
from lightning_cv.zoo import load, render_model_card

NAME = "lenet5.mnist"
BLOCK = 32768  # the LevelDB log format W&B's run files use: 32 KiB blocks of 7-byte headers
HEADER = 7  # the file's own header: b":W&B", a 2-byte magic, a version byte
FULL, LAST = 1, 4  # record types that end a record (FIRST=2 and MIDDLE=3 continue one)


def read_run_records(path: Path) -> list:
    """The ``wandb_internal_pb2.Record`` messages of an offline run's ``run-<id>.wandb`` file.

    W&B 0.31 has no Python reader of its own (``wandb.sdk.internal.datastore`` is gone; the Go
    core writes the file), so this reads LevelDB's log format; ``test_the_run_file_format``
    pins it.
    """
    from wandb.proto import wandb_internal_pb2

    data, records, pending, position = path.read_bytes(), [], b"", HEADER
    while position + HEADER <= len(data):
        if (left := BLOCK - position % BLOCK) < HEADER:  # a block's tail too short for a header
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if (kind, length) == (0, 0):  # zero padding: the end of what was written
            break
        pending += data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """W&B offline, its folders in tmp_path; the working folder is tmp_path/work."""
    import wandb

    wandb.teardown()  # forget any earlier test's W&B settings: the folders below must apply
    for variable, folder in (("DIR", "runs"), ("DATA_DIR", "data"), ("CACHE_DIR", "cache"),
                             ("CONFIG_DIR", "config")):  # fmt: skip
        monkeypatch.setenv(f"WANDB_{variable}", str(tmp_path / folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def _publish(*options: str) -> list[str]:
    checkpoint = str(checkpoint_file(NAME))
    return ["publish", checkpoint, "--name", NAME, "--entity", "me", "--project", "zoo", *options]


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_offline_publish_stages_the_checkpoint_card_metadata_and_aliases(offline, capsys):
    import wandb

    zoo_main(_publish("--collection", "mnist-digits", "--aliases", "[production, candidate]"))
    (run,) = (offline / "runs" / "wandb").glob("offline-run-*")
    assert capsys.readouterr().out == (
        f"W&B is in offline mode: the artifact {NAME} was logged to the offline run {run}, not "
        f"published (publishing needs a server): run `wandb sync {run}`, then run this publish "
        "again online to link it to wandb-registry-model/mnist-digits (W&B links only online; "
        f"the same bytes make no new version), and set `wandb: me/zoo/{NAME}:v<N>` in the "
        "manifest entry (the manifest was not changed)\n"
    )
    wandb.teardown()  # wait for W&B's service to finish writing the run's log
    (artifact,) = [r.artifact for r in read_run_records(next(run.glob("run-*.wandb")))
                   if r.WhichOneof("record_type") == "artifact"]  # fmt: skip
    entry, checkpoint = get_entry(NAME), checkpoint_file(NAME)
    assert (artifact.name, artifact.type, artifact.entity, artifact.project) == (
        NAME, "model", "me", "zoo")  # fmt: skip
    assert sorted(artifact.aliases) == ["candidate", "latest", "production"]
    assert artifact.description == f"{NAME} on MNIST: top-1 {entry.metrics.acc:.2f}%"
    record = entry.model_dump(mode="json", exclude_none=True, exclude={"file", "wandb", "url"})
    architecture = {"backbone": "lenet5", "backbone_kwargs": None, "num_classes": 10,
                    "in_channels": 1, "image_size": 28}  # fmt: skip
    preprocessing = load(NAME).preprocessing.to_checkpoint()
    assert json.loads(artifact.metadata) == {
        **record, "architecture": architecture, "preprocessing": preprocessing}  # fmt: skip
    files = {item.path: item for item in artifact.manifest.contents}
    assert sorted(files) == ["README.md", f"{NAME}.ckpt"]
    card = render_model_card(load(NAME)).encode()
    for name, data in (("README.md", card), (f"{NAME}.ckpt", checkpoint.read_bytes())):
        assert (files[name].size, files[name].digest) == (len(data), _md5(data))
        assert Path(files[name].local_path).read_bytes() == data  # what `wandb sync` uploads


@pytest.mark.upstream
def test_the_run_file_format(offline):
    """Pins W&B's offline run file (wandb 0.31: LevelDB log records of ``Record`` protobufs
    behind the header ``:W&B``, 0xBEE1, version 0): if a W&B release changes it,
    :func:`read_run_records` and the test above need the new reader."""
    import wandb

    run = wandb.init(project="zoo", job_type="probe")
    run.finish()
    wandb.teardown()
    (file,) = (offline / "runs" / "wandb").glob("offline-run-*/run-*.wandb")
    assert file.read_bytes()[:HEADER] == b":W&B" + struct.pack("<HB", 0xBEE1, 0)
    kinds = [record.WhichOneof("record_type") for record in read_run_records(file)]
    assert kinds[:2] == ["header", "run"] and kinds[-1] == "exit"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--collection", "team/models"], "W&B collection 'team/models' is not a valid name; "
         "expected letters, digits, '-', '_' and '.' (no '/', ':' or spaces)"),
        (["--aliases", "[best, 'v1:rc']"], "W&B alias 'v1:rc' is not a valid name; expected "
         "letters, digits, '-', '_' and '.' (no '/', ':' or spaces)"),
    ],
)  # fmt: skip
def test_a_bad_collection_or_alias_fails_in_one_line_before_w_and_b(options, message, offline):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        zoo_main(_publish(*options))
    assert not (offline / "runs").exists() and list(Path.cwd().iterdir()) == []
