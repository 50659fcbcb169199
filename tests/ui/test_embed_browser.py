"""The web chat embedded in a company's own page (an iframe on another origin), in a real
browser: it loads and answers inside the page, and the login still applies inside the frame."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import serving, write_docs
from tests.ui.test_web_browser import TIMEOUT_MS, browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

ANSWER = "The warranty on blenders lasts two years from delivery."


@pytest.fixture
def host_page() -> Iterator[tuple[str, dict[str, str]]]:
    """The company's own site on another origin (`localhost` rather than `127.0.0.1`)."""
    content = {"html": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = content["html"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}", content
    server.shutdown()
    server.server_close()


def _embedded(base: str) -> str:
    return (
        "<html><body><h1>Kettles &amp; more</h1>"
        f'<iframe id="support" src="{base}/" width="900" height="800"></iframe></body></html>'
    )


def _components(tmp_path: Path, **settings: Any) -> Components:
    parts = Components(
        Settings(domain="none", **settings),
        {"chat_model": FakeChatModel().enqueue(ANSWER), "embedder": HashingEmbedder()},
    )
    parts.knowledge.ingest([write_docs(tmp_path / "docs")])
    return parts


def test_the_chat_answers_inside_the_companys_page(
    host_page: tuple[str, dict[str, str]],
    browser: Any,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    origin, content = host_page
    parts = _components(tmp_path, frame_ancestors=origin)
    with serving(_app(parts)) as base:
        content["html"] = _embedded(base)
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(origin + "/")
        chat = page.frame_locator("#support")
        chat.locator("#message textarea").fill("How long is the warranty on blenders?")
        chat.locator("#send").click()
        chat.locator("#chatbot .message.bot").last.get_by_text("two years").first.wait_for()
        (frame,) = [f for f in page.frames if f is not page.main_frame]
        assert frame.url == base + "/"
        page.close()
    parts.close()


def test_the_login_still_applies_inside_the_frame(
    host_page: tuple[str, dict[str, str]],
    browser: Any,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    origin, content = host_page
    guarded = _components(tmp_path, frame_ancestors=origin, auth=SecretStr("agent:s3cret"))
    with serving(_app(guarded)) as base:
        content["html"] = _embedded(base)
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(origin + "/")
        chat = page.frame_locator("#support")
        chat.locator("input[type=password]").wait_for()
        assert chat.locator("#message textarea").count() == 0
        page.close()
    guarded.close()


def _app(parts: Components) -> Any:
    from ui.server import create_app

    return create_app(parts)
