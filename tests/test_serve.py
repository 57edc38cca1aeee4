"""``lightning-cv serve`` over real HTTP on 127.0.0.1: one server per module (it takes seconds
to start), answers compared with ``Pretrained.predict`` in this process, and every bad request
answered 4xx with its exact JSON line while the server keeps serving."""

from __future__ import annotations

import base64
import gzip
import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest
import requests
from PIL import Image

from lightning_cv import zoo
from lightning_cv.serve.queries import Refusal, decode_image, read_query
from tests.conftest import free_port, require_shared_datasets, stop_process

MAX_IMAGES = 8
START_S = 120  # a loaded 2-core machine takes ~45 s to start the workers
EXPECTED = (
    "expected multipart/form-data (an image file in field 'image') or application/json "
    '({"images": ["<base64>", ...]})'
)


@dataclass
class Server:
    process: subprocess.Popen
    url: str


@contextmanager
def running_server(*options: str, source: str = "lenet5.mnist") -> Iterator[Server]:
    """``lightning-cv serve SOURCE`` on a free port, once ``/health`` answers 200;
    terminated (then killed) afterwards if a test has not stopped it."""
    url = f"http://127.0.0.1:{(port := free_port())}"
    command = [sys.executable, "-m", "lightning_cv", "serve", source, "--port", str(port)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([*command, *options], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + START_S
        while not _healthy(url):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, f"no /health within {START_S} s"
            time.sleep(0.25)
        yield Server(process, url)
    finally:
        stop_process(process)


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def mnist_test_images(count: int) -> np.ndarray:
    """The first ``count`` images of the official MNIST test file, (count, 28, 28) uint8."""
    raw = require_shared_datasets() / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    with gzip.open(raw) as file:
        data = file.read(16 + 28 * 28 * count)
    return np.frombuffer(data[16:], np.uint8).reshape(count, 28, 28)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(size: int = 30_000) -> bytes:
    """A complete, valid 1-bit PNG of ``size`` x ``size`` black pixels: ~110 KB on the wire,
    900 million pixels (PIL refuses above 2 x MAX_IMAGE_PIXELS, 178956970)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(-(-size // 8))  # filter byte, then 8 pixels a byte
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(size)) + packer.flush()
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)  # 1 bit, grey
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def as_json(pairs: list[tuple[str, float]]) -> list[dict]:
    return [{"class": name, "probability": probability} for name, probability in pairs]


def assert_same(answer: list[dict], expected: list[tuple[str, float]]) -> None:
    assert [a["class"] for a in answer] == [name for name, _ in expected]
    np.testing.assert_allclose(
        [a["probability"] for a in answer], [p for _, p in expected], rtol=0, atol=1e-6
    )  # fmt: skip  (a batch of 1 or of 32)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server("--max_images", str(MAX_IMAGES), "--max_request_mb", "1") as running:
        yield running


@pytest.fixture(scope="module")
def pretrained():
    from lightning_cv.zoo import load

    return load("lenet5.mnist")


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return mnist_test_images(32)


def test_an_uploaded_image_gets_the_top_k_of_predict(server, pretrained, digits) -> None:
    files = {"image": ("seven.png", png_bytes(digits[0]), "image/png")}
    response = requests.post(f"{server.url}/predict", files=files, data={"top_k": "3"}, timeout=30)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert_same(predictions, pretrained.predict(digits[0], top_k=3))
    assert predictions[0]["class"] == "7 - seven"  # MNIST's first test image is a 7


def test_a_json_batch_gets_one_result_per_image(server, pretrained, digits) -> None:
    body = {"images": [b64(png_bytes(image)) for image in digits[:5]], "top_k": 2}
    response = requests.post(f"{server.url}/predict", json=body, timeout=30)
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 5
    for result, image in zip(results, digits[:5], strict=True):
        assert_same(result["predictions"], pretrained.predict(image, top_k=2))


def test_32_concurrent_requests_get_the_answers_of_predict(server, pretrained, digits) -> None:
    def ask(image: np.ndarray) -> requests.Response:
        body = {"image": b64(png_bytes(image))}
        return requests.post(f"{server.url}/predict", json=body, timeout=60)

    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(ask, digits))
    assert [r.status_code for r in responses] == [200] * 32
    for response, image in zip(responses, digits, strict=True):
        assert_same(response.json()["predictions"], pretrained.predict(image, top_k=5))


def test_info_describes_the_model(server) -> None:
    model = requests.get(f"{server.url}/info", timeout=10).json()["model"]
    digits = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    class_names = [f"{i} - {name}" for i, name in enumerate(digits)]
    assert model == {
        "name": "lenet5.mnist",
        "sha256": zoo.get_entry("lenet5.mnist").sha256,
        "class_names": class_names,
        "metrics": {"acc": 99.36, "acc_top5": 100.0, "f1": 99.35},
        "preprocessing": {
            "in_channels": 1,
            "image_size": [28, 28],
            "mean": [0.1307],
            "std": [0.3081],
            "crop_fraction": None,
            "class_names": class_names,
            "tta": None,
            "eval_pipeline": None,
        },
        "source": "zoo entry lenet5.mnist",
    }


def test_the_page_is_served_at_the_root(server) -> None:
    response = requests.get(f"{server.url}/", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<input id="file" type="file"' in response.text


def _bad_requests() -> dict[str, tuple[dict, int, str]]:
    json_type = {"content-type": "application/json"}
    one = b64(png_bytes(np.zeros((28, 28), np.uint8)))
    return {
        "not an image": (
            {"files": {"image": ("notes.txt", b"these are notes", "text/plain")}}, 400,
            "image is not an image: PIL cannot identify its 15 bytes (PNG, JPEG, BMP, GIF, "
            "TIFF, WebP...)"),
        "empty body": ({"data": b"", "headers": json_type}, 400, f"empty request body; {EXPECTED}"),
        "decompression bomb": (
            {"files": {"image": ("bomb.png", bomb_png(), "image/png")}}, 413,
            "image is refused: Image size (900000000 pixels) exceeds limit of 178956970 "
            "pixels, could be decompression bomb DOS attack."),
        "wrong content type": (
            {"data": b"\x89PNG...", "headers": {"content-type": "image/png"}}, 415,
            f"content type 'image/png' is not accepted; {EXPECTED}"),
        "too many images": (
            {"json": {"images": [one] * (MAX_IMAGES + 1)}}, 413,
            "9 images in one request; the limit is 8 (--max_images)"),
        "not JSON": (
            {"data": b'{"images": [', "headers": json_type}, 400,
            "request body is not valid JSON (Expecting value at line 1 column 13); expected "
            '{"images": ["<base64>", ...]}'),
        "not base64": ({"json": {"images": ["%%%"]}}, 400,
                       "images[0] is not valid base64: Only base64 data is allowed"),
        "bad top_k": ({"json": {"image": one, "top_k": 0}}, 400,
                      "top_k must be an integer >= 1, got 0"),
        "unknown field": ({"json": {"image": one, "topk": 3}}, 400,
                          "unknown field 'topk'; expected ['image', 'images', 'top_k', 'tta']"),
        "tta without views": (
            {"json": {"image": one, "tta": True}}, 400,
            "lenet5.mnist has no test-time augmentation: its recipe lists no "
            "TestTimeAugmentation callback; predict without tta"),
        "too large a body": (
            {"files": {"image": ("big.png", bytes(1_200_000), "image/png")}}, 413,
            "request body is over 1 MiB (--max_request_mb)"),
        "form without an image": (
            {"files": {"picture": ("a.png", b"x", "image/png")}}, 400,
            f"the form has no field 'image'; {EXPECTED}"),
    }  # fmt: skip


@pytest.mark.parametrize(("request_kw", "status", "detail"), _bad_requests().values(),
                         ids=_bad_requests().keys())  # fmt: skip
def test_a_bad_request_gets_a_4xx_line_and_the_server_keeps_serving(
    server, request_kw, status, detail
) -> None:
    started = time.monotonic()
    response = requests.post(f"{server.url}/predict", timeout=30, **request_kw)
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert time.monotonic() - started < 10  # the bomb is refused from its header, not decoded
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def test_a_bad_request_in_a_dynamic_batch_fails_alone(server, digits) -> None:
    good = {"json": {"image": b64(png_bytes(digits[0]))}}
    bad = {"files": {"image": ("notes.txt", b"these are notes", "text/plain")}}
    with ThreadPoolExecutor(16) as pool:
        asked = [good, bad] * 8
        codes = list(pool.map(lambda kw: requests.post(f"{server.url}/predict", timeout=60,
                                                       **kw).status_code, asked))  # fmt: skip
    assert codes == [200, 400] * 8


def test_ctrl_c_stops_the_server_cleanly(server) -> None:
    """Last in the module: it stops the module's server."""
    server.process.send_signal(signal.SIGINT)
    stdout, stderr = server.process.communicate(timeout=60)
    port = server.url.rsplit(":", 1)[1]
    assert server.process.returncode == 0, stderr
    assert stdout.splitlines() == [
        f"lightning-cv serve: lenet5.mnist at http://127.0.0.1:{port}/ (POST /predict, GET "
        "/info); Ctrl-C stops",
        "lightning-cv serve: stopped",
    ]
    assert "Traceback" not in stderr


def test_a_bad_option_is_one_line() -> None:
    done = subprocess.run([sys.executable, "-m", "lightning_cv", "serve", "lenet5.mnist",
                           "--port", "80"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "lightning-cv: error: port must be in [1024, 65535], got 80\n"


def test_read_query_refuses_a_list_and_reads_a_grey_png() -> None:
    assert read_query(["x"], max_images=1) == Refusal(
        400, 'expected a JSON object like {"images": ["<base64>", ...]}, got list'
    )
    image = decode_image(png_bytes(np.full((5, 7), 9, np.uint8)), "image")
    assert (image.mode, image.size, image.getpixel((0, 0))) == ("L", (7, 5), 9)
