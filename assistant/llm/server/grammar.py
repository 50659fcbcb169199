"""xgrammar: compile each JSON schema once, hand out a fresh logits processor per request."""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import Any

from assistant.llm.server.schemas import BadRequest


class GrammarCache:
    """Compiled grammars keyed by schema text; the compiler is built on first use.

    >>> GrammarCache(tokenizer, vocab_size=49152).processor({"type": "object"})
    """

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._compiler: Any = None
        self._lock = threading.Lock()
        self._compile = lru_cache(maxsize=128)(self._compile_uncached)

    def _compiler_(self) -> Any:
        import xgrammar as xgr

        with self._lock:
            if self._compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(
                    self._tokenizer, vocab_size=self._vocab_size
                )
                self._compiler = xgr.GrammarCompiler(info)
            return self._compiler

    def _compile_uncached(self, schema_text: str) -> Any:
        try:
            return self._compiler_().compile_json_schema(schema_text, any_whitespace=False)
        except (RuntimeError, ValueError, TypeError) as err:
            raise BadRequest(f"cannot compile the JSON schema: {err}") from err

    def processor(self, schema: dict[str, Any]) -> Any:
        """A logits processor for `model.generate` that only lets schema-valid JSON through."""
        import xgrammar as xgr

        compiled = self._compile(json.dumps(schema))
        return xgr.contrib.hf.LogitsProcessor(compiled)
