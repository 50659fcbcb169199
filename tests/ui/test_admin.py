"""The two web pages apart: the customer's chat holds no admin control and resumes only its own
browser's conversations; the admin area has its own login, and its actions go through the channel
and into the audit trail. The parts that need no browser."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import anyio
import httpx
import pytest
from matplotlib.figure import Figure
from pydantic import SecretStr

from assistant.wiring import Components
from assistant_core.settings import Settings
from dialog.messages import Message
from tests.fakes import FakeChatModel
from tests.ui.conftest import serving
from ui.access_http import AccessControl
from ui.admin.desk import AdminDesk
from ui.admin.insights import InsightsAdmin
from ui.admin.knowledge import KnowledgeAdmin
from ui.admin.review import ReviewAdmin, ReviewQuery, search_conversations
from ui.channel import LOCAL, AccessDenied
from ui.runtime import Runtime
from ui.server import create_app
from ui.web import WebChat, build_blocks

pytestmark = pytest.mark.unit
T = TypeVar("T")
ANSWER = "The warranty on blenders lasts two years from delivery."
BOSS = cast(Any, SimpleNamespace(username="boss"))
"""The request Gradio hands a handler behind the admin login."""
ADMIN_CONTROLS = {"upload", "ingest", "kb-status", "hand-back", "resume-id", "documents"}


def on_worker_thread(function: Callable[[], T]) -> T:
    """As Gradio runs a synchronous handler: on a worker thread of an event loop."""

    async def run() -> T:
        return await anyio.to_thread.run_sync(function)

    return asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgresql"])
def ui_settings(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Every test on both databases (the review's search is SQL of its own; skipped where no
    PostgreSQL answers)."""
    if request.param == "postgresql":
        monkeypatch.setenv("ASSISTANT_DATABASE_URL", request.getfixturevalue("postgres_url"))
    settings = Settings()
    assert settings.database_url.startswith(str(request.param))
    return settings


@pytest.fixture
def answering(model: FakeChatModel) -> FakeChatModel:
    model.default = ANSWER
    return model


@pytest.fixture
def guarded(components: Components) -> Runtime:
    """A runtime with issue 17's policy installed in the channel, as the server runs it."""
    access = AccessControl(components.database.session)
    return Runtime(
        components, authorize=access.hook(lambda why, status: AccessDenied(why, status=status))
    )


def test_admin_area_is_not_served_without_its_login(components: Components) -> None:
    assert components.settings.admin_auth is None
    with serving(create_app(components)) as base:
        for path in ("/admin", "/admin/", "/admin/config"):
            assert httpx.get(base + path).status_code == 404, path


def test_admin_area_has_its_own_login_apart_from_the_customers(
    components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(components.settings, "auth", SecretStr("customer:c-pass"))
    monkeypatch.setattr(components.settings, "admin_auth", SecretStr("boss:b-pass"))
    with serving(create_app(components)) as base, httpx.Client(base_url=base) as client:
        assert client.get("/admin").headers["location"].endswith("/admin/")
        assert client.get("/admin/config").status_code == 401
        customer = {"username": "customer", "password": "c-pass"}
        assert client.post("/login", data=customer).status_code == 200
        assert client.post("/admin/login", data=customer).status_code == 400
        assert client.get("/admin/config").status_code == 401, "the customer login opens no admin"
        admin = {"username": "boss", "password": "b-pass"}
        assert client.post("/admin/login", data=admin).status_code == 200
        assert client.get("/admin/config").status_code == 200
    with serving(create_app(components)) as base, httpx.Client(base_url=base) as client:
        assert client.post("/admin/login", data=admin).status_code == 200
        assert client.get("/config").status_code == 401, "nor the admin's the customer page"


def test_the_customer_page_holds_no_admin_control(components: Components) -> None:
    blocks = build_blocks(WebChat(Runtime(components)))
    ids = {getattr(block, "elem_id", None) for block in blocks.blocks.values()}
    kinds = {type(block).__name__ for block in blocks.blocks.values()}
    assert ids.isdisjoint(ADMIN_CONTROLS) and "File" not in kinds and "Tab" not in kinds
    handlers = {fn.name for fn in blocks.fns.values()}
    assert handlers <= {
        "respond",
        "new_conversation",
        "resume",
        "feedback",
        "own_conversations",
        "load_example",
    }


def test_resume_offers_only_this_browsers_conversations(
    guarded: Runtime, answering: FakeChatModel
) -> None:
    alice, bob = WebChat(guarded), WebChat(guarded)
    steps = on_worker_thread(lambda: list(alice.respond("blender warranty?", [], "", "", {})))
    conversation_id, token, owned = steps[0][2], steps[0][5], steps[0][6]
    assert conversation_id.startswith("web:") and token and owned[conversation_id]["token"] == token
    assert steps[-1][1][-1]["content"].startswith(ANSWER)

    history = alice.resume(conversation_id, owned)[0]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert bob.resume(conversation_id, {})[4] == "Choose one of your conversations."
    forged = {conversation_id: {"token": "guessed"}}
    assert bob.resume(conversation_id, forged)[4] == "That conversation is no longer available."
    assert bob.own_conversations({}).choices == []
    assert [value for _, value in alice.own_conversations(owned).choices] == [conversation_id]


def test_admin_uploads_and_removals_are_audited_with_the_admins_login(
    components: Components, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gradio = tmp_path / "gradio"
    gradio.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio))
    (gradio / "espresso.md").write_text("# Espresso\n\nThe Barista Pro has three years.\n")
    knowledge = KnowledgeAdmin(AdminDesk(Runtime(components)))

    report, status, _ = knowledge.upload([str(gradio / "espresso.md")], BOSS)
    assert "Added 1 file" in report and "3 documents" in status
    source = next(d.source for d in knowledge.documents() if d.source.endswith("espresso.md"))
    assert "Removed" in knowledge.remove([source], BOSS)
    assert components.knowledge.count()[0] == 2

    entries = knowledge.desk.audit.recent(5)
    assert [(e.actor, e.action) for e in entries] == [
        ("admin:boss", "remove_documents"),
        ("admin:boss", "upload"),
    ]
    assert entries[0].target == source and entries[1].target == "espresso.md"


def _history(runtime: Runtime) -> None:
    """Three conversations: a rated one on the web, a handed-off one on the API, a plain one."""
    channel = runtime.channel
    channel.run(LOCAL, Message("How long is the blender warranty?", "rated", channel="web"))
    channel.feedback(LOCAL, "rated", None, False)
    channel.run(LOCAL, Message("Do loyalty points expire?", "handed", channel="api"))
    channel.run(LOCAL, Message("/handoff", "handed", channel="api"))
    channel.run(LOCAL, Message("Gift card question", "plain", channel="web"))


def _found(components: Components, **filters: Any) -> list[str]:
    query = ReviewQuery(**filters)
    return sorted(
        f.conversation_id for f in search_conversations(components.database.engine, query)
    )


def test_review_finds_conversations_by_text_channel_date_feedback_and_handoff(
    components: Components, answering: FakeChatModel
) -> None:
    _history(Runtime(components))
    today = datetime.now(UTC).date()
    assert _found(components) == ["handed", "plain", "rated"]
    assert _found(components, text="LOYALTY") == ["handed"]
    assert "rated" in _found(components, text="two years from delivery"), "answers are searched"
    assert _found(components, text="100%") == []
    assert _found(components, channel="api") == ["handed"]
    assert _found(components, feedback="thumbs down") == ["rated"]
    assert _found(components, feedback="thumbs up") == []
    assert _found(components, feedback="none") == ["handed", "plain"]
    assert _found(components, handoff="handed off") == ["handed"]
    assert _found(components, handoff="not handed off") == ["plain", "rated"]
    assert _found(components, since=today, until=today) == ["handed", "plain", "rated"]
    assert _found(components, since=today + timedelta(days=1)) == []
    assert _found(components, until=today - timedelta(days=1)) == []

    review = ReviewAdmin(AdminDesk(Runtime(components)))
    rows, count = review.search("", "any", "", "", "thumbs down", "any")
    assert count.startswith("1 conversation") and rows[0][0] == "rated" and rows[0][-1] == 1
    assert review.search("", "any", "yesterday", "", "any", "any")[1].startswith("Dates are")


def test_review_opens_a_transcript_and_hands_back_with_an_audit_entry(
    components: Components, answering: FakeChatModel
) -> None:
    runtime = Runtime(components)
    _history(runtime)
    review = ReviewAdmin(AdminDesk(runtime))
    transcript, panel, notice = review.open("rated", BOSS)
    assert "**Customer:** How long is the blender warranty?" in transcript
    assert "warranty.md" in transcript and ANSWER in transcript and "Turns:** 1" in panel
    assert review.open("nobody", BOSS)[2] == "No conversation with id `nobody`."

    assert "with a human" in review.open("handed", BOSS)[1]
    panel, notice = review.hand_back("handed", BOSS)
    assert notice.startswith("Handed back") and "Handoff:** no" in panel
    assert review.hand_back("handed", BOSS)[1] == "This conversation is not handed off."
    assert [(e.actor, e.action, e.target) for e in review.desk.audit.recent(5)] == [
        ("admin:boss", "hand_back", "handed")
    ]


def test_insights_tab_shows_the_figures_plots_gaps_and_csv(
    components: Components, answering: FakeChatModel
) -> None:
    _history(Runtime(components))
    tab = InsightsAdmin(AdminDesk(Runtime(components)))
    headline, daily, channels, gaps, report_csv, gaps_csv = tab.show("7 days")
    assert "| conversations | 3 |" in headline and "| handed off | 1 (33.3%) |" in headline
    assert isinstance(daily, Figure) and isinstance(channels, Figure)
    assert gaps and gaps[0][0] == 1
    assert Path(report_csv).read_text().startswith("section,name,metric,value\n")
    assert Path(gaps_csv).read_text().startswith("rank,size,abstained,thumbs_down,handoff,")
    assert tab.show("all", False)[3] == [], "the gaps can be left out (no embedding model)"


def test_a_first_message_while_the_database_is_away_says_so(components: Components) -> None:
    def away(*_: Any) -> Any:
        raise sqlite3.OperationalError("database is locked")

    chat = WebChat(Runtime(components), cast(Any, SimpleNamespace(open=away)))
    steps = list(chat.respond("blender warranty?", [], "", "", {}))
    assert len(steps) == 1 and steps[0][1][0] == {"role": "user", "content": "blender warranty?"}
    assert steps[0][1][1]["content"].startswith("Sorry, ") and steps[0][2]["__type__"] == "update"
