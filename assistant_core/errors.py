"""The assistant's exception family.

AssistantError
 ├── ConfigError        a setting is wrong or a model file is missing
 ├── ModelError         the chat or embedding model could not be loaded or run
 └── LLMError           the language-model API failed
      ├── LLMUnavailable    server down or unreachable
      ├── LLMOverloaded     server answered 429 / 503
      └── LLMTimeout        no answer within the deadline

dialog and knowledge subclass AssistantError for their own errors, so the edges
(CLI, HTTP) catch one root and turn it into a clear message.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Root of every error the assistant raises on purpose."""


class ConfigError(AssistantError):
    """A setting or a configured path is wrong."""


class ModelError(AssistantError):
    """A model could not be located, converted or loaded."""


class LLMError(AssistantError):
    """The language-model API did not give an answer."""


class LLMUnavailable(LLMError):
    """The language-model server cannot be reached."""


class LLMOverloaded(LLMError):
    """The language-model server refused the request for lack of capacity."""


class LLMTimeout(LLMError):
    """The language-model server did not answer in time."""
