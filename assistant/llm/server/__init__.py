"""`assistant model serve`: an OpenAI-compatible chat server over transformers' continuous batching.

Modules: `schemas` (request validation), `prompts` (chat template, tools), `grammar` (xgrammar),
`batching` (the engine: continuous batching + a serial constrained path), `metrics` (Prometheus),
`app` (FastAPI routes), `embedded` (uvicorn on a background thread for `chat`/`ask`/`serve`).
"""

from assistant.llm.server.config import ServerConfig

__all__ = ["ServerConfig"]
