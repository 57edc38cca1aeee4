"""The page of ``lightning-cv serve`` in a real headless browser (Debian's chromium, driven by
Playwright): pick an MNIST digit, read the top-1 the page shows. Without chromium or Playwright
the test skips here and fails under CI (CI=true)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.test_serve import Server, mnist_test_images, png_bytes, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def _require_browser() -> None:
    missing = None
    if not CHROMIUM.is_file():
        missing = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is missing (pip install playwright)"
    if missing and os.environ.get("CI") == "true":
        pytest.fail(f"the page test needs a browser under CI: {missing}")
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    _require_browser()
    with running_server() as running:
        yield running


def test_a_picked_digit_shows_its_top_classes_as_bars(server, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    seven = tmp_path / "seven.png"
    seven.write_bytes(png_bytes(mnist_test_images(1)[0]))
    with seven.open("rb") as file:
        files = {"image": ("seven.png", file, "image/png")}
        expected = requests.post(f"{server.url}/predict", files=files, timeout=30).json()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/", timeout=30_000)
            page.wait_for_selector("#model:has-text('lenet5.mnist')", timeout=30_000)
            page.set_input_files("#file", str(seven))
            page.wait_for_selector("#results .row", timeout=30_000)
            rows = page.locator("#results .row")
            shown = [rows.nth(i).get_attribute("data-class") for i in range(rows.count())]
            top_value = rows.first.locator(".value").inner_text()
            model_line = page.locator("#model").inner_text()
        finally:
            browser.close()
    assert shown == [p["class"] for p in expected["predictions"]]
    assert shown[0] == "7 - seven"
    assert top_value == f"{100 * expected['predictions'][0]['probability']:.1f}%"
    assert model_line == "lenet5.mnist: 10 classes, 28x28 pixels, 1 channel(s)"
