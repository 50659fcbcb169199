"""The channel adapter every front end runs a turn through; the public names, re-exported.

caller.py     Caller, Role, Action, AccessDenied, the `authorize` hook (issue 17 fills it)
service.py    DialogService: what ui needs from the dialog manager
adapter.py    Channel: access check, turn threads, metrics, error mapping; turn events
failures.py   the one error -> (status, message, retry) mapping
citations.py  an answer's citations as Markdown, plain text or JSON
"""

from ui.channel.adapter import (
    Channel,
    Delta,
    Done,
    Failed,
    Serves,
    Started,
    TurnEvent,
    answer_seq,
    turn_threads_for,
)
from ui.channel.caller import (
    ANONYMOUS_API,
    LOCAL,
    AccessDenied,
    Action,
    Authorize,
    Caller,
    Role,
    allow_everything,
    web_caller,
    webhook_caller,
)
from ui.channel.failures import DATABASE_UNAVAILABLE, Failure, failure_for
from ui.channel.service import DialogService, SlashCommand, TurnStream

__all__ = [
    "ANONYMOUS_API",
    "LOCAL",
    "DATABASE_UNAVAILABLE",
    "AccessDenied",
    "Action",
    "Authorize",
    "Caller",
    "Channel",
    "Delta",
    "DialogService",
    "Done",
    "Failed",
    "Failure",
    "Role",
    "Serves",
    "SlashCommand",
    "Started",
    "TurnEvent",
    "TurnStream",
    "allow_everything",
    "answer_seq",
    "failure_for",
    "turn_threads_for",
    "web_caller",
    "webhook_caller",
]
