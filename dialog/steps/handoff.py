"""Handing the conversation to a person: on request, or when an offer of one is accepted."""

from __future__ import annotations

import re

from dialog import events as ev
from dialog.commands import Outcome
from dialog.domain import Domain
from dialog.steps.services import Services
from dialog.summary import agent_brief
from dialog.turnwork import TurnWork

_HUMAN = re.compile(
    r"\b(human|real person|a person|someone real|live agent|an agent|a representative|"
    r"customer service rep\w*|"
    r"(talk|speak|chat) (to|with) (someone|somebody|a (person|human|manager)))\b",
    re.I,
)

HANDOFF_TEXT = (
    "I'm passing you to a colleague now. They can see our conversation and will reply here."
)
OFFER_TEXT = (
    "I'm sorry this has been frustrating. Would you like me to connect you with a person? (yes/no)"
)


def asks_for_person(domain: Domain, text: str) -> bool:
    """An explicit request for a person, in our words or the domain's."""
    return bool(_HUMAN.search(text)) or any(
        re.search(t, text, re.I) for t in domain.handoff_triggers
    )


def start_handoff(services: Services, work: TurnWork, reason: str) -> Outcome:
    """Move the conversation to a human, with a brief for the agent."""
    brief = agent_brief(work.state, reason, [*work.history, *work.events])
    return Outcome(
        services.domain.response("handoff", HANDOFF_TEXT),
        handoff=True,
        asks=True,
        events=[ev.HandoffStarted(reason, brief)],
    )
