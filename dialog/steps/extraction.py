"""Slot values from the message: rules on every message, the LM for free-text slots of an action.

Values are added to the turn at once, so the steps after see them (a correction replaces the old
value).
"""

from __future__ import annotations

from collections.abc import Iterable

from dialog import events as ev
from dialog.extract import RULES, Extraction, extract_rules, extract_with_model
from dialog.steps.actions import Action
from dialog.steps.services import Services
from dialog.turnwork import TurnWork


def fill_by_rules(services: Services, work: TurnWork, requested: str | None) -> list[str]:
    """Rule extraction over every rule-typed slot; returns the slots filled."""
    found = extract_rules(work.text, services.domain.slot_types(), requested=requested)
    return _record(services, work, found)


def fill_by_model(services: Services, work: TurnWork, action: Action) -> list[str]:
    """The LM layer: free-text slots of the action still missing, with JSON-schema output."""
    missing = {
        name: (services.slot_spec(name).description or services.slot_spec(name).prompt)
        for name in action.slots
        if name not in work.state.slots and services.slot_spec(name).type not in RULES
    }
    if not missing or not services.options.extract_with_model:
        return []
    return _record(services, work, extract_with_model(services.model, work.text, missing))


def _record(services: Services, work: TurnWork, found: Iterable[Extraction]) -> list[str]:
    """Keep the values their slot's validators accept, with their provenance."""
    filled = []
    for one in found:
        value = services.slot_spec(one.slot).validate_value(one.value)
        if value is None:
            continue
        work.add(ev.SlotSet(one.slot, value, work.turn, one.span, one.extractor, one.confidence))
        filled.append(one.slot)
    return filled
