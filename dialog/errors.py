"""Errors of the dialog manager."""

from assistant_core.errors import AssistantError


class DialogError(AssistantError):
    """Root of the dialog manager's errors."""


class ConversationNotFound(DialogError):
    """No conversation has that id."""


class EventNotFound(DialogError):
    """The conversation has no event with that seq (feedback on an answer that is not there)."""
