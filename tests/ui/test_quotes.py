"""The evidence quote of each source in every front end: web chat, terminal, `ask`, export,
REST/SSE and Chatwoot, read from the final reply."""

from __future__ import annotations

import asyncio
import io
from typing import Any, cast

import anyio
import httpx
import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt
from rich.console import Console

from assistant.cli import main
from assistant.cli.app import App
from assistant.wiring import Components
from dialog.events import BotUttered, UserUttered
from dialog.messages import Reply, Source
from tests.ui.conftest import WithService, serving, sse_events
from tests.ui.quoted import ANSWER, HOSTILE_QUOTE, SOURCES, QuotingAssistant
from ui.channel.citations import citations_markdown, quote_markdown
from ui.runtime import Runtime
from ui.server import create_app
from ui.terminal import TerminalChat
from ui.views import export_markdown
from ui.web import WebChat
from ui.webhooks.chatwoot import QUOTE_CHARS, reply_text

pytestmark = pytest.mark.unit
WARRANTY_SENTENCE = "The warranty on blenders lasts two years from delivery."
MD_QUOTE = f"> “Blender warranty  \n> {WARRANTY_SENTENCE}”"
"""SOURCES[0]'s two-line quote (a heading kept with its sentence) as Markdown: hard line breaks."""


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark").render(markdown)


def test_citations_markdown_puts_each_quote_under_its_own_source() -> None:
    text = citations_markdown(SOURCES)
    assert text.startswith(f"[1] Blender warranty — `warranty.md`\n{MD_QUOTE}\n\n[2]")
    html = _html(text)
    assert html.count("<blockquote>") == 2, "one quote per quoted source, none for the third"
    first, second = html.split("</blockquote>")[:2]
    assert f"Blender warranty<br />\n{WARRANTY_SENTENCE}" in first and "[2] Receipts" in second
    assert "[3]" not in first + second, "the source after a quote is not swallowed into it"
    assert "loyalty.md" in html.split("</blockquote>")[2]


def test_a_quote_is_document_text_its_markdown_shows_verbatim() -> None:
    quote = "Use *promo* codes at [checkout](http://evil.example) <b>now</b>\n# not a heading"
    html = _html(quote_markdown(quote))
    assert "<em>" not in html and "<a " not in html and "<b>" not in html and "<h1>" not in html
    assert "*promo*" in html and "[checkout]" in html and "# not a heading" in html
    assert quote_markdown("  \n ") == ""


def test_export_and_stored_refs_carry_the_quote_when_present() -> None:
    refs = [
        {"source": "/docs/warranty.md", "chunk_id": 2, "score": 0.8, "quote": SOURCES[0].quote},
        {"source": "/docs/loyalty.md", "chunk_id": 7, "score": 0.3},
    ]
    events = [UserUttered("How long is the warranty?"), BotUttered("Two years.", refs)]
    exported = export_markdown("c1", events).splitlines()
    at = exported.index("  [1] `warranty.md` (chunk 2)")
    assert exported[at + 1 : at + 4] == ["  > “Blender warranty  ", f"  > {WARRANTY_SENTENCE}”", ""]
    after = exported.index("  [2] `loyalty.md` (chunk 7)")
    assert not any(line.strip().startswith(">") for line in exported[after:])
    listed = citations_markdown(refs)
    assert listed.startswith(f"[1] `warranty.md` (chunk 2)\n{MD_QUOTE}\n\n[2]")


def test_terminal_prints_each_quote_under_its_source_without_escapes() -> None:
    out = io.StringIO()
    chat = TerminalChat(cast(Components, None), console=Console(file=out, width=200))
    chat._print_sources(SOURCES)
    lines = out.getvalue().splitlines()
    assert lines[0] == "  [1] Blender warranty — /docs/warranty.md"
    assert lines[1:3] == ["      “Blender warranty", f"       {WARRANTY_SENTENCE}”"]
    assert lines[3] == "  [2] Receipts — /docs/receipts.md"
    assert lines[4] == "      “Keep the receipt for two years.”"
    assert lines[5] == "  [3] /docs/loyalty.md" and len(lines) == 6
    assert "\x1b" not in out.getvalue() and "pwned" not in out.getvalue()
    assert "cHduZWQ" not in out.getvalue(), "no clipboard payload"
    assert "\u202e" not in out.getvalue()


def test_ask_prints_each_quote_under_its_source(components: Components) -> None:
    app = App()
    app._components = cast(Components, WithService(components, QuotingAssistant()))
    result = CliRunner().invoke(main, ["ask", "How long is the warranty on blenders?"], obj=app)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ANSWER
    err = result.stderr.splitlines()
    at = err.index("  [1] Blender warranty — /docs/warranty.md")
    assert err[at + 1 : at + 3] == ["      “Blender warranty", f"       {WARRANTY_SENTENCE}”"]
    assert err[at + 4] == "      “Keep the receipt for two years.”"
    assert err[at + 5].startswith("  [3]")
    assert "\x1b" not in result.stderr


def test_web_chat_shows_the_final_replys_quotes_under_the_answer(components: Components) -> None:
    chat = WebChat(Runtime(cast(Any, WithService(components, QuotingAssistant()))))

    def collect() -> list[tuple[str, Any]]:
        """The last message and the state panel as the page sees them at each step."""
        respond = chat.respond("How long is the warranty?", [], "c1")
        return [(step[1][-1]["content"], step[4]) for step in respond]

    async def steps() -> list[tuple[str, Any]]:  # on a worker thread, as Gradio runs it
        return await anyio.to_thread.run_sync(collect)

    seen = asyncio.run(steps())
    shown = [content for content, _ in seen]
    panel = seen[-1][1]
    assert len(shown) > 3 and all("Sources" not in text for text in shown[:-1])
    final = shown[-1]
    assert final.startswith(ANSWER + "\n\n**Sources**\n\n[1] Blender warranty")
    assert MD_QUOTE in final, "quotes come from turn.reply, not the first sources"
    assert "> “Keep the receipt for two years.”" in final
    assert "\x1b" not in final and "pwned" not in final and "\u202e" not in final
    assert f"[1] `warranty.md` (chunk 2)\n{MD_QUOTE}" in panel
    history = chat.resume("c1")[0]
    assert history[-1]["content"].startswith(ANSWER + "\n\n**Sources**\n\n[1] `warranty.md`")
    assert MD_QUOTE in history[-1]["content"], "a resumed answer keeps its quotes"


def test_sse_done_and_json_replies_carry_the_final_quotes(components: Components) -> None:
    with serving(create_app(WithService(components, QuotingAssistant()), web=False)) as base:
        sent = httpx.post(f"{base}/api/v1/messages", json={"text": "blender warranty?"})
        assert sent.status_code == 200, sent.text
        assert [s["quote"] for s in sent.json()["sources"]] == [s.quote for s in SOURCES]
        events = sse_events(base, {"text": "blender warranty?"})
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert all(s["quote"] == "" for s in events[0][1]["sources"]), "not known before the answer"
    done = events[-1][1]["sources"]
    assert done[0]["quote"] == SOURCES[0].quote and done[1]["quote"] == HOSTILE_QUOTE


def test_chatwoot_reply_adds_a_short_quote_per_source() -> None:
    long_quote = "Returns are free within thirty days of delivery, " * 8
    sources = [*SOURCES[:1], Source("/docs/returns.md", 9, 0.5, "…", "Returns", quote=long_quote)]
    text = reply_text(Reply("c1", ANSWER, [*sources, SOURCES[2]]))
    lines = text.splitlines()
    assert lines[:3] == [ANSWER, "", "Sources: Blender warranty; Returns; loyalty.md"]
    assert lines[3] == f"“Blender warranty / {WARRANTY_SENTENCE}” (Blender warranty)"
    assert lines[4].startswith("“Returns are free") and lines[4].endswith("…” (Returns)")
    assert len(lines[4]) < QUOTE_CHARS + len("“…” (Returns)") + 1 and len(lines) == 5
    assert (
        reply_text(Reply("c1", "Two years.", [SOURCES[2]])) == "Two years.\n\nSources: loyalty.md"
    )
    hostile = reply_text(Reply("c1", "Keep it.", [SOURCES[1]]))
    assert hostile.endswith("\n“Keep the receipt for two years.” (Receipts)")
