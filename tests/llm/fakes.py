"""A fake engine for fast tests of the HTTP layer: scripted token ids, a character tokenizer."""

from __future__ import annotations

import threading
import time
from typing import Any

from assistant.llm.server.batching import Sampling
from assistant.llm.server.repetition import Penalties

EOS = 0


class CharTokenizer:
    """Token id = code point; id 0 is end of sequence."""

    chat_template = "{{ messages }}"
    eos_token_id = EOS
    pad_token_id = EOS

    def apply_chat_template(self, messages: list[dict[str, Any]], **_: Any) -> str:
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages)

    def __call__(self, text: str, **_: Any) -> dict[str, list[int]]:
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids if i != EOS)


class FakeGrammars:
    def processor(self, schema: dict[str, Any]) -> None:
        if schema.get("type") == "bogus":
            from assistant.llm.server.schemas import BadRequest

            raise BadRequest("cannot compile the JSON schema: bogus")


class FakeEngine:
    """Serial-only engine whose reply is scripted; `delay_s` makes requests overlap."""

    batching = False
    device = "cpu"
    eos_ids = [EOS]
    context_tokens = 4096
    penalties = Penalties(loop_ngram=6)
    failure: str | None = None
    restarts = 0

    def __init__(self, reply: str = "Hello there.", delay_s: float = 0.0) -> None:
        self.reply, self.delay_s = reply, delay_s
        self.tokenizer = CharTokenizer()
        self.grammars = FakeGrammars()
        self.ready = threading.Event()
        self.ready.set()
        self.calls: list[dict[str, Any]] = []

    def status(self) -> str:
        return "ok" if self.ready.is_set() else "loading"

    def alive(self) -> bool:
        return self.status() == "ok"

    def batches(self, sampling: Sampling) -> bool:
        return False

    def generate_serial(
        self, ids: list[int], sampling: Sampling, schema: Any = None, cancelled: Any = None
    ) -> list[int]:
        self.calls.append({"ids": ids, "sampling": sampling, "schema": schema})
        end = time.monotonic() + self.delay_s
        while time.monotonic() < end and not (cancelled and cancelled.is_set()):
            time.sleep(0.01)
        tokens = [ord(c) for c in self.reply][: sampling.max_tokens]
        return tokens + ([EOS] if len(tokens) < sampling.max_tokens else [])
