"""Checkable facts in an answer, and whether its evidence states them.

A small model invents values: a refund rate, a phone number, an opening time, a command-line
option. Those are exactly the parts of an answer a customer acts on, and they are easy to find
and to look up: numbers, amounts, percentages, dates and times, phone numbers, emails, URLs,
options, code and ids, quoted strings, acronyms and product names written in CamelCase. A fact is
supported when the evidence (the cited passages, the conversation) states the same value.

>>> [f.text for f in unsupported_facts("Refunds are 10% within 30 days.", ["Within 30 days."])]
['10%']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1000,
}
_COMMON_CAPS = {"I", "OK", "AM", "PM", "FAQ", "A", "Q", "ID", "PS", "NB", "TV", "US", "UK", "EU"}

# Ordered: earlier kinds claim their span first, so "+1 555 0100" is one phone, not three numbers.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("url", re.compile(r"\b(?:https?://|www\.)[^\s<>()\[\]\"'`]+", re.I)),
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("code", re.compile(r"`([^`\n]{1,120})`")),
    ("quoted", re.compile(r"[\"“]([^\"”\n]{3,120})[\"”]")),
    (
        "date",
        re.compile(
            rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b|"
            rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b|"
            rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b(?:,?\s+\d{{4}})?",
            re.I,
        ),
    ),
    (
        "time",
        re.compile(
            r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?(?!\w)|\b\d{1,2}\s?[ap]\.?m\.?(?!\w)",
            re.I,
        ),
    ),
    (
        "phone",
        re.compile(r"(?<![\w.])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w.]*\d)"),
    ),
    (
        "money",
        re.compile(
            r"[$€£¥]\s?\d[\d,]*(?:\.\d+)?|\b\d[\d,]*(?:\.\d+)?\s?(?:usd|eur|gbp|dollars?|euros?|"
            r"pounds?|cents?)\b",
            re.I,
        ),
    ),
    ("percent", re.compile(r"\b\d+(?:[.,]\d+)?\s?(?:%|percent\b|per cent\b)", re.I)),
    ("option", re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")),
    (
        "identifier",
        re.compile(
            r"\b(?=[\w.]*[A-Za-z])(?=[\w.]*(?:\d|_|[a-z]\.[a-z]))[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*"
            r"(?:\(\))?|\b[A-Z]{1,5}-?\d[\w-]*\b",
        ),
    ),
    ("name", re.compile(r"\b[A-Z][a-z]+[A-Z][A-Za-z]*\b|\b[A-Z]{2,}\b")),
    ("number", re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:st|nd|rd|th)?(?![\w])")),
]
_BY_KIND = dict(_PATTERNS)
_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)]\s|\[\d{1,2}\]", re.M)
"""Numbers that state nothing: a step's number ("1. Open …"), a citation marker ("[2]")."""
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Fact:
    """One checkable value: its kind (number, phone, url …) and the text as the answer wrote it."""

    kind: str
    text: str


def extract_facts(text: str) -> list[Fact]:
    """The checkable facts of a text, in order of appearance, each span claimed once."""
    taken = [False] * len(text)
    for marker in _LIST_MARKER.finditer(text):  # "1. Open settings" numbers a step, states nothing
        taken[marker.start() : marker.end()] = [True] * (marker.end() - marker.start())
    found: list[tuple[int, Fact]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(taken[start:end]) or not _worth_checking(kind, match):
                continue
            taken[start:end] = [True] * (end - start)
            value = match.group(1) if kind in ("code", "quoted") else match.group(0)
            found.append((start, Fact(kind, value.strip())))
    return [fact for _, fact in sorted(found, key=lambda pair: pair[0])]


def _worth_checking(kind: str, match: re.Match[str]) -> bool:
    text = match.group(0)
    if kind == "name":
        return text not in _COMMON_CAPS
    if kind == "phone":
        return sum(c.isdigit() for c in text) >= 7
    return True


class Evidence:
    """Texts an answer may draw on, normalised once so that many facts are looked up cheaply."""

    def __init__(self, texts: Sequence[str]) -> None:
        joined = "\n".join(texts)
        self._plain = _normalise(joined)
        self._digits = {_digits(m.group(0)) for m in _BY_KIND["phone"].finditer(joined)}
        self._numbers = {_number(m.group(0)) for m in _NUMBER.finditer(joined)}
        self._numbers |= {
            float(value)
            for word, value in _NUMBER_WORDS.items()
            if re.search(rf"\b{word}\b", self._plain)
        }
        self._times = {_time(m.group(0)) for m in _BY_KIND["time"].finditer(joined)}
        self._percents = {_number(m.group(0)) for m in _BY_KIND["percent"].finditer(joined)}

    def supports(self, fact: Fact) -> bool:
        """Whether the evidence states this fact (the same value, however it is written)."""
        text = fact.text
        if fact.kind == "phone":
            return _digits(text) in self._digits or _normalise(text) in self._plain
        if fact.kind == "time":
            return _time(text) in self._times or _normalise(text) in self._plain
        if fact.kind == "percent":
            return _number(text) in self._percents
        if fact.kind in ("number", "money"):
            return _number(text) in self._numbers
        if fact.kind == "date":
            return _normalise(text) in self._plain or self._has_parts(text)
        if fact.kind in ("code", "identifier"):
            text = re.sub(r"\(.*\)$", "", text.strip())
        return _normalise(text.strip(".,;:!?")) in self._plain

    def _has_parts(self, date: str) -> bool:
        numbers = [_number(n) for n in _NUMBER.findall(date)]
        words = re.findall(rf"\b(?:{_MONTHS})\b", date.lower())
        return all(n in self._numbers for n in numbers) and all(w in self._plain for w in words)


def unsupported_facts(answer: str, evidence: Sequence[str] | Evidence) -> list[Fact]:
    """The facts of `answer` that the evidence does not state."""
    known = evidence if isinstance(evidence, Evidence) else Evidence(evidence)
    return [fact for fact in extract_facts(answer) if not known.supports(fact)]


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = re.sub(r"[‐‑‒–—]", "-", text)
    return " ".join(text.replace("`", "").replace("*", "").split())


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _number(text: str) -> float:
    """12 and 12.0 and 1,200 and 1200 compare equal; a decimal comma is read as a point."""
    raw = _NUMBER.search(text)
    if raw is None:
        return float("nan")
    value = raw.group(0)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", value):
        value = value.replace(",", "")
    elif re.fullmatch(r"\d+,\d{1,2}", value):
        value = value.replace(",", ".")
    try:
        return float(value.replace(",", ""))
    except ValueError:
        return float("nan")


def _time(text: str) -> tuple[int, int]:
    """9am, 9:00 a.m. and 09:00 are one time; 5 pm is 17:00."""
    match = re.match(r"(\d{1,2})(?::(\d{2}))?", text.strip())
    if match is None:
        return (-1, -1)
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    suffix = text.lower().replace(".", "")
    if suffix.rstrip().endswith("pm") and hour < 12:
        hour += 12
    if suffix.rstrip().endswith("am") and hour == 12:
        hour = 0
    return (hour, minute)
