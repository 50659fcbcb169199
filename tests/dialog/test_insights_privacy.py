"""Redaction: personal data masked in stored text and in exports, slot values kept for the tools;
the settings name the kinds."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assistant_core.db import Database
from assistant_core.errors import ConfigError
from assistant_core.settings import REDACT_KINDS, load_settings
from dialog import events as ev
from dialog.insights import Redactor, find_gaps, gaps_csv
from dialog.insights.redaction import MASKS, store_hook
from dialog.messages import Message
from dialog.records import EventRow
from tests.dialog.conftest import ShopFactory
from tests.fakes import FakeChatModel, HashingEmbedder

pytestmark = pytest.mark.unit

ALL = Redactor(tuple(MASKS))


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail ann.lee+shop@example.co.uk now", "mail [email] now"),
        ("call +31 20 555 0142 or (020) 555-0142", "call [phone] or [phone]"),
        ("card 4111 1111 1111 1111 please", "card [card] please"),
        ("IBAN NL91ABNA0417164300", "IBAN [iban]"),
        ("from 192.168.10.7 today", "from [ip] today"),
    ],
)
def test_each_kind_is_masked(text: str, masked: str) -> None:
    assert ALL.text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "order NW-1042 placed on 2026-11-20",
        "tracking 1Z999AA10123456784",
        "it costs €4.95, ships in 3–5 days",
        "order 4111111111111112 is not a card (its Luhn digit is wrong)",
        "version 1.2.3 of the app",
    ],
)
def test_order_ids_dates_and_prices_are_left_alone(text: str) -> None:
    redacted = ALL.text(text)
    assert "[card]" not in redacted and "[phone]" not in redacted
    assert "[email]" not in redacted and "[ip]" not in redacted


def test_only_the_configured_kinds_are_masked() -> None:
    only_emails = Redactor.from_setting("emails")
    assert only_emails.text("ann@example.com +31 20 555 0142") == "[email] +31 20 555 0142"
    assert not Redactor.from_setting("")


def test_settings_know_the_same_kinds_and_reject_others() -> None:
    assert set(REDACT_KINDS) == set(MASKS)
    assert load_settings(redact="emails, phones").redact == "emails, phones"
    with pytest.raises(ConfigError, match="ASSISTANT_REDACT"):
        load_settings(redact="emails,passports")


def test_stored_text_is_masked_and_the_slot_keeps_the_value(
    database: Database, shop: ShopFactory
) -> None:
    assistant = shop(database, FakeChatModel(), route_with_model=False)
    assistant.store.redact = store_hook("emails,phones")
    assistant.handle(Message("Do you sell refurbished laptops?", "c1"))
    text = "My email is ann@example.com and my phone +31 20 555 0142"
    assistant.handle(Message(text, "c1"))
    with database.session() as session:
        stored = session.scalars(select(EventRow.payload).where(EventRow.type == "user")).all()
    assert stored[-1]["text"] == "My email is [email] and my phone [phone]"
    assert assistant.state("c1").slots["email"].value == "ann@example.com"
    slot = [e for e in assistant.history("c1") if isinstance(e, ev.SlotSet)]
    assert slot and slot[0].value == "ann@example.com"  # what the tools need, while it lives


def test_gap_exports_are_masked_even_for_text_stored_before_redaction(
    database: Database, shop: ShopFactory
) -> None:
    assistant = shop(database, FakeChatModel(), route_with_model=False)
    assistant.handle(Message("Can you email the warranty to ann@example.com?", "c1"))
    embed = HashingEmbedder().embed
    plain = find_gaps(database.engine, embed)
    assert "ann@example.com" in plain[0].examples[0]
    masked = find_gaps(database.engine, embed, redact=Redactor.from_setting("emails").text)
    assert masked[0].examples == ["Can you email the warranty to [email]?"]
    assert "ann@example.com" not in gaps_csv(masked)


def test_the_wiring_gives_the_store_the_configured_redaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from assistant.wiring import Components

    monkeypatch.setenv("ASSISTANT_REDACT", "emails")
    parts = Components(load_settings())
    try:
        assert parts.store.redact is not None
        assert parts.store.redact("user", {"text": "a@b.example"}) == {"text": "[email]"}
    finally:
        parts.close()
