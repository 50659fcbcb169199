"""The in-process engine (no server) keeps the server's rules on the real model: refusals before any
work, and the loop guard on."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.llm.engine import TransformersChatModel
from assistant.llm.server.repetition import repeats
from assistant_core.chat_model import ContextTooLong
from assistant_core.errors import LLMError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_in_process_engine_refuses_early_and_does_not_loop(chat_model_dir: Path) -> None:
    model = TransformersChatModel(chat_model_dir, device="cpu")
    flood = [{"role": "user", "content": " ".join(["customer"] * 20_000)}]
    with pytest.raises(ContextTooLong, match="context of 8192 tokens"):
        model.complete(flood, max_tokens=16)
    with pytest.raises(LLMError, match="invalid Unicode"):
        list(model.stream([{"role": "user", "content": "\ud800 hi"}]))
    loops = [{"role": "user", "content": "List 30 different options for the ls command."}]
    text = model.complete(loops, max_tokens=40).text
    ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert text and not repeats(ids, 8, 3, model.markers), text
