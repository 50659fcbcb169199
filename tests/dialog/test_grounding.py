"""The grounding check: facts found and looked up, loops caught, the stream held back and cut."""

from __future__ import annotations

import pytest

from dialog.answer import GroundedAnswer
from dialog.facts import Evidence, extract_facts, unsupported_facts
from dialog.grounding import GroundedStream
from dialog.loops import is_degenerate, loop_reason
from dialog.messages import Grounding, Source
from dialog.quotes import QuotePicker, units
from tests.fakes import FakeChatModel

pytestmark = pytest.mark.unit

PASSAGE = (
    "Refunds are issued within 5–7 business days. Call +31 20 555 0142 or write to "
    "support@northwind.example. We are open 9:00 to 17:30, Monday to Friday.\n"
    "-o, --output=FILE  write the result to FILE\n"
    "Use `str.rstrip()` to remove trailing whitespace. Standard shipping costs €4.95."
)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("We refund 10% of it.", "percent", "10%"),
        ("Call 123-456-7890 today.", "phone", "123-456-7890"),
        ("Open at 23:13:48.", "time", "23:13:48"),
        ("Limit: 1024 bytes.", "number", "1024"),
        ("Mail help@example.com now.", "email", "help@example.com"),
        ("See https://example.com/help for more.", "url", "https://example.com/help"),
        ("Pass --verbose to see more.", "option", "--verbose"),
        ("Call os.path.join() with both parts.", "identifier", "os.path.join()"),
        ('Click "Reset password" at the top.', "quoted", "Reset password"),
        ("It costs $12.50 per month.", "money", "$12.50"),
        ("Shipped on March 3, 2024.", "date", "March 3, 2024"),
        ("Order NW-1042 left us.", "identifier", "NW-1042"),
    ],
)
def test_each_kind_of_fact_is_found(text: str, kind: str, value: str) -> None:
    assert (kind, value) in [(f.kind, f.text) for f in extract_facts(text)]


def test_list_markers_and_plain_words_are_not_facts() -> None:
    assert extract_facts("1. Open the settings\n2. Choose a new e-mail address") == []


@pytest.mark.parametrize(
    "answer",
    [
        "Refunds take 5-7 business days.",  # a hyphen for the passage's en dash
        "Call +31 (20) 555-0142.",  # the same digits, other separators
        "We open at 9am and close at 5:30 pm.",  # 12-hour clock for 9:00 and 17:30
        "Write to support@northwind.example.",
        "Use -o or --output to write the result.",
        "Call `str.rstrip` on it.",
        "It costs €4.95.",
        "It takes seven business days at most.",  # a number word in the answer, digits in text
    ],
)
def test_values_stated_differently_are_still_supported(answer: str) -> None:
    assert unsupported_facts(answer, [PASSAGE]) == []


@pytest.mark.parametrize(
    ("answer", "invented"),
    [
        ("The company will refund you 10% of the price.", "10%"),
        ("Our hotline is 123-456-7890.", "123-456-7890"),
        ("We open at 23:13:48.", "23:13:48"),
        ("The attachment limit is 1024 bytes.", "1024"),
        ("Use the --fast option.", "--fast"),
        ("Call str.reverse_words() instead.", "str.reverse_words()"),
        ("Write to sales@northwind.example.", "sales@northwind.example"),
        ("Shipping costs €2.50.", "€2.50"),
    ],
)
def test_invented_values_are_unsupported(answer: str, invented: str) -> None:
    assert [f.text for f in unsupported_facts(answer, [PASSAGE])] == [invented]


def test_the_conversation_counts_as_evidence() -> None:
    assert unsupported_facts("Order NW-1042 is on its way.", [PASSAGE, "where is NW-1042?"]) == []


@pytest.mark.parametrize(
    "text",
    [
        "Options: " + "-v, --verbose " * 6,
        "The result is " + "0" * 40,
        "####\n####\n####\n",
        "yes " * 60,
        "The answer is that the answer is that the answer is that the answer",
    ],
)
def test_loops_are_degenerate(text: str) -> None:
    assert is_degenerate(text), text


@pytest.mark.parametrize(
    "text",
    [
        "Refunds are issued within 5–7 business days after your return arrives.",
        "- Use the `-o` option.\n- Use the `-v` option.\n- Use the `-q` option.",
        "The for statement iterates over the items of any sequence in order. The for statement "
        "in Python differs a bit from what you may be used to in C or Pascal.",
        "---\n| a | b |\n|---|---|\n| 1 | 2 |",
    ],
)
def test_ordinary_answers_are_not_degenerate(text: str) -> None:
    assert loop_reason(text) == ""


def test_stream_releases_words_before_a_possible_fact_and_holds_the_rest() -> None:
    check = GroundedStream(Evidence([PASSAGE]))
    assert check.feed("Refunds") == "Refunds"  # the first word goes out with the first token
    assert check.feed(" are issued ") == " are issued "
    assert check.feed("within 5–7 business") == "within "  # a digit: held until the sentence ends
    assert check.feed(" days. Then") == "5–7 business days. Then"
    assert check.finish() == ""
    assert check.failure == ""


def test_stream_stops_at_an_unsupported_fact_and_closes_the_model() -> None:
    closed = []

    def model() -> object:
        try:
            yield from ["We refund ", "10% ", "of it. ", "More text that never comes."]
        finally:
            closed.append(True)

    check = GroundedStream(Evidence([PASSAGE]))
    shown = "".join(check.stream(model()))  # type: ignore[arg-type]
    assert "10%" not in shown and shown == "We refund "
    assert check.failure == "unsupported" and [f.text for f in check.unsupported] == ["10%"]
    assert closed == [True]


def test_stream_stops_a_loop() -> None:
    check = GroundedStream(Evidence([PASSAGE]))
    shown = "".join(check.stream(["Use it. "] + ["again and again and "] * 10))
    assert check.failure == "loop" and shown.count("again and again") < 3


def _sources() -> list[Source]:
    return [
        Source("docs/refunds.md", 1, 0.8, PASSAGE, "Refunds"),
        Source("docs/other.md", 2, 0.5, "Gift cards never expire.", "Gift cards"),
    ]


def test_a_supported_answer_is_kept_and_quoted() -> None:
    answer = GroundedAnswer("How long do refunds take?", _sources(), QuotePicker(None))
    streamed = "".join(answer.stream(["Refunds take ", "5-7 business days."]))
    text, sources, grounding = answer.settle(streamed)
    assert text == streamed == "Refunds take 5-7 business days."
    assert grounding.action == "passed" and grounding.facts == ("5", "7")
    assert sources[0].quote == (
        "Refunds are issued within 5–7 business days. "
        "Call +31 20 555 0142 or write to support@northwind.example."
    )


def test_an_unsupported_answer_is_replaced_by_quoted_passages() -> None:
    answer = GroundedAnswer(
        "How long do refunds take?", _sources(), QuotePicker(None), suffix="Anything else?"
    )
    streamed = "".join(answer.stream(["Refunds take ", "2 days and ", "cost 10%."]))
    text, sources, grounding = answer.settle(streamed)
    assert grounding.action == "extractive" and grounding.unsupported == ("2", "10%")
    assert "2 days" not in text and "10%" not in text
    assert "> Refunds are issued within 5–7 business days." in text and "— Refunds" in text
    assert text.endswith("\n\nAnything else?") and streamed.endswith("Anything else?")
    assert sources[0].quote and all(s.quote in text for s in sources if s.quote)


def test_a_decline_is_an_abstention_that_offers_a_person() -> None:
    answer = GroundedAnswer("Do you sell laptops?", _sources(), QuotePicker(None))
    streamed = "".join(answer.stream(["I don't know."]))
    text, sources, grounding = answer.settle(streamed)
    assert grounding.action == "abstained" and answer.asks_for_person
    assert "connect you with a person" in text and not any(s.quote for s in sources)


def test_units_are_sentences_and_option_lines() -> None:
    found = units("# Refunds and returns\n" + PASSAGE)
    assert "-o, --output=FILE  write the result to FILE" in found
    assert found[0].startswith("Refunds are issued")  # a heading is a title, not a quote
    assert units("str.rstrip([chars])\n\n   Return a copy of the string.")[0] == (
        "str.rstrip([chars])\nReturn a copy of the string."
    )  # a signature line stays with the sentence it names
    assert units("Refunds\n=======\n\nThey take five days.") == ["They take five days."]
    assert "We are open 9:00 to 17:30, Monday to Friday." in found
    assert units("-v, --verbose  say more, and then\n      even more\nNext paragraph here.") == [
        "-v, --verbose  say more, and then even more",
        "Next paragraph here.",
    ]
    long_line = " ".join(f"Sentence number {i} is here." for i in range(40))
    assert all(len(u) <= 320 for u in units(long_line)) and len(units(long_line)) > 1


def test_the_quote_picker_uses_the_embedder() -> None:
    import numpy as np

    def embed(texts: object) -> np.ndarray:
        rows = [[1.0, 0.0] if "output" in t else [0.0, 1.0] for t in texts]  # type: ignore[attr-defined]
        rows[0] = [1.0, 0.0]
        return np.array(rows, dtype=np.float32)

    best = QuotePicker(embed).best("How do I save the result?", [PASSAGE], n=1)
    assert best[0].text == "-o, --output=FILE  write the result to FILE"


def test_every_answer_reports_its_grounding_to_the_hooks(sqlite_db: object, shop: object) -> None:
    from dialog.messages import Message

    model = FakeChatModel().enqueue("Standard shipping takes 3–5 business days.", "It is 2 days.")
    assistant = shop(sqlite_db, model)  # type: ignore[operator]
    seen: list[Grounding] = []
    assistant.answer_hooks.append(seen.append)
    for text in ("How long does standard shipping take?", "How long does standard shipping take?"):
        assistant.handle(Message(text, "c1"))
    assistant.handle(Message("Do you sell refurbished laptops?", "c2"))
    assert [g.action for g in seen] == ["passed", "extractive", "abstained"]
    stored = [e.check["action"] for e in assistant.history("c1") if e.type == "bot"]
    assert stored == ["passed", "extractive"]


def test_two_quotes_never_repeat_a_sentence() -> None:
    passage = "Shifts move bits. A left shift multiplies by two. A right shift divides by two."
    quotes = QuotePicker(None).best("What does a left shift do?", [passage], n=2)
    sentences = [s for q in quotes for s in q.text.split(". ")]
    assert len(quotes) == 2 and len(sentences) == len(set(sentences))


def test_a_question_too_long_for_the_model_gets_a_clear_reply(
    sqlite_db: object, shop: object
) -> None:
    from assistant_core.chat_model import ContextTooLong
    from dialog.fallback import TOO_LONG
    from dialog.messages import Message

    model = FakeChatModel().enqueue(ContextTooLong("8,200 tokens > 8,192", 8200, 8192))
    assistant = shop(sqlite_db, model)  # type: ignore[operator]
    reply = assistant.handle(Message("How long does standard shipping take? " * 3, "c1"))
    assert reply.answer == TOO_LONG
    assert [e.type for e in assistant.history("c1")] == ["user", "answer_failed", "bot"]


HOURS = (
    "Support is open Monday to Friday from 08:00 to 20:00 and on Saturday from 10:00 to 16:00. "
    "We are not open on Sundays."
)
REFUNDS = "Refunds are possible within 30 days of delivery. Refunds are not possible after 30 days."


def _answer(
    question: str, passage: str, reply: str, picker: QuotePicker | None = None
) -> tuple[str, str, list[Source], Grounding]:
    """What streamed, then what is stored, for one scripted reply over one passage."""
    sources = [Source("docs/help.md", 1, 0.8, passage, "Help")]
    answer = GroundedAnswer(question, sources, picker or QuotePicker(None), suffix="Anything else?")
    streamed = "".join(answer.stream(FakeChatModel(reply).stream([])))
    return (streamed, *answer.settle(streamed))


@pytest.mark.parametrize("embedded", [False, True])
def test_an_answer_that_negates_its_passage_is_replaced_by_the_passage(embedded: bool) -> None:
    from tests.fakes import HashingEmbedder

    picker = QuotePicker(HashingEmbedder().embed) if embedded else None
    reply = "No, customer support is not open on Saturday, and when."
    streamed, text, sources, grounding = _answer(
        "Is customer support open on Saturday, and when?", HOURS, reply, picker
    )
    assert grounding.action == "extractive" and grounding.unsupported == ()
    assert grounding.reason == 'the answer negates what its passages say ("No")'
    assert "not open on Saturday" not in streamed  # held back, never shown
    assert text.startswith("Here is what I found") and "Saturday from 10:00 to 16:00" in text
    assert streamed.endswith(text) and text.endswith("\n\nAnything else?")
    assert sources[0].quote and sources[0].quote in text


@pytest.mark.parametrize(
    ("question", "passage", "reply"),
    [
        ("Can I get a refund later?", REFUNDS, "No, refunds are not possible after 30 days."),
        ("Is support open on Sunday?", HOURS, "No, support isn't open on Sundays."),
        ("Is support open on Saturday?", HOURS, "Yes, from 10:00 to 16:00 on Saturday."),
        ("Can I get a refund?", REFUNDS, "Refunds are possible within 30 days of delivery."),
    ],
)
def test_an_answer_of_the_same_polarity_as_its_passage_passes(
    question: str, passage: str, reply: str
) -> None:
    streamed, text, _, grounding = _answer(question, passage, reply)
    assert grounding.action == "passed", grounding.reason
    assert text == streamed == f"{reply}\n\nAnything else?"


def test_a_negation_next_to_the_passage_sentence_does_not_back_the_answer() -> None:
    """The Sunday sentence negates, the Saturday one (closest to the answer) does not."""
    reply = "Support is open on weekdays. It is not open on Saturday."
    streamed, text, _, grounding = _answer("Is support open on Saturday?", HOURS, reply)
    assert grounding.action == "extractive" and grounding.reason.endswith('("not")')
    assert streamed.startswith("Support is open on weekdays. It is \n\n") and "10:00" in text


def test_a_decline_is_not_a_negation_of_the_passages() -> None:
    streamed, text, _, grounding = _answer(
        "Do you sell laptops?", HOURS, "I don't know. The passages do not mention laptops."
    )
    assert grounding.action == "abstained" and grounding.reason == "the model declined"
    assert text == streamed and streamed.startswith("I don't know.")


@pytest.mark.parametrize(
    ("sentence", "word"),
    [
        ("Support isn't open.", "n't"),
        ("You can’t pay cash.", "n’t"),
        ("It cannot be returned.", "cannot"),
        ("Never share your password.", "Never"),
        ("Neither card works.", "Neither"),
        ("It ships without a receipt.", "without"),
        ("Take note of the notice.", ""),
        ("Write to no-reply@northwind.example.", ""),
        ("Use `x is not None` to test it.", ""),
        ('Click "Do not disturb".', ""),
    ],
)
def test_negating_words_are_whole_words_outside_literals(sentence: str, word: str) -> None:
    from dialog.polarity import negation

    assert negation(sentence) == word


def test_the_stream_holds_a_sentence_from_its_negation_until_it_is_checked() -> None:
    vetted: list[str] = []
    check = GroundedStream(Evidence([HOURS]), vet=lambda s: vetted.append(s) or "")
    assert check.feed("Support") == "Support"
    assert check.feed(" isn") == " "  # "isn" may become "isn't"
    assert check.feed("'t open") == ""  # held from the negation to the end of the sentence
    assert check.feed(" on Sundays. So") == "isn't open on Sundays. So"
    assert vetted == ["Support isn't open on Sundays."]
    refused = GroundedStream(Evidence([HOURS]), vet=lambda s: "flipped")
    assert "".join(refused.stream(["It is ", "not open. ", "More."])) == "It is "
    assert refused.failure == "negated" and refused.reason == "flipped"
    assert GroundedStream(Evidence([HOURS])).feed("It is not") == "It is not"  # no check, no hold


def test_a_flipped_answer_is_stored_as_extractive(sqlite_db: object, shop: object) -> None:
    from dialog.messages import Message

    model = FakeChatModel().enqueue("No, customer support is not open on Saturday, and when.")
    assistant = shop(sqlite_db, model)  # type: ignore[operator]
    seen: list[Grounding] = []
    assistant.answer_hooks.append(seen.append)
    reply = assistant.handle(Message("Is customer support open on Saturday, and when?", "c1"))
    assert "not open on Saturday" not in reply.answer and "10:00" in reply.answer
    assert [g.action for g in seen] == ["extractive"]
    stored = [e for e in assistant.history("c1") if e.type == "bot"]
    assert stored[-1].check["action"] == "extractive" and "negates" in stored[-1].check["reason"]
