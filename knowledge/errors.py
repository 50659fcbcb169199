"""Errors of the knowledge base."""

from assistant_core.errors import AssistantError


class KnowledgeError(AssistantError):
    """Root of the knowledge base's errors."""


class UnreadableDocument(KnowledgeError):
    """A file could not be read or decoded; the batch goes on without it."""


class IndexCorrupted(KnowledgeError):
    """The FAISS file on disk does not match its checksum or cannot be parsed."""


class IndexMismatch(KnowledgeError):
    """The index was built with another embedding model or dimension."""


class IndexWriteFailed(KnowledgeError):
    """The index could not be written (disk full, read-only); the previous one stays in use."""
