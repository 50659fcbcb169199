"""Information extraction in two layers: rules for what rules do best, then the LM with a JSON
schema.

Every value comes back as an `Extraction` with its provenance: the text span it came from, the
extractor that found it and a confidence. Values below the domain's threshold are confirmed with
the user before a form uses them.

>>> [e.value for e in extract_rules("write to ann@example.com about order 1042",
...                                 {"email": "email", "order_id": "order_id"})]
['ann@example.com', '1042']
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from assistant_core.chat_model import ChatModel
from assistant_core.errors import LLMError


@dataclass(frozen=True)
class Extraction:
    """A slot value found in a message, with where it came from."""

    slot: str
    value: Any
    span: str
    extractor: str
    confidence: float


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?![\w-])", re.I)
_ORDER_CODE = re.compile(r"\b((?i:[a-z]{1,5}))-(\d{3,12})\b|\b([A-Z]{2,5}) ?(\d{3,12})\b")
_ORDER_WORD = re.compile(r"\border\s*(?:number|no\.?|id|#)?\s*#?\s*(\d{3,8})\b", re.I)
_ORDER_BARE = re.compile(r"^\s*#?(\d{3,8})\s*$")
_PHONE = re.compile(r"(?<![\w+])(\+?\d[\d\s().-]{6,}\d)(?!\w)")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DMY_DATE = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
_MONTHS = (
    "january february march april may june july august september october november december".split()
)
_WORD_DATE = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)?\s+("
    + "|".join(m[:3] + r"[a-z]*" for m in _MONTHS)
    + r")\.?,?\s+(\d{4})\b",
    re.I,
)
_AMOUNT = re.compile(
    r"(?:(?P<cur1>[€$£])\s?(?P<num1>\d+(?:[.,]\d{1,2})?))|(?:(?P<num2>\d+(?:[.,]\d{1,2})?)\s?(?P<cur2>€|euros?|eur|usd|dollars?|gbp|£))",
    re.I,
)
_CURRENCY = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "£": "GBP",
    "gbp": "GBP",
}


def order_id(text: str, *, requested: bool = False) -> list[tuple[str, str, float]]:
    """A coded id (`AB-1042`, `ab-1042`, `AB1042` in capitals) as `AB-1042`; `order 1042` as `1042`;
    a bare number only when the order id was just asked for.

    No company's prefix is known here: a slot's `prefix` in the domain file turns `1042` into
    the company's form (`dialog.domain.SlotSpec`).
    """
    found = [
        (f"{(m[1] or m[3]).upper()}-{m[2] or m[4]}", m[0], 0.99)
        for m in _ORDER_CODE.finditer(text)
        if m[1] or (m[3] and m[3].isupper() and not _ORDER_WORD.match(m[0]))
    ]
    if not found:
        found = [(m.group(1), m.group(0), 0.9) for m in _ORDER_WORD.finditer(text)]
    if not found and requested and (m := _ORDER_BARE.match(text)):
        found = [(m.group(1), m.group(0).strip(), 0.6)]
    return found


def email(text: str, *, requested: bool = False) -> list[tuple[str, str, float]]:
    return [(m.group(0).lower(), m.group(0), 0.99) for m in _EMAIL.finditer(text)]


def phone(text: str, *, requested: bool = False) -> list[tuple[str, str, float]]:
    out = []
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(1))
        if 7 <= len(digits) <= 15 and not _ISO_DATE.search(m.group(1)):
            out.append((("+" if m.group(1).startswith("+") else "") + digits, m.group(1), 0.9))
    return out


def date_value(text: str, *, requested: bool = False) -> list[tuple[str, str, float]]:
    out = []
    for m in _ISO_DATE.finditer(text):
        out += _date(m.group(0), int(m.group(1)), int(m.group(2)), int(m.group(3)))
    for m in _DMY_DATE.finditer(text):
        out += _date(m.group(0), int(m.group(3)), int(m.group(2)), int(m.group(1)))
    for m in _WORD_DATE.finditer(text):
        month = next(
            i for i, name in enumerate(_MONTHS, 1) if name.startswith(m.group(2)[:3].lower())
        )
        out += _date(m.group(0), int(m.group(3)), month, int(m.group(1)))
    return out


def _date(span: str, year: int, month: int, day: int) -> list[tuple[str, str, float]]:
    try:
        return [(date(year, month, day).isoformat(), span, 0.95)]
    except ValueError:
        return []


def amount(text: str, *, requested: bool = False) -> list[tuple[str, str, float]]:
    out = []
    for m in _AMOUNT.finditer(text):
        number = (m.group("num1") or m.group("num2")).replace(",", ".")
        currency = _CURRENCY[(m.group("cur1") or m.group("cur2")).lower()]
        try:
            out.append((f"{Decimal(number):.2f} {currency}", m.group(0), 0.95))
        except InvalidOperation:
            continue
    return out


RuleExtractor = Callable[..., list[tuple[str, str, float]]]

RULES: dict[str, RuleExtractor] = {
    "order_id": order_id,
    "email": email,
    "phone": phone,
    "date": date_value,
    "amount": amount,
}
"""Slot types that rules handle; other types (free text, numbers, choices) go to the LM."""


def extract_rules(
    text: str, slot_types: Mapping[str, str], *, requested: str | None = None
) -> list[Extraction]:
    """Values for every slot whose type has a rule; the first match of each wins.

    Where several slots share a type (a new and a current email), a value goes to the slot just
    asked for, else to the first one declared: one email in a message never fills both.
    """
    found = []
    for slot, kind in slot_types.items():
        rule = RULES.get(kind)
        if rule is None or slot != _owner(kind, slot_types, requested):
            continue
        matches = rule(text, requested=slot == requested)
        if matches:
            value, span, confidence = matches[0]
            found.append(Extraction(slot, value, span, f"rule:{kind}", confidence))
    return found


def _owner(kind: str, slot_types: Mapping[str, str], requested: str | None) -> str:
    """The slot of this type that a value found in the message belongs to."""
    if requested is not None and slot_types.get(requested) == kind:
        return requested
    return next(name for name, other in slot_types.items() if other == kind)


def normalise(kind: str, raw: Any) -> Any | None:
    """A value of the slot's type, or None when it is not one (validates LM output and tool
    arguments)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = str(raw).strip()
    if kind in RULES:
        matches = RULES[kind](text, requested=True)
        return matches[0][0] if matches else None
    if kind == "number":
        try:
            return float(text) if "." in text else int(text)
        except ValueError:
            return None
    return text


_EXAMPLE = "Hello, do you have the lamp in dark green? I need it for my office."
"""A one-shot example: measured on SmolLM2-135M, without it the model copies the whole message."""

SYSTEM_EXTRACT = (
    "Extract the requested fields from the customer's message. Copy the customer's own words. "
    "Use an empty string for a field the message does not mention."
)


def extract_with_model(
    model: ChatModel, text: str, slots: Mapping[str, str], *, max_tokens: int = 48
) -> list[Extraction]:
    """Ask the LM for `slots` (name -> description) with output constrained to a JSON schema.

    Confidence: 0.85 when the value is a span of the message, 0.5 when the model paraphrased
    (so the form confirms it with the user). LM failures give no values, never an exception.
    """
    if not slots:
        return []
    schema = {
        "type": "object",
        "properties": {name: {"type": "string"} for name in slots},
        "required": list(slots),
        "additionalProperties": False,
    }
    fields = "\n".join(f"- {name}: {desc}" for name, desc in slots.items())
    messages = [
        {"role": "system", "content": SYSTEM_EXTRACT},
        {
            "role": "user",
            "content": f"Fields:\n- colour: the colour asked for\n\nMessage: {_EXAMPLE}",
        },
        {"role": "assistant", "content": '{"colour": "dark green"}'},
        {"role": "user", "content": f"Fields:\n{fields}\n\nMessage: {text}"},
    ]
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "slots", "schema": schema, "strict": True},
    }
    try:
        completion = model.complete(
            messages, max_tokens=max_tokens, response_format=response_format
        )
        data = _loads_cut(completion.text)
    except (LLMError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    return [
        _provenance(name, value, text)
        for name, value in data.items()
        if name in slots and _usable(value)
    ]


def _loads_cut(text: str) -> Any:
    """JSON, also when generation stopped at max_tokens inside a string value (the grammar kept it
    valid so far)."""
    try:
        return json.loads(text)
    except ValueError:
        for tail in ('"}', "}"):
            try:
                return json.loads(text + tail)
            except ValueError:
                continue
        raise


def _usable(value: Any) -> bool:
    return (
        isinstance(value, str)
        and bool(value.strip())
        and value.strip().lower() not in {"none", "null", "n/a"}
    )


def _provenance(slot: str, value: str, text: str) -> Extraction:
    value = value.strip()
    at = text.lower().find(value.lower())
    if at >= 0:
        return Extraction(slot, text[at : at + len(value)], text[at : at + len(value)], "lm", 0.85)
    return Extraction(slot, value, "", "lm", 0.5)
