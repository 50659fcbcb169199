"""One smoke run with the real packaged models: `assistant serve` answers over REST and in the
browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.models import chat_model_path
from assistant_core.settings import Settings
from tests.conftest import MODEL_CACHE
from tests.ui.conftest import free_port
from tests.ui.test_web_browser import ARGS, CHROMIUM, DOCS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def server(data_dir: Path) -> Iterator[str]:
    # converted once per cache
    chat_model_path(Settings(model_dir=MODEL_CACHE, data_dir=MODEL_CACHE.parent))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "assistant"]
    subprocess.run(
        [*command, "ingest", "--demo"], env=env, check=True, capture_output=True, timeout=300
    )
    port = free_port()
    log = open(data_dir.parent / "serve.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, (data_dir.parent / "serve.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "assistant serve did not come up"
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def test_serve_answers_with_the_real_model_over_rest_and_in_the_browser(
    server: str, tmp_path: Path
) -> None:
    reply = httpx.post(
        server + "/api/v1/messages",
        json={"text": "How much does standard shipping cost?"},
        timeout=180,
    ).json()
    assert reply["answer"].strip()
    assert "shipping-times-and-costs.md" in {Path(s["source"]).name for s in reply["sources"]}

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed; the REST half of the smoke run passed")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(180_000)
        page.goto(server + "/")
        page.locator("#message textarea").fill("How do I start a return?")
        page.locator("#send").click()
        bot = page.locator("#chatbot .message.bot").last
        bot.get_by_text("Sources").wait_for()
        assert "return" in bot.inner_text().lower()
        page.locator("#state-panel").get_by_text("Turns: 1").wait_for()
        page.screenshot(path=str(tmp_path / "web-chat.png"))
        browser.close()
    if os.environ.get("UPDATE_WEB_SCREENSHOT"):
        shutil.copyfile(tmp_path / "web-chat.png", DOCS / "web-chat.png")
