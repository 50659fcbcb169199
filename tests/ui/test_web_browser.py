"""The Gradio web chat in a real browser: Debian's Chromium driven by Playwright, over a real
server."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.wiring import Components
from tests.fakes import FakeChatModel
from tests.ui.conftest import serving
from ui.server import create_app

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
TIMEOUT_MS = 30_000
WARRANTY_SENTENCE = "The warranty on blenders lasts two years from delivery."


@pytest.fixture
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip(
            "Chromium is not installed (apt-get install -y chromium chromium-driver); "
            "browser tests need it"
        )
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright (pip) is not installed"
    )
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def test_chat_streams_with_sources_then_upload_and_ask_about_it(
    components: Components, browser: Any, tmp_path: Path
) -> None:
    go = threading.Event()

    def hold(number: int) -> None:
        """Each answer waits after its first word until released: the test sees it mid-way."""
        if number == 1:
            assert go.wait(30)
            go.clear()

    model = FakeChatModel(before_chunk=hold).enqueue(  # grounded: the grounding check lets both
        "Blenders have a **two year** warranty from delivery.",
        "The Barista Pro espresso machine has a three year warranty.",
    )
    components.overrides["chat_model"] = model
    for name in ("chat_model", "assistant"):
        components.__dict__.pop(name, None)
    recorded: list[tuple[str, int | None, bool]] = []
    if getattr(components.assistant, "feedback", None) is None:
        components.assistant.feedback = lambda cid, seq, positive: recorded.append(
            (cid, seq, positive)
        )  # type: ignore[attr-defined]
    else:
        real = components.assistant.feedback

        def feedback(cid: str, seq: int | None, positive: bool) -> None:
            recorded.append((cid, seq, positive))
            real(cid, seq, positive)

        components.assistant.feedback = feedback  # type: ignore[method-assign]

    with serving(create_app(components)) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/")
        page.locator("#message textarea").wait_for()

        # streamed: the first word shows while the rest is still being generated, sources after
        page.locator("#message textarea").fill("How long is the warranty on blenders?")
        page.locator("#send").click()
        bot = page.locator("#chatbot .message.bot").last
        bot.get_by_text("Blenders").wait_for()
        assert "warranty from delivery" not in bot.inner_text()
        assert "Sources" not in bot.inner_text()
        go.set()
        bot.get_by_text("warranty.md").wait_for()
        assert "two year warranty from delivery" in bot.inner_text()
        assert "Blender warranty" in bot.inner_text()
        # the evidence: the passage's sentence, quoted under its source
        quote = bot.locator("blockquote").filter(has_text=WARRANTY_SENTENCE)
        assert quote.count() == 1 and "Sources" in bot.inner_text().split(WARRANTY_SENTENCE)[0]
        panel = page.locator("#state-panel")
        panel.get_by_text("warranty.md").wait_for()
        assert WARRANTY_SENTENCE in panel.inner_text(), "the side panel shows the quote too"
        assert "Turns: 1" in panel.inner_text() and "Handoff: no" in panel.inner_text()
        conversation_id = page.locator("#conversation-id code").inner_text()
        assert len(conversation_id) == 32
        page.screenshot(path=str(tmp_path / "web-chat.png"))
        if os.environ.get("UPDATE_WEB_SCREENSHOT"):
            DOCS.mkdir(exist_ok=True)
            shutil.copyfile(tmp_path / "web-chat.png", DOCS / "web-chat.png")

        # thumbs down on that answer reaches the dialog manager
        page.locator("#chatbot button[aria-label='Dislike']").last.click()
        page.locator("#notice").get_by_text("Thanks").wait_for()
        assert recorded and recorded[0][0] == conversation_id and recorded[0][2] is False

        # admin: upload a document into the knowledge base
        manual = tmp_path / "espresso.md"
        manual.write_text(
            "# Barista Pro espresso machine\n\n"
            "The Barista Pro espresso machine has a warranty of three years.\n"
        )
        page.get_by_role("tab", name="Admin").click()
        page.locator("#upload input[type=file]").set_input_files(str(manual))
        page.locator("#upload").get_by_text("espresso.md").wait_for()
        page.locator("#ingest").click()
        page.locator("#ingest-report").get_by_text("Added 1 file").wait_for()
        page.locator("#kb-status").get_by_text("3 documents").wait_for()
        assert (Path(components.settings.upload_dir) / "documents" / "espresso.md").is_file()

        # ask about it: its answer cites the uploaded file
        page.get_by_role("tab", name="Chat").click()
        page.locator("#message textarea").fill(
            "What warranty does the Barista Pro espresso machine have?"
        )
        page.locator("#message textarea").press("Enter")
        go.set()
        page.locator("#chatbot .message.bot").nth(1).get_by_text("espresso.md").wait_for()
        assert "three year" in page.locator("#chatbot .message.bot").nth(1).inner_text()
        assert "Barista Pro" in model.requests[-1]["messages"][-1]["content"] or any(
            "Barista Pro" in str(m["content"]) for m in model.requests[-1]["messages"]
        )

        # new conversation empties the chat; resume brings both answers back
        page.locator("#new-conversation").click()
        page.locator("#conversation-id").get_by_text("New conversation").wait_for()
        assert page.locator("#chatbot .message.bot").count() == 0
        page.locator("#resume-id textarea, #resume-id input").first.fill(conversation_id)
        page.locator("#resume").click()
        page.locator("#chatbot .message.bot").nth(1).get_by_text(
            "has a three year warranty"
        ).wait_for()
        assert "Turns: 2" in page.locator("#state-panel").inner_text()

        # handoff shows in the side panel; an agent hands the conversation back
        page.locator("#message textarea").fill("/handoff")
        page.locator("#send").click()
        page.locator("#state-panel").get_by_text("with a human").wait_for()
        page.locator("#hand-back").click()
        page.locator("#state-panel").get_by_text("Handoff: no").wait_for()
        page.close()
    numbered = components.store.numbered_events(conversation_id)
    answers = [seq for seq, event in numbered if event.type == "bot"]
    feedback = [event for _, event in numbered if event.type == "feedback"]
    assert len(feedback) == 1, "the thumbs-down is stored as one event"
    assert feedback[0].target_seq == answers[0]  # type: ignore[attr-defined]
    assert feedback[0].positive is False  # type: ignore[attr-defined]


def test_closing_the_page_mid_answer_frees_the_conversation(
    components: Components, browser: Any
) -> None:
    import time

    import httpx

    from tests.ui.test_api import long_answer

    # a minute of streaming: closing the page must free the conversation long before it would end
    slow = FakeChatModel(chunk_delay_s=0.05).enqueue(long_answer(1200), "Two years.")
    components.overrides["chat_model"] = slow
    for name in ("chat_model", "assistant"):
        components.__dict__.pop(name, None)
    with serving(create_app(components)) as base:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/")
        page.locator("#message textarea").fill("blender warranty")
        page.locator("#send").click()
        page.locator("#chatbot .message.bot").last.get_by_text("Here is how").wait_for()
        conversation_id = page.locator("#conversation-id code").inner_text()
        page.close()
        started = time.monotonic()
        body = {"text": "blender warranty?", "conversation_id": conversation_id}
        reply = httpx.post(base + "/api/v1/messages", json=body, timeout=60)
        assert reply.json()["answer"] == "Two years." and time.monotonic() - started < 40
    types = [event.type for event in components.assistant.history(conversation_id)]
    assert types == ["user", "answer_failed", "user", "bot"]
