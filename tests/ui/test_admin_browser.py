"""The admin area in a real browser (Debian's Chromium driven by Playwright, over a real server):
its own login, an upload the customer's chat then answers from, conversation review with hand back,
the Insights tab's figures and the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from pydantic import SecretStr

from assistant.wiring import Components
from tests.fakes import FakeChatModel
from tests.ui.conftest import serving
from tests.ui.test_web_browser import TIMEOUT_MS, browser  # noqa: F401 - the fixture
from ui.server import create_app

pytestmark = pytest.mark.integration

QUESTION = "What warranty does the Barista Pro espresso machine have?"


def log_in(page: Any, user: str, password: str) -> None:
    """Fill Gradio's login form and send it."""
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def test_admin_logs_in_uploads_reviews_and_reads_insights(
    components: Components,
    browser: Any,  # noqa: F811 - the fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(components.settings, "admin_auth", SecretStr("boss:b-pass"))
    model = FakeChatModel().enqueue("The Barista Pro espresso machine has a three year warranty.")
    components.overrides["chat_model"] = model
    for name in ("chat_model", "assistant"):
        components.__dict__.pop(name, None)
    manual = tmp_path / "espresso.md"
    manual.write_text(
        "# Barista Pro espresso machine\n\n"
        "The Barista Pro espresso machine has a warranty of three years.\n"
    )
    with serving(create_app(components)) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        admin = context.new_page()
        admin.set_default_timeout(TIMEOUT_MS)

        # the admin area asks for its login; a wrong one is refused
        admin.goto(base + "/admin")
        log_in(admin, "boss", "wrong")
        admin.get_by_text("Incorrect Credentials").wait_for()
        assert admin.locator("#upload").count() == 0
        log_in(admin, "boss", "b-pass")

        # Knowledge: upload a document into the knowledge base
        admin.locator("#kb-status").get_by_text("2 documents").wait_for()
        admin.locator("#upload input[type=file]").set_input_files(str(manual))
        admin.locator("#upload").get_by_text("espresso.md").wait_for()
        admin.locator("#ingest").click()
        admin.locator("#ingest-report").get_by_text("Added 1 file").wait_for()
        admin.locator("#kb-status").get_by_text("3 documents").wait_for()
        expect(admin.locator("#documents")).to_contain_text("espresso.md")
        assert (Path(components.settings.upload_dir) / "documents" / "espresso.md").is_file()

        # the customer's chat answers from it, and the customer asks for a person
        customer = context.new_page()
        customer.set_default_timeout(TIMEOUT_MS)
        customer.goto(base + "/")
        customer.locator("#message textarea").fill(QUESTION)
        customer.locator("#send").click()
        answer = customer.locator("#chatbot .message.bot").last  # after the greeting
        answer.get_by_text("espresso.md").wait_for()
        assert "three year" in answer.inner_text()
        conversation_id = customer.locator("#conversation-id code").inner_text()
        customer.locator("#message textarea").fill("/handoff")
        customer.locator("#send").click()
        customer.locator("#state-panel").get_by_text("with a human").wait_for()

        # Conversations: find it by text, open it with its sources, hand it back
        admin.get_by_role("tab", name="Conversations").click()
        admin.locator("#review-text textarea, #review-text input").first.fill("Barista")
        admin.locator("#review-search").click()
        admin.locator("#review-count").get_by_text("1 conversation").wait_for()
        cells = admin.locator("#review-results").get_by_role("gridcell")
        cells.filter(has_text=conversation_id).first.click()
        admin.locator("#transcript").get_by_text(f"Customer: {QUESTION}", exact=True).wait_for()
        assert "espresso.md" in admin.locator("#transcript").inner_text()
        admin.locator("#review-state").get_by_text("with a human").wait_for()
        admin.locator("#hand-back").click()
        admin.locator("#review-notice").get_by_text("Handed back").wait_for()
        admin.locator("#review-state").get_by_text("Handoff: no").wait_for()

        # Insights: the figures, both plots and the CSV downloads
        admin.get_by_role("tab", name="Insights").click()
        admin.locator("#figures").get_by_text("resolved without a person").wait_for()
        rows = [r.split() for r in admin.locator("#figures tr").all_inner_texts()]
        assert ["conversations", "1"] in rows and ["handed", "off", "1", "(100.0%)"] in rows
        admin.locator("#daily-plot img").wait_for()
        admin.locator("#channel-plot img").wait_for()
        for file, name, header in (
            ("#report-csv", "insights-report.csv", "section,name,metric,value\n"),
            ("#gaps-csv", "knowledge-gaps.csv", "rank,size,abstained,thumbs_down,handoff,"),
        ):
            link = admin.locator(f"{file} a[download='{name}']")
            link.wait_for()
            assert admin.request.get(link.get_attribute("href")).text().startswith(header)
        admin.screenshot(path=str(tmp_path / "insights.png"))

        # Audit: the upload and the hand back, by the admin's login
        admin.get_by_role("tab", name="Audit").click()
        cells = admin.locator("#audit").get_by_role("gridcell")
        cells.filter(has_text="hand_back").first.wait_for()
        shown = cells.all_inner_texts()
        assert "upload" in shown and shown.count("admin:boss") == 2
        context.close()
