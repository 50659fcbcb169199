"""Rule extractors, slot validation, the LM layer's provenance, and the sentiment labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant_core.chat_model import Completion
from assistant_core.errors import LLMError
from dialog.domain import Domain, DomainError, SlotSpec
from dialog.extract import extract_rules, extract_with_model
from dialog.sentiment import label_turn
from tests.fakes import FakeChatModel, Reply

pytestmark = pytest.mark.unit

TYPES = {
    "order_id": "order_id",
    "email": "email",
    "phone": "phone",
    "date": "date",
    "amount": "amount",
    "note": "text",
}


@pytest.mark.parametrize(
    ("text", "slot", "value", "span"),
    [
        ("where is my order 1042?", "order_id", "1042", "order 1042"),
        ("it's ab-1043 I think", "order_id", "AB-1043", "ab-1043"),
        ("ticket XYZ 20451 still open", "order_id", "XYZ-20451", "XYZ 20451"),
        ("Order #1044 please", "order_id", "1044", "Order #1044"),
        (
            "mail me at Ann.Lee+shop@Example.co.uk.",
            "email",
            "ann.lee+shop@example.co.uk",
            "Ann.Lee+shop@Example.co.uk",
        ),
        ("call +44 20 7946 0958 after six", "phone", "+442079460958", "+44 20 7946 0958"),
        ("it arrived on 2026-03-12", "date", "2026-03-12", "2026-03-12"),
        ("delivered 12/03/2026", "date", "2026-03-12", "12/03/2026"),
        ("bought on 3rd March 2026", "date", "2026-03-03", "3rd March 2026"),
        ("I paid €42.90 for it", "amount", "42.90 EUR", "€42.90"),
        ("refund of 19,5 euros", "amount", "19.50 EUR", "19,5 euros"),
    ],
)
def test_rules_find_values_with_their_span(text: str, slot: str, value: str, span: str) -> None:
    found = {e.slot: e for e in extract_rules(text, TYPES)}
    assert (
        found[slot].value == value
        and found[slot].span == span
        and found[slot].extractor == f"rule:{slot}"
    )


def test_rules_leave_free_text_and_non_matches_alone() -> None:
    found = {
        e.slot for e in extract_rules("the 1042 mugs were lovely, 2026-02-30 is no date", TYPES)
    }
    assert found == set()


def test_a_bare_number_is_an_order_id_only_when_asked_for_and_then_doubtful() -> None:
    assert extract_rules("1042", {"order_id": "order_id"}) == []
    (found,) = extract_rules("1042", {"order_id": "order_id"}, requested="order_id")
    assert found.value == "1042" and found.confidence < 0.7


def test_a_slot_prefix_gives_a_bare_id_the_company_form() -> None:
    spec = SlotSpec(type="order_id", prompt="?", prefix="AB-", pattern=r"AB-\d{4}")
    assert spec.validate_value("1042") == "AB-1042"
    assert spec.validate_value("order 1042") == "AB-1042"
    assert spec.validate_value("ab-1042") == "AB-1042"
    assert spec.validate_value("CD-1042") is None


def test_ordinary_words_before_numbers_are_no_ids() -> None:
    assert extract_rules("it took 1042 days, in 2026 maybe", {"order_id": "order_id"}) == []


def test_slot_specs_validate_type_pattern_choices_and_length() -> None:
    assert SlotSpec(type="email", prompt="?").validate_value("not an email") is None
    assert SlotSpec(prompt="?", choices=["Small", "Large"]).validate_value("large") == "Large"
    assert SlotSpec(prompt="?", choices=["Small", "Large"]).validate_value("huge") is None
    assert SlotSpec(prompt="?", pattern=r"\d{4}").validate_value("12345") is None
    assert SlotSpec(prompt="?", min_length=3).validate_value("ok") is None


def test_lm_extraction_uses_a_json_schema_and_rates_paraphrases_low() -> None:
    model = FakeChatModel().enqueue(
        Completion(text='{"reason": "stained", "size": "the large one"}')
    )
    found = {
        e.slot: e
        for e in extract_with_model(
            model, "I want the large one, it is stained", {"reason": "why", "size": "which"}
        )
    }
    assert found["reason"].confidence == 0.85 and found["reason"].span == "stained"
    assert found["size"].span == "the large one"
    schema = model.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["reason", "size"] and schema["additionalProperties"] is False
    model.enqueue(Completion(text='{"reason": "damaged goods", "size": ""}'))
    (only,) = extract_with_model(model, "it is stained", {"reason": "why", "size": "which"})
    assert only.confidence == 0.5 and only.span == ""


@pytest.mark.parametrize(
    "reply", [LLMError("down"), Completion(text="not json"), Completion(text="[1]")]
)
def test_lm_extraction_failures_give_nothing(reply: Reply) -> None:
    assert extract_with_model(FakeChatModel().enqueue(reply), "text", {"reason": "why"}) == []


def test_domain_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "domain.yaml"
    bad.write_text(
        "slots: {a: {prompt: x}}\nforms: {f: {description: d, slots: [a, b], submit: t}}\n"
    )
    with pytest.raises(DomainError, match="undeclared slots"):
        Domain.load(bad)
    bad.write_text("slots: {a: {prompt: x, typo: 1}}\n")
    with pytest.raises(DomainError, match="typo"):
        Domain.load(bad)
    toml = tmp_path / "domain.toml"
    toml.write_text('[slots.email]\ntype = "email"\nprompt = "Your email?"\n')
    assert Domain.load(toml).slots["email"].type == "email"


@pytest.mark.parametrize(
    ("text", "sentiment", "urgency"),
    [
        ("How long does shipping take?", "neutral", "normal"),
        ("Thanks, that was helpful", "positive", "normal"),
        ("My parcel arrived damaged", "negative", "normal"),
        ("This is the worst service ever", "angry", "normal"),
        ("WHERE IS MY PARCEL I ORDERED IT WEEKS AGO", "angry", "high"),
        ("It arrived broken!!", "angry", "high"),
        ("I need this urgently, please", "neutral", "high"),
    ],
)
def test_turn_labels(text: str, sentiment: str, urgency: str) -> None:
    label = label_turn(text)
    assert (label.sentiment, label.urgency) == (sentiment, urgency)


def test_lm_output_cut_at_max_tokens_still_counts() -> None:
    model = FakeChatModel().enqueue(
        Completion(text='{"reason": "the throw arrived with a big st', finish_reason="length")
    )
    (found,) = extract_with_model(model, "the throw arrived with a big stain", {"reason": "why"})
    assert found.value == "the throw arrived with a big st" and found.confidence == 0.85


def test_one_email_fills_one_slot_the_asked_for_one_first() -> None:
    types = {"email": "email", "current_email": "email"}
    assert [e.slot for e in extract_rules("to new@example.com", types)] == ["email"]
    found = extract_rules("it is old@example.com", types, requested="current_email")
    assert [(e.slot, e.value) for e in found] == [("current_email", "old@example.com")]
