"""A customer-support assistant: dialog manager, FAISS knowledge base, LM behind an
OpenAI-compatible API."""

__version__ = "0.1.0"
