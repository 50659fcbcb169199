"""The customer's web chat in a real browser (Debian's Chromium driven by Playwright, over a real
server): answers streamed with sources, no admin control, "Resume" for its own conversations."""

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
ADMIN_CONTROLS = ("#upload", "#ingest", "#kb-status", "#hand-back", "#resume-id", "#documents")
"""What the admin area holds and the customer's page must not."""


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


def test_chat_streams_with_sources_and_resumes_only_this_browsers_conversations(
    components: Components, browser: Any, tmp_path: Path
) -> None:
    go = threading.Event()

    def hold(number: int) -> None:
        """The first answer waits after its first word until released: the test sees it mid-way."""
        if number == 1 and not go.is_set():
            assert go.wait(30)

    model = FakeChatModel(before_chunk=hold).enqueue(  # grounded: the grounding check lets it
        "Blenders have a **two year** warranty from delivery.",
        "Loyalty points expire after eighteen months.",
    )
    components.overrides["chat_model"] = model
    for name in ("chat_model", "assistant"):
        components.__dict__.pop(name, None)
    recorded: list[tuple[str, int | None, bool]] = []
    real = components.assistant.feedback

    def feedback(cid: str, seq: int | None, positive: bool) -> int:
        recorded.append((cid, seq, positive))
        return real(cid, seq, positive)

    components.assistant.feedback = feedback  # type: ignore[method-assign]

    with serving(create_app(components)) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/")
        page.locator("#message textarea").wait_for()
        # a new conversation opens with the persona's greeting, the assistant's first message
        greeting = components.persona.greeting
        assert greeting, "the demo persona greets"
        greeted = page.locator("#chatbot .message.bot")
        greeted.get_by_text(greeting).wait_for()
        assert greeted.count() == 1 and greeted.first.is_visible()
        for control in ADMIN_CONTROLS:
            assert page.locator(control).count() == 0, f"{control} on the customer's page"
        assert page.get_by_role("tab").count() == 0 and page.get_by_text("Admin").count() == 0

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
        assert conversation_id.startswith("web:") and len(conversation_id) > 32
        page.screenshot(path=str(tmp_path / "web-chat.png"))
        if os.environ.get("UPDATE_WEB_SCREENSHOT"):
            DOCS.mkdir(exist_ok=True)
            shutil.copyfile(tmp_path / "web-chat.png", DOCS / "web-chat.png")

        # thumbs down on that answer reaches the dialog manager
        page.locator("#chatbot button[aria-label='Dislike']").last.click()
        page.locator("#notice").get_by_text("Thanks").wait_for()
        assert recorded and recorded[0][0] == conversation_id and recorded[0][2] is False

        # new conversation empties the chat but for the greeting; "Resume" offers this browser's
        # conversation, with its history and no greeting
        page.locator("#new-conversation").click()
        page.locator("#conversation-id").get_by_text("New conversation").wait_for()
        page.locator("#chatbot .message.bot").get_by_text(greeting).wait_for()
        assert page.locator("#chatbot .message.bot").count() == 1
        assert page.locator("#chatbot .message.user").count() == 0
        choose(page, "#own-conversations", "How long is the warranty on blenders?")
        page.locator("#resume").click()
        page.locator("#chatbot .message.bot").get_by_text("two year warranty").wait_for()
        page.locator("#conversation-id").get_by_text(conversation_id).wait_for()
        assert page.locator("#chatbot .message.bot").get_by_text(greeting).count() == 0
        assert "Turns: 1" in page.locator("#state-panel").inner_text()

        # the list survives a reload (the browser keeps it); the handoff shows in the panel
        page.reload()
        page.locator("#message textarea").fill("/handoff")
        page.locator("#send").click()
        page.locator("#state-panel").get_by_text("with a human").wait_for()
        assert page.locator("#hand-back").count() == 0, "handing back is the admin's"
        page.locator("#own-conversations input").click()
        page.get_by_role("option").first.wait_for()
        assert page.get_by_role("option").count() == 2
        page.keyboard.press("Escape")

        # another browser sees none of these conversations, and no way to type an id
        stranger = browser.new_context().new_page()
        stranger.set_default_timeout(TIMEOUT_MS)
        stranger.goto(base + "/")
        stranger.locator("#message textarea").wait_for()
        stranger.locator("#own-conversations input").click()
        assert stranger.get_by_role("option").count() == 0
        assert stranger.locator("#resume-id").count() == 0
        stranger.locator("#resume").click()
        stranger.locator("#notice").get_by_text("Choose one of your conversations").wait_for()
        assert stranger.locator("#chatbot .message.bot").all_inner_texts() == [greeting]
        context.close()
    numbered = components.store.numbered_events(conversation_id)
    answers = [seq for seq, event in numbered if event.type == "bot"]
    feedback_events = [event for _, event in numbered if event.type == "feedback"]
    assert len(feedback_events) == 1, "the thumbs-down is stored as one event"
    assert feedback_events[0].target_seq == answers[0]  # type: ignore[attr-defined]
    assert feedback_events[0].positive is False  # type: ignore[attr-defined]


def choose(page: Any, dropdown: str, label: str) -> None:
    """Pick an option of a Gradio dropdown by the start of its label."""
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=label).first.click()


def test_closing_the_page_mid_answer_frees_the_conversation(
    components: Components, browser: Any
) -> None:
    from tests.ui.test_api import long_answer

    # a minute of streaming: closing the page must free the conversation long before it would
    # end; were it still held, the next turn would give up waiting for it (busy) after 10 s
    components.settings.turn_lock_timeout_s = 10
    slow = FakeChatModel(chunk_delay_s=0.05).enqueue(long_answer(1200), "Two years.")
    components.overrides["chat_model"] = slow
    for name in ("chat_model", "assistant"):
        components.__dict__.pop(name, None)
    with serving(create_app(components)) as base:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/")
        page.locator("#message textarea").fill("blender warranty")
        page.locator("#send").click()
        page.locator("#chatbot .message.bot").last.get_by_text("Here is how").wait_for()
        conversation_id = page.locator("#conversation-id code").inner_text()
        page.close()

        # the same browser comes back to its conversation and asks again
        again = context.new_page()
        again.set_default_timeout(TIMEOUT_MS)
        again.goto(base + "/")
        choose(again, "#own-conversations", "blender warranty")
        again.locator("#resume").click()
        again.locator("#conversation-id").get_by_text(conversation_id).wait_for()
        again.locator("#message textarea").fill("blender warranty?")
        again.locator("#send").click()
        again.locator("#chatbot .message.bot").last.get_by_text("Two years.").wait_for()
        context.close()
    types = [event.type for event in components.assistant.history(conversation_id)]
    assert types == ["user", "answer_failed", "user", "bot"]
