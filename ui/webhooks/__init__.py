"""Webhooks: a generic signed one and a Chatwoot agent bot, both over the same dialog manager."""

from ui.webhooks.common import read_body, secrets_of

__all__ = ["read_body", "secrets_of"]
