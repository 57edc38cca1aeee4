"""Model sources: zoo names, checkpoint files, https URLs (over a real HTTP server on 127.0.0.1)
and W&B artifact and Registry paths (as far as they go without a W&B server)."""

import hashlib
import http.server
import re
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest

from lightning_cv.errors import ConfigError, DataFileError
from lightning_cv.hub import wandb_api
from lightning_cv.hub.files import checkpoint_file
from lightning_cv.hub.manifest import get_entry
from lightning_cv.hub.publish import _metadata
from lightning_cv.hub.sources import SOURCE_FORMS, resolve_source
from lightning_cv.zoo import load

from .fake_folders import snapshot

NAME = "lenet5.mnist"
FAKE_KEY = "k" * 40  # the form of a W&B API key; no server ever sees it
REGISTRY = "wandb-registry-model/mnist-digits:production"
ARTIFACT = "me/zoo/lenet5.mnist:v0"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def bundled() -> Path:
    return checkpoint_file(NAME)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty lightning-cv cache; the working folder is tmp_path/work."""
    monkeypatch.setenv("LIGHTNING_CV_HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "home"


@pytest.fixture
def server(tmp_path, bundled):
    """``http://127.0.0.1:<port>`` serving a folder with the bundled checkpoint; the requests
    it answered are in ``server.requests``. Stopped (and its thread joined) by the test."""
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copyfile(bundled, folder / f"{NAME}.ckpt")
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=folder))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    httpd.requests = requests
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _url(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/{NAME}.ckpt"


def test_a_zoo_name_is_its_verified_file_and_entry(bundled):
    path, entry = resolve_source(NAME)
    assert (path, entry) == (bundled, get_entry(NAME))
    assert resolve_source(NAME, sha256=entry.sha256) == (bundled, entry)


def test_a_checkpoint_file_has_no_entry_and_is_checked_when_a_hash_is_given(bundled, tmp_path):
    assert resolve_source(bundled) == (bundled, None)
    assert resolve_source(str(bundled), sha256=_sha256(bundled)) == (bundled, None)
    wrong = "0" * 64
    message = f"{bundled}: the file {str(bundled)!r} has sha256 {_sha256(bundled)}, not {wrong}"
    with pytest.raises(DataFileError, match=f"^{re.escape(message)}$"):
        resolve_source(str(bundled), sha256=wrong)
    missing = tmp_path / "missing.ckpt"
    message = f"checkpoint {str(missing)!r} does not exist; expected {SOURCE_FORMS}"
    with pytest.raises(DataFileError, match=f"^{re.escape(message)}$"):
        resolve_source(str(missing))


def test_a_url_is_downloaded_once_into_the_cache(server, home, bundled):
    sha256 = _sha256(bundled)
    path, entry = resolve_source(f"{_url(server)}#sha256={sha256}")
    assert entry is None and server.requests == [f"/{NAME}.ckpt"]
    assert path == home / "downloads" / f"{sha256[:16]}-{NAME}.ckpt"
    assert path.read_bytes() == bundled.read_bytes()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging left
    assert resolve_source(_url(server), sha256=sha256) == (path, None)  # the argument form
    assert server.requests == [f"/{NAME}.ckpt"]  # from the cache: no second request


def test_a_url_with_a_wrong_hash_leaves_nothing_in_the_cache(server, home):
    wrong = "0" * 64
    with pytest.raises(DataFileError, match=re.escape(f"{_url(server)}: invalid hash value")):
        resolve_source(f"{_url(server)}#sha256={wrong}")
    assert server.requests == [f"/{NAME}.ckpt"]
    assert snapshot(home) == {}


@pytest.mark.parametrize(
    ("source", "sha256", "message"),
    [
        ("https://example.com/m.ckpt", None, "URL 'https://example.com/m.ckpt' has no sha256: "
         "append #sha256=<64 hex digits> or pass sha256= (a download is kept only when its hash "
         "matches)"),
        ("http://example.com/m.ckpt#sha256=" + "a" * 64, None, "URL 'http://example.com/m.ckpt"
         f"#sha256={'a' * 64}' is not https:// (http:// is accepted only for localhost and "
         "127.0.0.1)"),
        ("https://example.com/m.ckpt#sha256=abc", None, "URL 'https://example.com/m.ckpt"
         "#sha256=abc': sha256 'abc' is not 64 lowercase hex digits"),
        ("https://example.com/m.ckpt#sha256=" + "a" * 64, "b" * 64, "URL 'https://example.com/"
         f"m.ckpt#sha256={'a' * 64}' states sha256 {'a' * 64}, but sha256= is {'b' * 64}"),
        (NAME, "ABC", "sha256 'ABC' is not 64 lowercase hex digits"),
        ("lenet5", None, f"model source 'lenet5' is not {SOURCE_FORMS}"),
        ("me/zoo/lenet5.mnist", None, f"model source 'me/zoo/lenet5.mnist' is not {SOURCE_FORMS}"),
    ],
)  # fmt: skip
def test_bad_sources_fail_in_one_line_before_any_download(source, sha256, message, home):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        resolve_source(source, sha256=sha256)
    assert not home.exists()


def test_the_accepted_forms_are_named_in_the_message():
    assert SOURCE_FORMS == (
        "a zoo name (arch.dataset, e.g. lenet5.mnist), a .ckpt file, an https:// URL with "
        "#sha256=<hex>, a W&B artifact entity/project/name:alias or a W&B Registry path "
        "wandb-registry-model/collection:alias"
    )


# --- W&B, without a server ------------------------------------------------------------------


@pytest.mark.parametrize("source", [REGISTRY, ARTIFACT, f"my-org/{REGISTRY}"])
def test_w_and_b_sources_offline_fail_in_one_line_and_leave_nothing(source, home, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    message = (
        f"downloading the W&B artifact {source} needs a W&B server, but W&B is in offline mode "
        "(WANDB_MODE=offline)"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        resolve_source(source)
    assert snapshot(home.parent) == {}  # no cache file, no ./wandb folder


def test_a_w_and_b_source_without_a_key_says_how_to_log_in(home, monkeypatch, tmp_path):
    import wandb

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    (tmp_path / "netrc").write_text("")
    monkeypatch.setattr(wandb, "Api", None)  # calling it would fail loudly
    host = wandb.setup().settings.base_url
    message = (
        f"downloading the W&B artifact {REGISTRY} needs a W&B API key for {host}: run `wandb "
        "login` or set WANDB_API_KEY"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        resolve_source(REGISTRY)
    assert snapshot(home.parent) == {"netrc": b""}


def test_a_silent_w_and_b_server_is_one_line_within_the_timeout(
    silent_server, home, monkeypatch, tmp_path
):
    import wandb

    wandb.teardown()  # a W&B set up by an earlier test would keep its server
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", silent_server)
    monkeypatch.setattr(wandb_api, "TIMEOUT_S", 2)  # the real path, with a shorter wait
    with pytest.raises(ConfigError) as error:
        resolve_source(REGISTRY)
    message = str(error.value)
    assert message.startswith(
        f"downloading the W&B artifact {REGISTRY}: W&B at {silent_server} failed within 2 s ("
    )
    assert message.endswith("); check the network, the API key and WANDB_BASE_URL")
    assert "\n" not in message
    assert [p.name for p in (home / "downloads").iterdir()] == []
    assert list(Path.cwd().iterdir()) == []


def test_inside_an_offline_run_a_w_and_b_source_says_the_run_is_offline(
    home, monkeypatch, tmp_path
):
    import wandb

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    run = wandb.init(mode="offline", dir=tmp_path, project="zoo")
    try:
        message = (
            f"downloading the W&B artifact {ARTIFACT} needs a W&B server, but the active W&B "
            "run is offline"
        )
        with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
            resolve_source(ARTIFACT)
    finally:
        run.finish()
    assert not home.exists() or snapshot(home) == {}


class _Artifact:
    """What ``wandb.Api().artifact`` returns for an artifact ``zoo publish`` logged: its
    metadata and ``download``; a stand-in for the server only (no W&B server runs here)."""

    def __init__(self, file: Path, metadata: dict) -> None:
        self.file, self.metadata = file, metadata

    def download(self, root: str) -> str:
        shutil.copyfile(self.file, Path(root) / self.file.name)
        (Path(root) / "README.md").write_text("# card\n")
        return root


def _api(artifact: _Artifact, calls: list) -> type:
    class Api:
        def __init__(self, timeout=None):
            self.timeout = timeout

        def artifact(self, name, type=None):
            calls.append((name, type, self.timeout))
            return artifact

    return Api


def test_a_published_artifact_gives_its_file_and_the_entry_in_its_metadata(
    bundled, home, monkeypatch
):
    import wandb

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    entry, calls = get_entry(NAME), []
    record = load(entry.name).preprocessing.to_checkpoint()
    artifact = _Artifact(bundled, _metadata(bundled, entry, record))
    monkeypatch.setattr(wandb, "Api", _api(artifact, calls))
    path, found = resolve_source(REGISTRY)
    assert calls == [(REGISTRY, "model", wandb_api.TIMEOUT_S)]
    assert found == entry.model_copy(update={"file": None})
    assert path == home / "downloads" / f"{entry.sha256[:16]}-{NAME}.ckpt"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the download folder is gone
    assert path.read_bytes() == bundled.read_bytes()

    artifact.metadata = {**artifact.metadata, "sha256": "0" * 64}  # the file is not the one
    path.unlink()
    message = f"{REGISTRY}: the file has sha256 {entry.sha256}, its metadata states {'0' * 64}"
    with pytest.raises(DataFileError, match=f"^{re.escape(message)}$"):
        resolve_source(REGISTRY)
    assert list(path.parent.iterdir()) == []
